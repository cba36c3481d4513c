"""What the kit needs from the Pulumi SDK beyond its documented API, checked against the installed version.

The offline engine (components/plan/engine.py) runs the program under the SDK's mocks and reads what the SDK
sends its resource monitor; components/program.py reads the SDK's config store; components/tagging.py reads
pulumi-aws's generated constructors. None of that is a documented contract, so pyproject.toml pins pulumi to
the one minor series these tests passed on. When one fails after an upgrade, its message names the part that
changed and where the kit uses it: re-check that code against the new SDK before moving the pin
(docs/offline.md#the-pinned-pulumi-sdk).
"""

from __future__ import annotations

import contextvars
import importlib
import importlib.metadata
import inspect
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import pytest
from google.protobuf import empty_pb2
from google.protobuf.descriptor import FieldDescriptor
from packaging.requirements import Requirement
from packaging.version import Version
from pulumi.runtime import mocks
from pulumi.runtime.proto import alias_pb2, resource_pb2
from pulumi.runtime.sync_await import _sync_await

from components.contract import SECRET, UNKNOWN
from components.plan import urn as plan_urn
from components.plan.engine import AliasSpec, Recording, run_program
from components.settings.stackfile import StackFile
from tests.conftest import ROOT

PULUMI_VERSION = importlib.metadata.version("pulumi")
PIN_DOC = "docs/offline.md#the-pinned-pulumi-sdk"


def recheck(part: str, used_by: str) -> str:
    return f"pulumi {PULUMI_VERSION}: {part}; re-check {used_by} before moving the pin ({PIN_DOC})"


def _requirements() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {(r := Requirement(text)).name: r for text in project["dependencies"]}


# --- versions -----------------------------------------------------------------------------------------------


def test_pulumi_is_pinned_to_one_minor_series():
    spec = _requirements()["pulumi"].specifier
    bounds = {s.operator: Version(s.version) for s in spec}
    assert set(bounds) == {">=", "<"}, f"pyproject.toml: pulumi{spec} is not a `>=X.Y,<X.(Y+1)` pin ({PIN_DOC})"
    low, high = bounds[">="], bounds["<"]
    assert (high.major, high.minor) == (low.major, low.minor + 1) and high.micro == 0, (
        f"pyproject.toml: pulumi{spec} spans more than the minor series {low.major}.{low.minor}, the one the "
        f"offline engine is checked against ({PIN_DOC})"
    )


@pytest.mark.parametrize("package", ["pulumi", "pulumi-aws", "pulumi-kubernetes"])
def test_installed_sdk_is_in_the_tested_range(package: str):
    requirement = _requirements()[package]
    installed = importlib.metadata.version(package)
    assert requirement.specifier.contains(installed, prereleases=True), (
        f"{package} {installed} is installed, outside pyproject.toml's {requirement}: the kit was not checked "
        f"against it (`uv sync --locked` installs the tested version; to move the pin: {PIN_DOC})"
    )


# --- private names, with the shape the kit calls them with ----------------------------------------------------

ENGINE = "components/plan/engine.py"
PROGRAM = "components/program.py"

