"""The catalog: every figure sourced, crafted bad data refused with its path, names resolved."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from components import catalog
from components.catalog import (
    DATA_DIR,
    AttentionKind,
    CatalogError,
    CitedBy,
    UnknownInstanceError,
    UnknownModelError,
    WeightDtype,
    load_catalog,
)

DATA_FILES = ("sources.yaml", "instances.yaml", "models.yaml", "throughput.yaml", "known_good.yaml")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A copy of the shipped data files that a test may break."""
    for name in DATA_FILES:
        shutil.copy(DATA_DIR / name, tmp_path / name)
    return tmp_path


def edit(directory: Path, name: str, change) -> None:
    path = directory / name
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def problems_of(directory: Path) -> tuple[str, ...]:
    with pytest.raises(CatalogError) as error:
        load_catalog(directory)
    return error.value.problems


def test_shipped_catalog_loads_with_every_issue_model_and_instance() -> None:
    data = catalog.catalog()
    assert set(data.models) == {
        "llama-3.1-8b",
        "llama-3.1-70b",
        "llama-3.1-405b",
        "llama-3.3-70b",
        "qwen3-8b",
        "qwen3-32b",
        "qwen3-235b-a22b",
        "deepseek-v3",
        "deepseek-r1",
        "mistral-7b-v0.3",
        "mixtral-8x7b",
        "mixtral-8x22b",
        "gpt-oss-20b",
        "gpt-oss-120b",
        "gemma-3-27b",
        "falcon-180b",
        "yi-34b",
    }
    gpu_instances = {name for name, instance in data.instances.items() if instance.gpu is not None}
    assert gpu_instances == {
        "g5.xlarge",
        "g5.2xlarge",
        "g5.12xlarge",
        "g5.48xlarge",
        "g6.xlarge",
        "g6.12xlarge",
        "g6.48xlarge",
        "g6e.xlarge",
        "g6e.2xlarge",
        "g6e.12xlarge",
        "g6e.24xlarge",
        "g6e.48xlarge",
        "p4d.24xlarge",
        "p4de.24xlarge",
        "p5.48xlarge",
        "p5e.48xlarge",
        "p5en.48xlarge",
        "p6-b200.48xlarge",
    }
    assert {"m6i.large", "m7g.large", "t3.medium", "c6i.xlarge"} <= set(data.instances)


def test_every_figure_group_names_a_known_source() -> None:
    data = catalog.catalog()
    cited = set()
    for record in [*data.instances.values(), *data.models.values(), *data.gpus.values()]:
        assert record.sources, record
        cited.update(record.sources.values())
    cited.update(point.source for point in data.throughput)
    cited.update(entry.source for entry in data.known_good)
    assert cited <= set(data.sources)
    data_sources = {key for key, source in data.sources.items() if source.cited_by is CitedBy.DATA}
    assert data_sources <= cited


def test_sourced_facts_the_sizing_relies_on() -> None:
    instances = catalog.instances()
    assert instances["p5.48xlarge"].on_demand_usd_per_hour == Decimal("55.04")
    assert instances["p5e.48xlarge"].on_demand_usd_per_hour is None
    assert "capacity blocks" in instances["p5e.48xlarge"].price_note
    assert instances["p6-b200.48xlarge"].gpu_memory_mib == 183_359
    assert instances["m7g.large"].architecture.value == "arm64"
    assert instances["g5.xlarge"].spot is None  # no sourced spot figure: none invented
    assert instances["p5en.48xlarge"].spot is not None
    assert not instances["g5.xlarge"].supports_efa and instances["p4d.24xlarge"].supports_efa
    fp8 = {name for name, instance in instances.items() if instance.supports_fp8}
    assert not fp8 & {"g5.xlarge", "g5.48xlarge", "p4d.24xlarge", "p4de.24xlarge"}
    assert {"g6.xlarge", "g6e.xlarge", "p5.48xlarge", "p5en.48xlarge", "p6-b200.48xlarge"} <= fp8


