"""Bad input is refused with exit 2 naming the key, file or argument: never a traceback, never a half-written
output (README, "Exit codes")."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from components.cli import main as cli_main
from tests.conftest import ROOT


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A scratch project folder: the kit's Pulumi.yaml and presets, the pilot stack, the kit's charts."""
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copytree(ROOT / "stacks" / "presets", tmp_path / "stacks" / "presets")
    shutil.copy(ROOT / "stacks" / "Pulumi.pilot.yaml", tmp_path / "stacks" / "Pulumi.pilot.yaml")
    (tmp_path / "charts").symlink_to(ROOT / "charts")
    return tmp_path


def plan(project: Path, stack: str, *extra: str) -> int:
    return cli_main(["plan", "--stack", stack, "--project-dir", str(project), *extra])


def test_a_key_given_twice_is_refused_with_both_lines(project: Path, capsys) -> None:
    (project / "stacks" / "Pulumi.twice.yaml").write_text(
        "config:\n  modelyard:preset: minimal\n  modelyard:region: us-east-1\n  modelyard:region: eu-west-1\n"
    )
    assert plan(project, "twice") == 2
    err = capsys.readouterr().err
    assert "Pulumi.twice.yaml" in err and "'modelyard:region' twice (first on line 3)" in err and "line 4" in err


def test_a_key_given_twice_in_a_preset_is_refused(project: Path, capsys) -> None:
    preset = project / "stacks" / "presets" / "minimal.yaml"
    preset.write_text(preset.read_text() + "\nregion: eu-west-1\nregion: us-east-1\n")
    assert plan(project, "pilot") == 2
    assert "minimal.yaml" in capsys.readouterr().err


def test_a_yaml_merge_key_may_still_be_overridden(project: Path) -> None:
    from components.yamlio import parse_yaml

    assert parse_yaml("base: &b {a: 1, b: 2}\nother:\n  <<: *b\n  b: 3\n")["other"] == {"a": 1, "b": 3}


def test_a_stack_file_that_is_not_utf8_names_the_byte(project: Path, capsys) -> None:
    (project / "stacks" / "Pulumi.latin.yaml").write_bytes(
        b"config:\n  modelyard:preset: minimal\n  modelyard:tags:\n    extra: {team: caf\xe9}\n"
    )
    assert plan(project, "latin") == 2
    err = capsys.readouterr().err
    assert "Pulumi.latin.yaml: not UTF-8: byte 0xe9 on line 4" in err


def test_output_paths_that_cannot_be_written_are_refused_before_anything_runs(project: Path, capsys) -> None:
    existing_file = project / "taken"
    existing_file.write_text("keep me")
    assert plan(project, "pilot", "--json", str(project), "--manifests", str(existing_file / "sub")) == 2
    err = capsys.readouterr().err
    assert f"--json: {project} is a directory" in err
    assert f"--manifests: {existing_file} is a file" in err
    assert existing_file.read_text() == "keep me"
    assert plan(project, "pilot", "--markdown", str(project / "missing" / "summary.txt")) == 2
    assert "--markdown: folder" in capsys.readouterr().err


def write_stack(project: Path, name: str, body: str) -> None:
    (project / "stacks" / f"Pulumi.{name}.yaml").write_text(f"config:\n  modelyard:preset: minimal\n{body}\n")


@pytest.mark.parametrize(
    ("body", "key", "message"),
    [
        ("  modelyard:cost: {burst_share: .nan}", "modelyard:cost.burst_share", "expected a finite number, got nan"),
        (
            "  modelyard:network: {flow_logs: {retention_days: .inf}}",
            "modelyard:network.flow_logs.retention_days",
            "finite",
        ),
        ("  modelyard:cluster: {system_nodes: {max_nodes: 100000000000000000000000}}", "max_nodes", "too large"),
        ("  modelyard:cost: {fte: -.inf}", "modelyard:cost.fte", "finite"),
        (
            "  modelyard:gateway: {model_rpm: {llama-8b: 0}}",
            "modelyard:gateway.model_rpm.llama-8b",
            "below the minimum of 1",
        ),
        ("  modelyard:gateway: {model_rpm: {llama-8b: -5}}", "model_rpm.llama-8b", "below the minimum of 1"),
        (
            "  modelyard:cost: {prices: {nat_gateway_hour: -0.1}}",
            "cost.prices.nat_gateway_hour",
            "below the minimum of 0",
        ),
        ("  modelyard:cost: {tools_usd_per_month: -300}", "cost.tools_usd_per_month", "below the minimum of 0"),
        ("  1: x", "config", "key 1 is not a string"),
        ("  null: x", "config", "key None is not a string"),
        ("  preset: moderate", "preset", "sets modelyard:preset again"),
        ("  modelyad:cluster: {version: '1.33'}", "modelyad:cluster", "did you mean modelyard:cluster?"),
        ("  modelyards:region: eu-west-1", "modelyards:region", "did you mean modelyard:region?"),
    ],
)
def test_numbers_keys_and_namespaces_a_user_can_write(project: Path, capsys, body: str, key: str, message: str) -> None:
    write_stack(project, "bad", body)
    assert plan(project, "bad") == 2
    err = capsys.readouterr().err
    line = next((line for line in err.splitlines() if message in line), None)
    assert line is not None and key in line, err