# (dotted name, what it must be, where the kit uses it). What it must be: "contextvar" or "text" (a non-empty
# string), or the parameters the kit passes: "(a, b)" these names in this order first, "{a, b}" at least these.
NAMES: list[tuple[str, str, str]] = [
    ("pulumi.runtime.settings.ROOT", "contextvar", f"{ENGINE} run_program (reset before each run)"),
    ("pulumi.runtime.settings.get_root_resource", "()", f"{ENGINE} run_program (stack outputs)"),
    ("pulumi.runtime.set_all_config", "(config, secret_keys)", f"{ENGINE} run_program"),
    ("pulumi.runtime.config.CONFIG", "contextvar", f"{PROGRAM} stack_config"),
    ("pulumi.runtime.config.get_config_env", "()", f"{PROGRAM} stack_config"),
    ("pulumi.runtime.config.is_config_secret", "(k)", f"{PROGRAM}, components/k8s/gateway/component.py"),
    (
        "pulumi.runtime.mocks.set_mocks",
        "{mocks, project, stack, preview, monitor, organization}",
        f"{ENGINE} run_program",
    ),
    ("pulumi.runtime.mocks.Mocks.new_resource", "(self, args)", f"{ENGINE} PlanMocks"),
    ("pulumi.runtime.mocks.Mocks.call", "(self, args)", f"{ENGINE} PlanMocks"),
    ("pulumi.runtime.mocks.MockResourceArgs", "{typ, name, inputs, provider}", f"{ENGINE} PlanMocks"),
    ("pulumi.runtime.mocks.MockCallArgs", "{token}", f"{ENGINE} PlanMocks.call"),
    ("pulumi.runtime.mocks.MockMonitor", "(mocks)", f"{ENGINE} RecordingMonitor"),
    ("pulumi.runtime.mocks.MockMonitor.make_urn", "(self, parent, type_, name)", f"{ENGINE} RecordingMonitor"),
    ("pulumi.runtime.mocks.MockMonitor.RegisterResource", "(self, request)", f"{ENGINE} RecordingMonitor"),
    ("pulumi.runtime.mocks.MockMonitor.ReadResource", "(self, request)", f"{ENGINE} RecordingMonitor"),
    ("pulumi.runtime.mocks.MockMonitor.GetDeploymentInfo", "(self, request)", "set_mocks (monitor features)"),
    ("pulumi.runtime.stack.run_pulumi_func", "(func)", f"{ENGINE} run_program"),
    ("pulumi.runtime.sync_await._sync_await", "(awaitable)", f"{ENGINE} run_program"),
    ("pulumi.runtime.rpc.serialize_property", "(value, deps, property_key)", f"{ENGINE} _exported_value"),
    ("pulumi.runtime.rpc.UNKNOWN", "text", f"{ENGINE} normalise"),
    ("pulumi.runtime.rpc._special_sig_key", "text", f"{ENGINE} normalise"),
    ("pulumi.runtime.rpc._special_secret_sig", "text", f"{ENGINE} normalise"),
    ("pulumi.runtime.rpc._special_resource_sig", "text", f"{ENGINE} normalise"),
    ("pulumi.runtime.rpc._special_asset_sig", "text", f"{ENGINE} normalise"),
    ("pulumi.runtime.rpc._special_archive_sig", "text", f"{ENGINE} normalise"),
    ("pulumi.Output.future", "(self, with_unknowns)", f"{ENGINE} _resolve_output, _exported_value"),
    ("pulumi.resource.create_urn", "(name, type_, parent, project, stack)", "components/options.py"),
]