def test_attention_shapes_keep_what_the_generic_formula_misses() -> None:
    models = catalog.models()
    r1 = models["deepseek-r1"].attention
    assert r1.kind is AttentionKind.MLA and r1.latent is not None and r1.latent.cached_dim == 576
    gpt_oss = models["gpt-oss-120b"].attention
    assert gpt_oss.sliding_window is not None
    assert gpt_oss.sliding_window.window_tokens == 128
    assert gpt_oss.sliding_window.sliding_layers(gpt_oss.layers) == 18  # alternating
    gemma = models["gemma-3-27b"].attention
    assert gemma.sliding_window is not None
    assert gemma.sliding_window.sliding_layers(gemma.layers) == 52  # 5 local : 1 global over 62 layers
    assert models["gpt-oss-120b"].native_dtype is WeightDtype.MXFP4
    assert models["llama-3.1-8b"].license.restriction  # the 700M MAU clause


def test_a_figure_group_without_source_is_refused(data_dir: Path) -> None:
    edit(data_dir, "instances.yaml", lambda d: d["instances"]["p5.48xlarge"]["price"].pop("source"))
    problems = problems_of(data_dir)
    assert any("instances.p5.48xlarge.price: figures without a source" in p for p in problems)


def test_a_model_figure_without_source_is_refused(data_dir: Path) -> None:
    edit(data_dir, "models.yaml", lambda d: d["models"]["qwen3-8b"]["attention"].pop("source"))
    problems = problems_of(data_dir)
    assert any("models.qwen3-8b.attention: figures without a source" in p for p in problems)


def test_a_throughput_point_without_source_is_refused(data_dir: Path) -> None:
    edit(data_dir, "throughput.yaml", lambda d: d["points"][0].pop("source"))
    assert any("points[0]: figures without a source" in p for p in problems_of(data_dir))


def test_unknown_sources_fields_and_bad_values_are_all_reported_together(data_dir: Path) -> None:
    def break_models(data):
        model = data["models"]["llama-3.1-8b"]
        model["context"]["source"] = "NO-SUCH-SOURCE"
        model["attention"]["kv_heads"] = 0
        model["attention"]["head_size"] = 128

    edit(data_dir, "models.yaml", break_models)
    problems = problems_of(data_dir)
    assert any("llama-3.1-8b.context.source: unknown source 'NO-SUCH-SOURCE'" in p for p in problems)
    assert any("llama-3.1-8b.attention.kv_heads: expected an integer >= 1" in p for p in problems)
    assert any("llama-3.1-8b.attention.head_size: unknown field" in p for p in problems)


def test_mla_without_its_latent_shape_is_refused(data_dir: Path) -> None:
    edit(data_dir, "models.yaml", lambda d: d["models"]["deepseek-v3"].pop("mla"))
    assert any("deepseek-v3: attention kind mla needs an `mla` group" in p for p in problems_of(data_dir))


def test_a_source_nothing_cites_is_refused(data_dir: Path) -> None:
    def add(data):
        data["sources"]["DEAD"] = {"citation": "x", "date": "2026", "read": "2026", "quality": "U"}

    edit(data_dir, "sources.yaml", add)
    assert problems_of(data_dir) == ("sources.yaml: DEAD: cited by no figure (remove it or cite it)",)


def test_resolve_model_accepts_names_and_repository_ids_in_any_case() -> None:
    assert catalog.resolve_model("Llama-3.1-8B").name == "llama-3.1-8b"
    assert catalog.resolve_model("META-LLAMA/llama-3.1-8b-instruct").name == "llama-3.1-8b"
    with pytest.raises(UnknownModelError) as error:
        catalog.resolve_model("lama-3.1-8b")
    assert "llama-3.1-8b" in error.value.close_matches
    assert "close matches: llama-3.1-8b" in str(error.value)


def test_resolve_instance_suggests_close_names() -> None:
    assert catalog.resolve_instance("P5.48XLARGE").name == "p5.48xlarge"
    with pytest.raises(UnknownInstanceError) as error:
        catalog.resolve_instance("p5.49xlarge")
    assert "p5.48xlarge" in error.value.close_matches


