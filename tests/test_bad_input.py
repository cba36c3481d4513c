"""Bad input is refused with exit 2 naming the key, file or argument: never a traceback, never a half-written
output (README, "Exit codes")."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

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


# --- found by the property test (tests/test_bad_input_property.py): each was a traceback, exit 1 ---------------


def test_an_integer_beyond_a_float_is_refused_by_key_not_by_a_crash(project: Path, capsys) -> None:
    # Formatting 10**400 for the message overflowed a float.
    write_stack(project, "huge", f"  modelyard:cost: {{fte: {10**400}}}\n  modelyard:tags: {{extra: {10**400}}}")
    assert plan(project, "huge") == 2
    err = capsys.readouterr().err
    assert "modelyard:cost.fte: about 1e400 is too large" in err
    assert "modelyard:tags.extra: expected a map of name to string, got number about 1e400" in err


def test_an_integer_of_thousands_of_digits_names_its_line(project: Path, capsys) -> None:
    # Python refuses to read more than 4,300 digits; the YAML reader let that ValueError out, and so did the
    # JSON reader of `pulumi up`'s config.
    write_stack(project, "digits", f"  modelyard:cost: {{fte: {'7' * 5000}}}")
    assert plan(project, "digits") == 2
    err = capsys.readouterr().err
    assert "Pulumi.digits.yaml: not valid YAML" in err and "an integer of 5000 characters" in err and "line 3" in err

    from components.errors import InputError
    from components.settings import build_settings

    with pytest.raises(InputError, match=r"modelyard:cost: not valid JSON"):
        build_settings(
            project="modelyard",
            stack="s",
            config={"modelyard:preset": "minimal", "modelyard:cost": f'{{"fte": {"7" * 5000}}}'},
        )


def test_keys_that_yaml_reads_as_numbers_or_null_are_refused_by_path(project: Path, capsys) -> None:
    # A nested key `1:` or `null:` broke the JSON the engine is handed (keys of two types cannot be sorted).
    write_stack(
        project, "keys", "  modelyard:tags:\n    extra:\n      team: a\n      1: b\n      null: c\n      1.5: d"
    )
    assert plan(project, "keys") == 2
    err = capsys.readouterr().err
    for key, read_as in (("1", "int 1"), ("null", "null"), ("1.5", "float 1.5")):
        assert f"Pulumi.keys.yaml: modelyard:tags.extra.{key}: YAML reads this key as {read_as}: quote it" in err


def test_values_json_cannot_hold_are_refused_and_dates_stay_text(project: Path, capsys) -> None:
    write_stack(project, "kinds", "  modelyard:tags:\n    extra:\n      a: !!binary aGVsbG8=\n      b: !!set {x, y}")
    assert plan(project, "kinds") == 2
    err = capsys.readouterr().err
    assert (
        "modelyard:tags.extra.a: YAML reads this as bytes" in err
        and "modelyard:tags.extra.b: YAML reads this as set" in err
    )
    # An unquoted date is the text written, as the Pulumi CLI hands it over: here, a region that does not exist.
    write_stack(project, "dated", "  modelyard:region: 2025-01-01")
    assert plan(project, "dated") == 2
    assert "modelyard:region: unknown AWS region '2025-01-01'" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["x" * 5000, "../../etc/passwd", "a/b", "-x", ""])
def test_a_stack_name_that_is_no_stack_name_is_refused_before_a_file_is_looked_for(
    project: Path, capsys, name: str
) -> None:
    # `layer_of: <5000 characters>` made the file system refuse the path (OSError), and a path left the stacks folder;
    # an empty one was read as JSON.
    (project / "stacks" / "Pulumi.k8s.yaml").write_text(yaml.safe_dump({"config": {"modelyard:layer_of": name}}))
    assert plan(project, "k8s") == 2
    err = capsys.readouterr().err
    assert ("is not a Pulumi stack name" if name else "must name the stack that holds the AWS layer") in err
    assert "  - modelyard:layer_of: " in err
    if name and not name.startswith("-"):  # argparse reads -x as an option of its own
        assert plan(project, name) == 2
        assert "  - --stack: " in capsys.readouterr().err


def test_a_key_with_a_line_break_is_refused_on_one_line(project: Path, capsys) -> None:
    # The problem's line broke in two, and the second half named nothing.
    write_stack(project, "newline", '  modelyard:cluster: {"a\\nb\\u200b": 1}')
    assert plan(project, "newline") == 2
    assert "  - modelyard:cluster.a\\nb\\u200b: unknown key" in capsys.readouterr().err


# --- secrets stay secret, even where they were pasted by mistake ---------------------------------------------

# Decrypted secrets as `pulumi up` hands them over (the engine tells only which top-level keys are secret).
GATEWAY_KEY = "sk-gateway-0123456789abcdef"
WEBHOOK = "https://hooks.example.com/services/T0/B0/s3cr3t-hook"
ENGINE_SECRETS = {
    "gateway": {"keys": {"internal": {"key": GATEWAY_KEY}}},
    "monitoring": {"receivers": {"page": {"kind": "webhook", "secret": WEBHOOK}}},
}


def _leaks(text: str) -> list[str]:
    return [s for s in (GATEWAY_KEY, WEBHOOK, "s3cr3t") if s in text]


@pytest.fixture
def no_known_secrets():
    from components.errors import forget_secrets

    forget_secrets()
    yield
    forget_secrets()


@pytest.mark.parametrize(
    ("overrides", "place"),
    [
        ({"tenants": {GATEWAY_KEY: {"models": ["llama-8b"]}}}, "modelyard:tenants.[secret]"),
        ({"gateway": {"keys": {"internal": {"key": GATEWAY_KEY}, GATEWAY_KEY: {"tenant": "internal"}}}}, None),
        ({"region": GATEWAY_KEY}, "modelyard:region"),
        ({"tags": {"extra": {"team": f"ml {WEBHOOK}"}}}, "modelyard:tags.extra.team"),
        ({"cluster": {"admins": [f"arn:aws:iam::111122223333:role/{GATEWAY_KEY}"]}}, "modelyard:cluster.admins[0]"),
    ],
)
def test_a_secret_pasted_into_a_plain_setting_is_refused_and_never_printed(no_known_secrets, overrides, place) -> None:
    from components.errors import InputError
    from components.settings import build_settings
    from components.settings.load import merge
    from tests.conftest import config_for

    values = merge(ENGINE_SECRETS, overrides)
    with pytest.raises(InputError) as caught:
        build_settings(
            project="modelyard",
            stack="s",
            config=config_for("minimal", **values),
            secret_keys=["modelyard:gateway", "modelyard:monitoring"],
        )
    text = caught.value.render()
    assert _leaks(text) == [], text
    pasted = {p.path for p in caught.value.problems if "holds the text of the secret" in p.message}
    assert pasted == {place or "modelyard:gateway.keys.[secret]"}, text
    assert _leaks(str(caught.value.problems)) == [], "the problems themselves hold no secret either"


def test_secret_settings_in_plain_text_are_refused_without_being_quoted(project: Path, capsys) -> None:
    # An alert receiver's secret, like a gateway key, belongs in the stack file only as ciphertext.
    receivers = f"{{page: {{kind: slack, secret: '{WEBHOOK}'}}}}"
    write_stack(
        project, "plain", f"  modelyard:monitoring: {{receivers: {receivers}}}\n  modelyard:cost: {{fte: '{WEBHOOK}'}}"
    )
    assert plan(project, "plain") == 2
    err = capsys.readouterr().err
    assert _leaks(err) == [], err
    assert (
        "  - modelyard:monitoring.receivers.page.secret: a secret in plain text: set it with `pulumi config set " in err
    )
    assert "  - modelyard:cost.fte: holds the text of the secret modelyard:monitoring.receivers.page.secret" in err
    assert "  - modelyard:cost.fte: expected a number, got string '[secret]'" in err
    # Given as ciphertext, the same receiver is planned.
    write_stack(
        project, "ciphertext", "  modelyard:monitoring: {receivers: {page: {kind: slack, secret: {secure: v1:x}}}}"
    )
    assert plan(project, "ciphertext") == 0


def test_a_secret_in_a_preset_file_is_refused(project: Path, capsys) -> None:
    preset = project / "stacks" / "presets" / "minimal.yaml"
    data = yaml.safe_load(preset.read_text())
    data["gateway"]["master_key"] = GATEWAY_KEY
    preset.write_text(yaml.safe_dump(data))
    assert plan(project, "pilot") == 2
    err = capsys.readouterr().err
    assert (
        "  - modelyard:gateway.master_key: a secret in plain text in the preset file" in err and "minimal.yaml" in err
    )
    assert _leaks(err) == []


def test_a_message_redacts_every_known_secret_however_it_is_quoted(no_known_secrets) -> None:
    # The last line of defence: whatever builds a message, the secrets this process read are not in it.
    import json

    from components.errors import InputError, Problem, keep_secret

    secret = 'ab"c\\d-0123456789'
    keep_secret([secret])
    error = InputError(
        [
            Problem(path=f"tenants.{secret}", message=f"got {secret!r}"),
            Problem(path="x", message=f"as JSON {json.dumps(secret)}, as written {secret}"),
        ]
    )
    assert "0123456789" not in error.render() and "0123456789" not in str(error)
    assert error.render().count("[secret]") == 4


def test_no_output_of_the_plan_holds_a_known_secret(project: Path, no_known_secrets, capsys) -> None:
    # Should a secret's text reach the plan some way the settings did not catch, text, markdown, JSON and manifests
    # still print [secret]. Here the "secret" is a name the pilot's plan is full of.
    from components.errors import keep_secret
    from components.plan import command

    keep_secret(["tenant-internal"])
    out = project / "out"
    out.mkdir()
    args = [
        "--json",
        str(out / "plan.json"),
        "--markdown",
        str(out / "summary.markdown"),
        "--manifests",
        str(out / "objects"),
    ]
    assert command.main(["--stack", "pilot", "--project-dir", str(project), *args]) == 0
    texts = [capsys.readouterr().out, *(p.read_text() for p in out.rglob("*") if p.is_file())]
    assert len(texts) > 40 and all("tenant-internal" not in t for t in texts)
    assert '"namespace": "[secret]"' in (out / "plan.json").read_text()


def test_secret_manifests_keep_their_keys_and_stay_valid_secrets(project: Path, capsys) -> None:
    import json

    import kubernetes_validate

    secure = "{secure: v1:abc==}"
    gateway = (
        f"{{keys: {{internal: {{key: {secure}}}}}, master_key: {secure}, "
        f"fallbacks: {{llama-8b: {{provider: openai, model: gpt-4o, api_key: {secure}}}}}}}"
    )
    receivers = f"{{page: {{kind: pagerduty, secret: {secure}}}, ticket: {{kind: slack, secret: {secure}}}}}"
    write_stack(
        project,
        "secrets",
        f"  modelyard:gateway: {gateway}\n  modelyard:monitoring: {{receivers: {receivers}}}\n"
        "  modelyard:tenants: {internal: {data: external-allowed}}",
    )
    out = project / "out"
    assert plan(project, "secrets", "--json", str(project / "plan.json"), "--manifests", str(out)) == 0
    written = [yaml.safe_load(p.read_text()) for p in sorted(out.rglob("secret-*.yaml"))]
    planned = json.loads((project / "plan.json").read_text())
    in_json = [m["object"] for m in planned["manifests"] if m["object"]["kind"] == "Secret"]
    inputs = [r["inputs"] for r in planned["resources"] if r["type"] == "kubernetes:core/v1:Secret"]
    # master key, metrics token, a key's digest, the provider key, two receivers
    assert len(written) == len(in_json) == len(inputs) == 6
    for secret in [*written, *in_json, *inputs]:
        data = {**secret.get("data", {}), **secret.get("stringData", {})}
        assert data and set(data.values()) == {"[secret]"}, secret
        kubernetes_validate.validate(secret, "1.33.0", strict=True)
    assert sorted(k for s in written for k in s["stringData"]) == sorted(
        ["api_key", "key", "sha256", "secret", "secret", "token"]
    ), "each key a Secret holds, by its name"
    assert "offline-secret-placeholder" not in (project / "plan.json").read_text()


def test_an_instance_type_in_another_case_is_refused_by_key(project: Path, capsys) -> None:
    # The catalog found `G6E.xlarge` (its lookup ignores case) but the cost model and Karpenter's requirements use
    # the name as written: the plan stopped with a KeyError in the cost estimate.
    write_stack(project, "case", "  modelyard:pools: {l40s: {instance_types: [G6E.xLarge]}}")
    assert plan(project, "case") == 2
    assert "  - modelyard:pools.l40s.instance_types[0]: write 'G6E.xLarge' as AWS does: g6e.xlarge" in (
        capsys.readouterr().err
    )