def _lookup(dotted: str) -> Any:
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attr in parts[split:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


@pytest.mark.parametrize(("dotted", "shape", "used_by"), NAMES, ids=[n[0] for n in NAMES])
def test_private_name_has_the_shape_the_kit_uses(dotted: str, shape: str, used_by: str):
    try:
        obj = _lookup(dotted)
    except (ImportError, AttributeError):
        pytest.fail(recheck(f"{dotted} is gone", used_by))
    if shape == "contextvar":
        assert isinstance(obj, contextvars.ContextVar), recheck(f"{dotted} is no longer a ContextVar", used_by)
        return
    if shape == "text":
        assert isinstance(obj, str) and obj, recheck(f"{dotted} is no longer a non-empty string", used_by)
        return
    params = [p.strip() for p in shape[1:-1].split(",") if p.strip()]
    names = list(inspect.signature(obj).parameters)
    if shape.startswith("("):
        assert names[: len(params)] == params, recheck(
            f"{dotted} takes ({', '.join(names)}), the kit passes {shape}", used_by
        )
    else:
        missing = [p for p in params if p not in names]
        assert not missing, recheck(f"{dotted} no longer takes {', '.join(missing)}", used_by)


def test_the_wire_signatures_are_distinct():
    """normalise() tells secrets, resource references, assets and archives apart by these values alone."""
    from pulumi.runtime import rpc

    sigs = [
        rpc._special_secret_sig,
        rpc._special_resource_sig,
        rpc._special_asset_sig,
        rpc._special_archive_sig,
        rpc.UNKNOWN,
    ]
    assert len(set(sigs)) == len(sigs), recheck("two of the wire signatures are equal", f"{ENGINE} normalise")


# --- the request messages the RecordingMonitor reads -------------------------------------------------------

_STRING, _BOOL, _MESSAGE = FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BOOL, FieldDescriptor.TYPE_MESSAGE
Register = resource_pb2.RegisterResourceRequest
# (message, field, type, repeated, message type or oneof it belongs to)
FIELDS: list[tuple[Any, str, int, bool, str]] = [
    (Register, "type", _STRING, False, ""),
    (Register, "name", _STRING, False, ""),
    (Register, "custom", _BOOL, False, ""),
    (Register, "parent", _STRING, False, ""),
    (Register, "provider", _STRING, False, ""),
    (Register, "protect", _BOOL, False, ""),
    (Register, "retainOnDelete", _BOOL, False, ""),
    (Register, "dependencies", _STRING, True, ""),
    (Register, "object", _MESSAGE, False, "google.protobuf.Struct"),
    (Register, "ignoreChanges", _STRING, True, ""),
    (Register, "customTimeouts", _MESSAGE, False, "pulumirpc.RegisterResourceRequest.CustomTimeouts"),
    (Register, "aliasURNs", _STRING, True, ""),
    (Register, "aliases", _MESSAGE, True, "pulumirpc.Alias"),
    (Register.CustomTimeouts, "create", _STRING, False, ""),
    (Register.CustomTimeouts, "update", _STRING, False, ""),
    (Register.CustomTimeouts, "delete", _STRING, False, ""),
    (resource_pb2.ReadResourceRequest, "type", _STRING, False, ""),
    (resource_pb2.ReadResourceRequest, "name", _STRING, False, ""),
    (resource_pb2.ReadResourceRequest, "parent", _STRING, False, ""),
    (resource_pb2.ReadResourceRequest, "provider", _STRING, False, ""),
    (resource_pb2.ReadResourceRequest, "dependencies", _STRING, True, ""),
    (resource_pb2.ReadResourceRequest, "id", _STRING, False, ""),
    (alias_pb2.Alias, "urn", _STRING, False, "oneof alias"),
    (alias_pb2.Alias, "spec", _MESSAGE, False, "oneof alias"),
    (alias_pb2.Alias.Spec, "name", _STRING, False, ""),
    (alias_pb2.Alias.Spec, "type", _STRING, False, ""),
    (alias_pb2.Alias.Spec, "stack", _STRING, False, ""),
    (alias_pb2.Alias.Spec, "project", _STRING, False, ""),
    (alias_pb2.Alias.Spec, "parentUrn", _STRING, False, "oneof parent"),
    (alias_pb2.Alias.Spec, "noParent", _BOOL, False, "oneof parent"),
]


@pytest.mark.parametrize(
    ("message", "field", "kind", "repeated", "detail"),
    FIELDS,
    ids=[f"{m.DESCRIPTOR.name}.{f}" for m, f, *_ in FIELDS],
)
def test_request_field_the_monitor_reads(message: Any, field: str, kind: int, repeated: bool, detail: str):
    descriptor = message.DESCRIPTOR
    where = f"{ENGINE} RecordingMonitor / alias_specs"
    found = descriptor.fields_by_name.get(field)
    assert found is not None, recheck(f"{descriptor.full_name} has no field {field}", where)
    assert found.type == kind, recheck(f"{descriptor.full_name}.{field} changed type", where)
    is_repeated = found.label == FieldDescriptor.LABEL_REPEATED
    assert is_repeated == repeated, recheck(f"{descriptor.full_name}.{field} changed cardinality", where)
    if detail.startswith("oneof "):
        oneof = found.containing_oneof
        assert oneof is not None and oneof.name == detail.split()[1], recheck(
            f"{descriptor.full_name}.{field} left the oneof `{detail.split()[1]}` (WhichOneof reads it)", where
        )
    elif detail:
        assert found.message_type.full_name == detail, recheck(
            f"{descriptor.full_name}.{field} is no longer {detail}", where
        )


# --- behaviour ---------------------------------------------------------------------------------------------


def test_resetting_root_clears_the_root_resource():
    """The engine resets ROOT so one stack's root resource (and its outputs) never leaks into the next run."""
    import pulumi.runtime.settings as sdk_settings

    def reset() -> tuple[Any, Any]:
        marker = object()
        sdk_settings.ROOT.set(marker)  # type: ignore[arg-type]
        seen = sdk_settings.get_root_resource()
        sdk_settings.ROOT.set(None)
        return seen is marker, sdk_settings.get_root_resource()

    read_root, after_reset = contextvars.copy_context().run(reset)
    assert read_root, recheck("get_root_resource() no longer reads settings.ROOT", f"{ENGINE} run_program")
    assert after_reset is None, recheck("setting ROOT to None no longer clears the root", f"{ENGINE} run_program")


def test_config_set_by_the_engine_is_what_the_program_reads():
    from pulumi.runtime.config import is_config_secret

    from components.program import stack_config

    def configure() -> tuple[dict[str, str], bool, bool]:
        pulumi.runtime.set_all_config({"contract:plain": "1", "contract:hidden": "2"}, ["contract:hidden"])
        return stack_config(), is_config_secret("contract:hidden"), is_config_secret("contract:plain")

    values, hidden_secret, plain_secret = contextvars.copy_context().run(configure)
    where = f"{ENGINE} run_program and {PROGRAM} stack_config"
    assert {"contract:plain": "1", "contract:hidden": "2"}.items() <= values.items(), recheck(
        "set_all_config no longer fills config.CONFIG", where
    )
    assert hidden_secret and not plain_secret, recheck("set_all_config's secret_keys no longer mark secrets", where)


class _Answers(mocks.Mocks):
    def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        return "an-id", {}

    def call(self, args: mocks.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, []


class _MarkingMonitor(mocks.MockMonitor):
    def make_urn(self, parent: str, type_: str, name: str) -> str:
        return f"urn:marked::{type_}::{name}"


@pytest.mark.parametrize(
    ("method", "request_"),
    [
        ("RegisterResource", resource_pb2.RegisterResourceRequest(type="contract:index:Thing", name="a")),
        ("RegisterResource", resource_pb2.RegisterResourceRequest(type="pulumi:pulumi:Stack", name="a")),
        ("ReadResource", resource_pb2.ReadResourceRequest(type="contract:index:Thing", name="a", id="x")),
    ],
    ids=["register", "register-stack", "read"],
)
def test_the_mock_monitor_names_resources_through_make_urn(method: str, request_: Any):
    """RecordingMonitor overrides make_urn to give every resource the real engine's URN (components/plan/urn.py)."""
    response = getattr(_MarkingMonitor(_Answers()), method)(request_)
    assert response.urn == f"urn:marked::{request_.type}::a", recheck(
        f"MockMonitor.{method} no longer names resources through self.make_urn", f"{ENGINE} RecordingMonitor.make_urn"
    )


FEATURES = {
    "RESOURCE_MONITOR_FEATURE_SECRETS": "secrets arrive wrapped, so the plan can mask them (without it they are "
    "sent in clear text and the plan would print them)",
    "RESOURCE_MONITOR_FEATURE_RESOURCE_REFERENCES": "a resource passed as an input arrives as a reference, which "
    "normalise() turns into a plan key",
    "RESOURCE_MONITOR_FEATURE_ALIAS_SPECS": "aliases arrive as specs (alias_specs reads them)",
}


def test_the_mock_monitor_advertises_what_the_engine_decodes():
    supported = set(mocks.MockMonitor(_Answers()).GetDeploymentInfo(empty_pb2.Empty()).supportedFeatures)
    for feature, why in FEATURES.items():
        assert getattr(resource_pb2, feature) in supported, recheck(
            f"MockMonitor no longer supports {feature}: {why}", ENGINE
        )
    output_values = resource_pb2.RESOURCE_MONITOR_FEATURE_OUTPUT_VALUES
    assert output_values not in supported, recheck(
        "MockMonitor now supports output values: inputs would arrive as output-value objects normalise() does not read",
        f"{ENGINE} normalise",
    )


def _contract_program() -> None:
    provider = pulumi.ProviderResource("contract", "prov", {"region": "eu-west-1"})
    group = pulumi.ComponentResource("contract:index:Group", "group")
    dep = pulumi.CustomResource("contract:index:Dep", "dep", {"n": 1}, opts=pulumi.ResourceOptions(parent=group))
    thing = pulumi.CustomResource(
        "contract:index:Thing",
        "thing",
        {"hidden": pulumi.Output.secret("s"), "ref": dep, "n": 2, "file": pulumi.FileAsset("f.txt"), "up": dep.id},
        opts=pulumi.ResourceOptions(
            parent=group,
            provider=provider,
            depends_on=[dep],
            protect=True,
            retain_on_delete=True,
            ignore_changes=["n"],
            custom_timeouts=pulumi.CustomTimeouts(create="30m"),
            aliases=[pulumi.Alias(name="old"), "urn:pulumi:s::contract::contract:index:Thing::older"],
        ),
    )
    pulumi.export("out", "v")
    pulumi.export("secret", pulumi.Output.secret("x"))
    pulumi.export("later", thing.id)


def _mock_id_of(name: str, value: Any) -> Any:
    """`value` when it is an id the engine's mocks give a resource named `name`, else None."""
    return value if re.fullmatch(rf"{name}-[0-9a-f]{{17}}", str(value)) else None


def _record(tmp_path: Path, *, preview: bool, program: Callable[[], None]) -> Recording:
    stacks = tmp_path / "stacks"
    stacks.mkdir(exist_ok=True)
    (stacks / "Pulumi.s.yaml").write_text("config: {}\n")
    stack_file = StackFile(
        project="contract", stack="s", path=stacks / "Pulumi.s.yaml", config={}, secret_keys=frozenset()
    )
    return run_program(stack_file, preview=preview, program=program)


@pytest.mark.parametrize("preview", [False, True], ids=["apply", "preview"])
def test_the_recording_monitor_receives_every_option_the_plan_records(tmp_path: Path, preview: bool):
    """One small program through the real engine: each option the plan shows must reach RegisterResource."""
    from components.plan.engine import normalise

    recording = _record(tmp_path, preview=preview, program=_contract_program)
    where = f"{ENGINE} RecordingMonitor.RegisterResource"
    assert recording.stack_urn == "urn:pulumi:s::contract::pulumi:pulumi:Stack::contract-s", recheck(
        "the stack resource is no longer registered first through RegisterResource", where
    )
    by_name = {r.name: r for r in recording.registrations}
    assert set(by_name) == {"prov", "group", "dep", "thing"}, recheck("registrations differ", where)
    thing, dep = by_name["thing"], by_name["dep"]
    assert thing.custom and not by_name["group"].custom, recheck("RegisterResourceRequest.custom", where)
    assert thing.parent_urn == by_name["group"].urn, recheck("RegisterResourceRequest.parent", where)
    assert thing.provider_urn == by_name["prov"].urn, recheck(
        "the provider reference is no longer `<urn>::<id>`", where
    )
    assert dep.urn in thing.dependency_urns, recheck("RegisterResourceRequest.dependencies", where)
    assert (thing.protect, thing.retain_on_delete) == (True, True), recheck("protect / retainOnDelete", where)
    assert (dep.protect, dep.retain_on_delete) == (False, False), recheck("protect / retainOnDelete defaults", where)
    assert thing.ignore_changes == ["n"], recheck("RegisterResourceRequest.ignoreChanges", where)
    assert thing.custom_timeouts == {"create": "30m"}, recheck("RegisterResourceRequest.customTimeouts", where)
    assert AliasSpec(name="old") in thing.aliases, recheck("an alias by name no longer arrives as a spec", where)
    assert AliasSpec(urn="urn:pulumi:s::contract::contract:index:Thing::older") in thing.aliases, recheck(
        "an alias by URN no longer arrives", where
    )
    inputs = normalise(thing.inputs, urn_keys={dep.urn: "the-dep-key"})
    assert inputs == {"hidden": SECRET, "ref": "the-dep-key", "n": 2, "file": {"asset": "f.txt"}, "up": inputs["up"]}, (
        recheck(
            f"inputs on the wire changed (secret, resource reference, number, asset or unknown): {inputs}",
            f"{ENGINE} normalise",
        )
    )
    assert inputs["up"] == (UNKNOWN if preview else _mock_id_of("dep", inputs["up"])), recheck(
        "an output of another resource, as an input", f"{ENGINE} normalise"
    )
    later = recording.outputs.get("later")
    assert recording.outputs == {"out": "v", "secret": SECRET, "later": later}, recheck(
        "the root stack resource's outputs (pulumi.export) are no longer read as before", f"{ENGINE} run_program"
    )
    expected_later = UNKNOWN if preview else _mock_id_of("thing", later)
    assert later == expected_later, recheck(
        f"a stack output from a resource's id reads {later!r}", f"{ENGINE} _resolve_output"
    )
    assert recording.exported.secret_names == ["secret"], recheck(
        "the secrecy of stack outputs", f"{ENGINE} run_program"
    )


@pytest.mark.parametrize(
    ("name", "type_", "parent", "project", "stack"),
    [
        ("child", "contract:index:Thing", "urn:pulumi:s::contract::contract:index:Group::group", None, None),
        ("nested", "contract:index:Thing", "urn:pulumi:s::contract::a:b:C$contract:index:Group::group", None, None),
        ("top", "contract:index:Thing", None, "contract", "s"),
    ],
)
def test_plan_urns_match_the_sdks_create_urn(
    name: str, type_: str, parent: str | None, project: str | None, stack: str | None
):
    """`modelyard diff` matches aliases the program builds with pulumi.resource.create_urn (components/options.py)
    against URNs components/plan/urn.py computes: the two must agree."""
    sdk = _sync_await(pulumi.resource.create_urn(name, type_, parent, project=project, stack=stack).future())
    ours = plan_urn.create_urn(name, type_, parent or "", project or "", stack or "")
    assert sdk == ours, recheck(f"create_urn gives {sdk}, components/plan/urn.py {ours}", "components/plan/urn.py")


@pytest.mark.parametrize(
    ("token", "takes_tags"),
    [("aws:ec2/vpc:Vpc", True), ("aws:iam/rolePolicyAttachment:RolePolicyAttachment", False)],
)
def test_pulumi_aws_constructors_show_whether_a_type_takes_tags(token: str, takes_tags: bool):
    """components/tagging.py reads `tags` from the generated `_internal_init` of pulumi-aws classes."""
    from components.tagging import is_taggable

    _, module_path, class_name = token.split(":")
    cls = getattr(importlib.import_module(f"pulumi_aws.{module_path.split('/')[0]}"), class_name)
    version = importlib.metadata.version("pulumi-aws")
    where = f"components/tagging.py is_taggable (pulumi-aws {version})"
    assert callable(getattr(cls, "_internal_init", None)), recheck(f"{cls.__name__}._internal_init is gone", where)
    assert is_taggable(token) is takes_tags, recheck(f"{cls.__name__}._internal_init's `tags` parameter", where)