def _between(text: str, tag: str) -> str:
    begin, end = f"<!-- {tag}:begin -->\n", f"<!-- {tag}:end -->"
    assert text.count(begin) == 1 and text.count(end) == 1, f"docs/sizing.md needs one pair of {tag} markers"
    return text.split(begin, 1)[1].split(end, 1)[0]


def test_docs_hold_exactly_the_generated_tables(root: Path) -> None:
    from components.catalog.reference import render_markdown
    from components.sizing.core import assumptions_markdown

    text = (root / "docs" / "sizing.md").read_text(encoding="utf-8")
    assert _between(text, "catalog") == render_markdown(), "regenerate the catalog tables in docs/sizing.md"
    assert _between(text, "sizing") == assumptions_markdown(), "regenerate the sizing constants in docs/sizing.md"


def test_a_quantized_dtype_sized_from_parameters_needs_the_embeddings(data_dir: Path) -> None:
    edit(data_dir, "models.yaml", lambda d: d["models"]["llama-3.3-70b"].pop("embeddings"))
    problems = problems_of(data_dir)
    assert any(p.startswith("models.yaml: models.llama-3.3-70b.embeddings: missing") and "fp8" in p for p in problems)


def test_a_known_good_entry_must_name_a_catalog_model_and_one_of_its_dtypes(data_dir: Path) -> None:
    def change(d) -> None:
        d["deployments"][0]["model"] = "llama-9"
        d["deployments"][1]["dtype"] = "mxfp4"
        d["deployments"][2].pop("source")

    edit(data_dir, "known_good.yaml", change)
    problems = problems_of(data_dir)
    assert any("known_good.yaml: deployments[0].model: expected one of" in p for p in problems)
    assert any("known_good.yaml: deployments[1].dtype: mxfp4 is not a dtype of deepseek-v3" in p for p in problems)
    assert any("known_good.yaml: deployments[2]: figures without a source" in p for p in problems)


def test_serving_docs_hold_the_cold_start_constants(root: Path) -> None:
    from components.sizing.cold_start import assumptions_markdown as cold_start_markdown

    text = (root / "docs" / "serving.md").read_text(encoding="utf-8")
    assert _between(text, "cold-start") == cold_start_markdown(), "regenerate the cold-start table in docs/serving.md"


def test_cold_start_streaming_beats_copying_and_names_its_parts() -> None:
    from components.sizing.cold_start import WeightsCheck, WeightsLoad, estimate

    stream, copy = estimate(671.0, WeightsLoad.STREAM), estimate(671.0, WeightsLoad.COPY)
    assert stream.total_seconds == sum(
        (stream.node_launch_seconds, stream.image_pull_seconds, stream.weights_seconds, stream.engine_seconds)
    )
    assert stream.total_seconds < copy.total_seconds - 20 * 60  # DeepSeek-R1: the copy alone is 22 minutes
    assert estimate(671.0, WeightsLoad.STREAM, WeightsCheck.FULL).weights_seconds > stream.weights_seconds
    with pytest.raises(ValueError):
        estimate(0, WeightsLoad.STREAM)


def test_every_gpu_family_has_a_sourced_node_launch_time(data_dir: Path) -> None:
    """The simulator and the cold-start estimate read a node's launch time per instance family: a GPU family without
    one (a new family added to the catalog) is refused, naming the family, instead of silently taking a default."""
    for instance in load_catalog(DATA_DIR).instances.values():
        assert (instance.node_launch_seconds is None) == (instance.gpu is None), instance.name
        if instance.gpu is not None:
            assert instance.sources["node_launch"] in load_catalog(DATA_DIR).sources
    edit(data_dir, "instances.yaml", lambda d: d["node_launch"].pop("g6e"))
    problems = problems_of(data_dir)
    assert any("instances.g6e.xlarge.spec.family: g6e has no node_launch entry" in p for p in problems)
    edit(data_dir, "instances.yaml", lambda d: d["node_launch"]["g5"].pop("source"))
    assert any(p.startswith("instances.yaml: node_launch.g5") for p in problems_of(data_dir))
