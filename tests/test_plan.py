"""Plan JSON v1: shape, stable keys, determinism, preview unknowns, and the `pulumi up` error path."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pulumi
import pytest

from components.contract import SECRET, UNKNOWN
from components.errors import InputError
from components.plan.engine import PlanMocks, dump_json, run_program
from components.plan.run import plan_stack
from components.settings.stackfile import SECRET_PLACEHOLDER, StackFile
from tests.conftest import ROOT, SHIPPED_STACKS, by_type

SNAKE = re.compile(r"[a-z][a-z0-9_]*")


def test_every_preset_has_a_shipped_stack():
    presets = {p.stem for p in (ROOT / "stacks" / "presets").glob("*.yaml")}
    chosen = {StackFile.load(ROOT, s).config["modelyard:preset"] for s in SHIPPED_STACKS}
    assert presets == chosen == {"minimal", "moderate", "enterprise"}


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_plan_has_the_v1_shape(plans, stack):
    plan = plans[stack]
    assert plan["schema"] == "modelyard.plan/v1"
    assert set(plan) == {
        "schema", "project", "stack", "stacks", "preset", "meta", "resources", "manifests", "outputs", "serving",
        "cost",
    }  # fmt: skip
    assert (plan["project"], plan["stack"]) == ("modelyard", stack)
    assert set(plan["meta"]) == {"kit_version", "catalog_date", "packages"}
    assert set(plan["meta"]["packages"]) == {"pulumi", "pulumi-aws", "pulumi-kubernetes"}
    assert all(v != "not installed" for v in plan["meta"]["packages"].values())
    fields = {
        "key",
        "type",
        "name",
        "parent",
        "custom",
        "provider",
        "protect",
        "retain_on_delete",
        "depends_on",
        "inputs",
    }
    for resource in plan["resources"]:
        assert (
            fields | {"stack", "urn"}
            <= set(resource)
            <= fields | {"stack", "urn", "options", "aliases", "alias_urns", "property_dependencies"}
        )
        assert all(SNAKE.fullmatch(k) for k in resource)
        # Per input (as the engine spells it), the keys its value comes from: all among the resource's dependencies.
        for prop, keys in resource.get("property_dependencies", {}).items():
            assert prop in resource["inputs"] and keys and keys == sorted(keys)
            assert set(keys) <= set(resource["depends_on"])


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_keys_are_unique_stable_names_not_urns(plans, stack):
    keys = [r["key"] for r in plans[stack]["resources"]]
    assert len(keys) == len(set(keys))
    assert keys == sorted(keys)
    for key in keys:
        assert "urn:pulumi" not in key
    (vpc,) = by_type(plans[stack], "aws:ec2/vpc:Vpc")
    assert vpc["key"] == f"{plans[stack]['outputs']['region']}/network/network-vpc::aws:ec2/vpc:Vpc"
    assert vpc["parent"] == "network::modelyard:aws:Network"


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_references_point_at_resources_of_the_plan(plans, stack):
    plan = plans[stack]
    keys = {r["key"] for r in plan["resources"]}
    for resource in plan["resources"]:
        assert resource["parent"] is None or resource["parent"] in keys
        assert resource["provider"] is None or resource["provider"] in keys
        assert set(resource["depends_on"]) <= keys
        assert resource["depends_on"] == sorted(resource["depends_on"])


def test_same_settings_same_bytes(plans):
    assert dump_json(plan_stack(ROOT, "product")) == dump_json(plans["product"])


def test_mock_outputs_are_plausible(plans):
    plan = plans["product"]
    (policy,) = [p for p in by_type(plan, "aws:iam/rolePolicy:RolePolicy") if p["name"] == "network-flow-logs"]
    assert "arn:aws:logs:us-east-1:123456789012:log-group:" in policy["inputs"]["policy"]
    assert re.fullmatch(r"vpc-[0-9a-f]{17}", plan["outputs"]["vpc_id"])
    assert all(re.fullmatch(r"subnet-[0-9a-f]{17}", s) for s in plan["outputs"]["private_subnet_ids"])


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_preview_leaves_computed_outputs_unknown(preview_plans, plans, stack):
    preview = preview_plans[stack]
    assert preview["outputs"]["vpc_id"] == UNKNOWN
    assert preview["outputs"]["region"] == plans[stack]["outputs"]["region"]
    (subnet, *_) = by_type(preview, "aws:ec2/subnet:Subnet")
    assert subnet["inputs"]["vpcId"] == UNKNOWN
    # Same resources either way: nothing in the program depends on an output being known.
    assert [r["key"] for r in preview["resources"]] == [r["key"] for r in plans[stack]["resources"]]


def _project_copy(tmp_path: Path, stack: str, body: str) -> Path:
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copytree(ROOT / "stacks" / "presets", tmp_path / "stacks" / "presets")
    (tmp_path / "stacks" / f"Pulumi.{stack}.yaml").write_text(body)
    return tmp_path


def test_one_setting_changes_only_what_it_concerns(tmp_path):
    base = (ROOT / "stacks" / "Pulumi.pilot.yaml").read_text()
    # The stack file sets modelyard:network already (its cidr): the setting goes under it.
    under = "  modelyard:network:\n"
    changed = base.replace(under, under + "    flow_logs:\n      retention_days: 365\n")
    assert changed != base
    project = _project_copy(tmp_path, "pilot", changed)
    before = {r["key"]: r for r in plan_stack(ROOT, "pilot")["resources"]}
    after = {r["key"]: r for r in plan_stack(project, "pilot")["resources"]}
    assert before.keys() == after.keys()
    differing = [k for k in before if before[k] != after[k]]
    assert differing == ["us-east-1/network/network-flow-logs::aws:cloudwatch/logGroup:LogGroup"]
    assert after[differing[0]]["inputs"]["retentionInDays"] == 365


def test_secure_config_values_are_placeholders_and_secret(tmp_path):
    body = "config:\n  modelyard:preset: minimal\n  modelyard:tags:\n    cost_center:\n      secure: v1:abc==\n"
    stack_file = StackFile.load(_project_copy(tmp_path, "s", body), "s")
    assert stack_file.secret_keys == {"modelyard:tags"}
    assert json.loads(stack_file.engine_config()["modelyard:tags"]) == {"cost_center": SECRET_PLACEHOLDER}


def test_secret_inputs_are_masked(tmp_path):
    from components.plan.document import resource_keys
    from components.plan.engine import normalise

    wire = {"password": {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "value": "hunter2"}}
    assert normalise(wire, urn_keys=resource_keys([], "")) == {"password": SECRET}


def test_bad_settings_under_pulumi_up_are_one_error_before_any_resource(tmp_path):
    body = "config:\n  modelyard:preset: minimal\n  modelyard:network:\n    natt: none\n    cidr: 10.0.0.0/8\n"
    stack_file = StackFile.load(_project_copy(tmp_path, "bad", body), "bad")
    with pytest.raises(pulumi.RunError) as exc:
        run_program(stack_file, preview=True)
    message = str(exc.value)
    assert "modelyard:network.natt: unknown key (did you mean 'nat'?)" in message
    assert "modelyard:network.cidr" in message


def test_plan_refuses_bad_settings_with_input_error(tmp_path):
    body = "config:\n  modelyard:preset: moderat\n"
    with pytest.raises(InputError) as exc:
        plan_stack(_project_copy(tmp_path, "bad", body), "bad")
    assert exc.value.problems[0].path == "modelyard:preset"


def test_text_and_markdown_lead_with_the_cost(plans):
    from components.plan.render import markdown_report, text_report

    for view in (text_report(plans["pilot"]), markdown_report(plans["pilot"])):
        assert "inside the minimal band $125,000 to $190,000 a year" in view.split("\n\n")[0] + view[:600]


KEY = re.compile(r"(?:[a-z]{2}(?:-[a-z]+)+-\d/)?[^/:]+(?:/[^/:]+)*::[a-zA-Z0-9.\-]+:[a-zA-Z0-9.\-/]*:[A-Za-z0-9]+")


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_aliases_name_former_keys_never_current_ones(plans, stack):
    """The shipped stacks' aliases are the providers' type aliases (S3 *V2 types, older Kubernetes API versions) and
    the kit's renames (options.renamed_from: the same parent and type, the name they had by position); the kit's moves
    (options.moved_from) kept their component's name, hence their key: not listed."""
    plan = plans[stack]
    keys = {r["key"] for r in plan["resources"]}
    aliased = [r for r in plan["resources"] if "aliases" in r]
    assert aliased, "the providers' type aliases are expected in every shipped stack"
    for resource in aliased:
        assert resource["aliases"] and resource["aliases"] == sorted(set(resource["aliases"]))
        for alias in resource["aliases"]:
            assert KEY.fullmatch(alias), alias
            assert alias not in keys
            place, type_ = alias.rsplit("::", 1)
            if type_ == resource["type"]:  # the kit's rename: same parent, a name by position
                assert place.rsplit("/", 1)[0] == resource["key"].rsplit("::", 1)[0].rsplit("/", 1)[0]
                assert re.fullmatch(r"\d+", place.rsplit("-", 1)[1]), alias
            else:  # same place, another type: the providers' renames
                assert place == resource["key"].rsplit("::", 1)[0]
    assert KEY.fullmatch("us-east-1/network/network-vpc::aws:ec2/vpc:Vpc") and all(KEY.fullmatch(k) for k in keys)
    for group in by_type(plan, "aws:cloudwatch/logGroup:LogGroup"):
        assert "aliases" not in group  # ContainerLogs "logs" -> ContainerLogGroup "logs": the same key