def test_a_misspelled_namespace_is_refused_under_pulumi_up_too() -> None:
    # `pulumi up` hands the program every config key of the stack; the program refuses the typo itself.
    from components.errors import InputError
    from components.settings import build_settings

    with pytest.raises(InputError, match=r"modelyad:region: .*did you mean modelyard:region\?"):
        build_settings(
            project="modelyard",
            stack="s",
            config={"modelyard:preset": "minimal", "modelyad:region": "eu-west-1", "aws:region": "us-east-1"},
        )


def test_every_number_a_setting_takes_is_bounded() -> None:
    # A number without a floor let negative limits and prices through; each numeric field (and each number in a
    # map) states its bounds, or the values it allows.
    import collections.abc
    import dataclasses
    import typing

    from components.settings.schema import _strip_optional
    from components.settings.types import Settings

    unbounded = []

    def walk(cls: type, prefix: str) -> None:
        hints = typing.get_type_hints(cls)
        for field in dataclasses.fields(cls):
            tp = _strip_optional(hints[field.name])
            inner = tp
            if typing.get_origin(tp) in (dict, collections.abc.Mapping):
                inner = _strip_optional(typing.get_args(tp)[1])
            elif typing.get_origin(tp) is tuple:
                inner = typing.get_args(tp)[0]
            if inner in (int, float) and "minimum" not in field.metadata and "allowed" not in field.metadata:
                unbounded.append(f"{prefix}{field.name}")
            if dataclasses.is_dataclass(inner):
                walk(typing.cast(type, inner), f"{prefix}{field.name}.")

    walk(Settings, "")
    assert unbounded == []


def test_values_the_serving_chart_refuses_are_bad_input_naming_the_model() -> None:
    # The last line of defence behind the settings: Helm's check of values.schema.json, as `up` would run it.
    from components.errors import InputError
    from components.plan.charts import render_release

    values = {"image": {"tag": "latest"}}
    with pytest.raises(InputError, match=r"modelyard:models\.llama-8b: the chart llm-serving refuses these values"):
        render_release(ROOT / "charts" / "llm-serving", {"name": "llama-8b", "namespace": "t", "values": values})


def test_an_image_tag_latest_is_refused_by_key(project: Path, capsys) -> None:
    image = "{registry: 111122223333.dkr.ecr.us-east-1.amazonaws.com/ml, repository: vllm-efa, tag: latest, digest: "
    write_stack(project, "latest", f"  modelyard:models: {{llama-8b: {{image: {image}'sha256:{'0' * 64}'}}}}}}")
    assert plan(project, "latest") == 2
    assert "modelyard:models.llama-8b.image.tag: 'latest' does not match" in capsys.readouterr().err


@pytest.mark.parametrize(
    "halves", [["0.0.0.0/1", "128.0.0.0/1"], ["0.0.0.0/2", "64.0.0.0/2", "128.0.0.0/2", "192.0.0.0/2"]]
)
def test_allow_lists_that_add_up_to_the_internet_need_the_same_opt_in(make_settings, halves) -> None:
    from components.errors import InputError
    from tests.test_gateway_exposure import CERTIFICATE, PUBLIC

    cluster = {"endpoint": "public-and-private", "public_cidrs": halves}
    with pytest.raises(InputError, match=r"cluster\.public_cidrs: together these CIDRs admit 4,294,967,296"):
        make_settings(cluster=cluster)
    make_settings(cluster={**cluster, "allow_public_world": True})
    gateway = {**PUBLIC, "certificate_arn": CERTIFICATE, "allowed_cidrs": halves}
    with pytest.raises(InputError, match=r"gateway\.allowed_cidrs: together these CIDRs admit"):
        make_settings(gateway=gateway)
    make_settings(gateway={**gateway, "allow_public_world": True})


def test_narrow_allow_lists_pass(make_settings) -> None:
    make_settings(cluster={"endpoint": "public-and-private", "public_cidrs": ["203.0.113.0/24", "198.51.100.0/24"]})