class _Box(pulumi.ComponentResource):
    def __init__(self, type_: str, name: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(type_, name, None, opts)


def _logs(name: str, parent: pulumi.Resource | None, provider: pulumi.ProviderResource, **opts) -> None:
    import pulumi_aws as aws

    options = pulumi.ResourceOptions(parent=parent, provider=provider, **opts)
    aws.cloudwatch.LogGroup(name, name=f"/test/{name}", retention_in_days=30, opts=options)


def _aliased_program() -> None:
    import pulumi_aws as aws

    from components.options import children_moved_from, moved_from

    provider = aws.Provider("aws", region="us-east-1")
    old, new = _Box("test:index:Old", "old"), _Box("test:index:New", "new")
    _logs("new-renamed", new, provider, aliases=[pulumi.Alias(parent=old, name="old-original")])
    _logs("new-moved", new, provider, aliases=[moved_from("test:index:Gone", "gone", "new-moved")])
    _logs("top", new, provider, aliases=[pulumi.Alias(parent=None)])
    _logs("typed", None, provider, aliases=[pulumi.Alias(type_="aws:cloudwatch/logGroup:Legacy")])
    pools = _Box("test:index:Capacity", "pools", children_moved_from("test:index:Capacity", "test:index:Pools", "gpu"))
    _logs("pools-a", pools, provider)
    after = _Box("test:index:After", "after", pulumi.ResourceOptions(aliases=[pulumi.Alias(name="before")]))
    _logs("after-logs", after, provider)


def test_the_engine_records_aliases_as_the_keys_they_name(tmp_path):
    from components.plan.document import plan_resources

    stack_file = StackFile.load(_project_copy(tmp_path, "aliases", "config:\n  modelyard:preset: minimal\n"), "aliases")
    recording = run_program(stack_file, preview=True, program=_aliased_program)
    group = "::aws:cloudwatch/logGroup:LogGroup"
    assert {r["key"]: r["aliases"] for r in plan_resources(recording) if "aliases" in r} == {
        # pulumi.Alias(parent=<a resource>, name=...): under that resource's key.
        f"us-east-1/new/new-renamed{group}": [f"us-east-1/old/old-original{group}"],
        # options.moved_from: under a top-level component the program no longer registers.
        f"us-east-1/new/new-moved{group}": [f"us-east-1/gone/new-moved{group}"],
        # parent=None: it had no parent.
        f"us-east-1/new/top{group}": [f"us-east-1/top{group}"],
        # Another type at the same place.
        f"us-east-1/typed{group}": ["us-east-1/typed::aws:cloudwatch/logGroup:Legacy"],
        # options.children_moved_from: every child, not the component.
        f"us-east-1/pools/pools-a{group}": [f"us-east-1/gpu/pools-a{group}"],
        # A renamed component: its own alias, and its children's inherited one (name prefix renamed too).
        "after::test:index:After": ["before::test:index:After"],
        f"us-east-1/after/after-logs{group}": [f"us-east-1/before/before-logs{group}"],
    }


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_urns_are_the_engines_from_the_types_of_the_parents(plans, stack):
    """`urn` is what `pulumi up` names the resource by (pulumi's resource.NewURN): its stack and the project, every
    ancestor's type below the stack then its own joined by `$`, its name; no mock's `pulumi:pulumi:Stack$`."""
    plan = plans[stack]
    by_key = {r["key"]: r for r in plan["resources"]}
    for resource in plan["resources"]:
        types, parent = [resource["type"]], resource["parent"]
        while parent is not None:
            types.insert(0, by_key[parent]["type"])
            parent = by_key[parent]["parent"]
        expected = f"urn:pulumi:{resource['stack']}::{plan['project']}::{'$'.join(types)}::{resource['name']}"
        assert resource["urn"] == expected
        assert "pulumi:pulumi:Stack$" not in resource["urn"]
        assert resource.get("alias_urns", []) == sorted(set(resource.get("alias_urns", [])))
        assert resource["urn"] not in resource.get("alias_urns", [])
    assert len({r["urn"] for r in plan["resources"]}) == len(plan["resources"])
    (vpc,) = by_type(plan, "aws:ec2/vpc:Vpc")
    assert vpc["urn"] == f"urn:pulumi:{stack}::modelyard::modelyard:aws:Network$aws:ec2/vpc:Vpc::network-vpc"


def test_the_kits_moves_are_in_alias_urns(plans):
    """The layer split moved the container log group from ContainerLogs "logs" to ContainerLogGroup "logs": the same
    key, another URN, and the alias that keeps it names the URN it had (checked against a plan of c399c45, before
    the split, whose log group had exactly that URN)."""
    (group,) = [g for g in by_type(plans["product"], "aws:cloudwatch/logGroup:LogGroup") if g["name"] == "logs-group"]
    at, logs = "urn:pulumi:product::modelyard::", "aws:cloudwatch/logGroup:LogGroup::logs-group"
    assert group["urn"] == f"{at}modelyard:aws:ContainerLogGroup${logs}"
    assert group["alias_urns"] == [f"{at}modelyard:k8s:ContainerLogs${logs}"]


def _nested_program() -> None:
    import pulumi_aws as aws

    provider = aws.Provider("aws", region="us-east-1")
    group = "aws:cloudwatch/logGroup:LogGroup"
    outer = _Box("test:index:Outer", "outer")
    retyped = pulumi.ResourceOptions(parent=outer, aliases=[pulumi.Alias(type_="test:index:OldInner")])
    inner = _Box("test:index:Inner", "inner", retyped)
    leaf = aws.cloudwatch.LogGroup("inner-leaf", opts=pulumi.ResourceOptions(parent=inner, provider=provider))
    renamed = pulumi.resource.create_urn("old-leaf", group, parent=inner)  # a whole-URN alias built on a parent's URN
    opts = pulumi.ResourceOptions(parent=inner, provider=provider, aliases=[renamed])
    aws.cloudwatch.LogGroup("leaf", opts=opts)
    pulumi.export("leaf_urn", leaf.urn)
    pulumi.export("sdk_urn", pulumi.resource.create_urn("inner-leaf", group, parent=inner))


def test_urns_and_alias_urns_are_the_engines_not_the_mocks(tmp_path):
    """The SDK's MockMonitor names a resource by its parent's own type only, under `pulumi:pulumi:Stack$` at the top;
    the engine by every ancestor's type and nothing for the stack. The recording monitor gives the engine's, so the
    aliases the program builds on a parent's URN, and the ones the plan derives (collapsed specs, a parent's aliases
    inherited), come out as the engine computes them."""
    from pulumi.runtime import mocks

    from components.plan.document import plan_resources

    stack_file = StackFile.load(_project_copy(tmp_path, "nested", "config:\n  modelyard:preset: minimal\n"), "nested")
    recording = run_program(stack_file, preview=False, program=_nested_program)
    at, group = "urn:pulumi:nested::modelyard::", "aws:cloudwatch/logGroup:LogGroup"
    urns = {r["name"]: (r["urn"], r.get("alias_urns")) for r in plan_resources(recording)}
    assert urns == {
        "aws": (f"{at}pulumi:providers:aws::aws", None),
        "outer": (f"{at}test:index:Outer::outer", None),
        "inner": (
            f"{at}test:index:Outer$test:index:Inner::inner",
            [f"{at}test:index:Outer$test:index:OldInner::inner"],
        ),
        # The parent's alias, inherited.
        "inner-leaf": (
            f"{at}test:index:Outer$test:index:Inner${group}::inner-leaf",
            [f"{at}test:index:Outer$test:index:OldInner${group}::inner-leaf"],
        ),
        # Its own alias as given, then the parent's alias alone and with its own.
        "leaf": (
            f"{at}test:index:Outer$test:index:Inner${group}::leaf",
            [
                f"{at}test:index:Outer$test:index:Inner${group}::old-leaf",
                f"{at}test:index:Outer$test:index:OldInner${group}::leaf",
                f"{at}test:index:Outer$test:index:OldInner${group}::old-leaf",
            ],
        ),
    }
    # The SDK's create_urn (the engine's CreateURN) on the recorded parent gives the recorded child.
    assert recording.outputs["leaf_urn"] == recording.outputs["sdk_urn"] == urns["inner-leaf"][0]
    # What the stock mock would have said, and the plan must not.
    stock = mocks.MockMonitor(PlanMocks(preview=True, provider_regions={}))
    assert stock.make_urn(recording.stack_urn, "test:index:Outer", "outer") == (
        f"{at}pulumi:pulumi:Stack$test:index:Outer::outer"
    )
    inner = urns["inner"][0]
    assert stock.make_urn(inner, group, "inner-leaf") == f"{at}test:index:Inner${group}::inner-leaf"


def test_two_resources_with_one_urn_are_refused(tmp_path, make_settings):
    """A URN lacks the parents' names: one name and type under two same-typed parents is one URN, which `pulumi up`
    refuses, though the keys differ."""
    from components.plan.document import build_plan

    def program() -> None:
        import pulumi_aws as aws

        provider = aws.Provider("aws", region="us-east-1")
        for parent in (_Box("test:index:Box", "a"), _Box("test:index:Box", "b")):
            aws.cloudwatch.LogGroup("logs", opts=pulumi.ResourceOptions(parent=parent, provider=provider))

    stack_file = StackFile.load(_project_copy(tmp_path, "twice", "config:\n  modelyard:preset: minimal\n"), "twice")
    recording = run_program(stack_file, preview=True, program=program)
    with pytest.raises(ValueError, match="two resources have one URN"):
        build_plan(settings=make_settings(), recordings=[recording], catalog_date="2026-01-01", project_dir=tmp_path)
