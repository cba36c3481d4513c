"""A stack grows through the tiers in place: moving a shipped stack's preset one tier up keeps its VPC, subnets,
cluster, node roles, buckets, keys, database and cache (docs/upgrades.md, "Changing tier"); a changed VPC CIDR shows
its cascade, the EKS cluster replaced; a move to a split deployment gets the `pulumi state move` commands that keep
its Kubernetes objects."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from components.cli import main as cli_main
from components.plan.diff import diff_plans
from components.plan.run import plan_stack
from components.plan.state_moves import apply_moves, state_moves
from tests.conftest import ROOT

# What a tier change must never replace or delete.
KEPT = {
    "aws:ec2/vpc:Vpc",
    "aws:ec2/subnet:Subnet",
    "aws:eks/cluster:Cluster",
    "aws:s3/bucket:Bucket",
    "aws:kms/key:Key",
    "aws:rds/instance:Instance",
    "aws:elasticache/replicationGroup:ReplicationGroup",
}


def _project(tmp_path: Path, stack: str, preset: str, extra: str = "") -> Path:
    """A copy of the kit's stacks with `stack` moved to `preset` (and `extra` lines of its config appended)."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "Pulumi.yaml", project / "Pulumi.yaml")
    shutil.copytree(ROOT / "stacks", project / "stacks")
    (project / "charts").symlink_to(ROOT / "charts")
    stack_file = project / "stacks" / f"Pulumi.{stack}.yaml"
    text = stack_file.read_text(encoding="utf-8")
    before = next(line for line in text.splitlines() if line.strip().startswith("modelyard:preset:"))
    stack_file.write_text(text.replace(before, f"  modelyard:preset: {preset}") + extra, encoding="utf-8")
    if preset == "enterprise":  # a split deployment: the Kubernetes layer's stack file
        (project / "stacks" / f"Pulumi.{stack}-k8s.yaml").write_text(f"config:\n  modelyard:layer_of: {stack}\n")
    return project


def _lost(diff: dict[str, Any]) -> list[str]:
    """Replaced or deleted: what KEPT names, and the cluster's roles (control plane, nodes, controllers; a tenant's
    read role follows the preset's tenants, which a stack keeps by naming them in its own file)."""
    return [
        f"{c['action']} {c['key']}"
        for c in diff["changes"]
        if (c["type"] in KEPT or (c["type"] == "aws:iam/role:Role" and c["name"].startswith("cluster-")))
        and c["action"] in ("replace", "delete")
    ]


@pytest.fixture(scope="module")
def pilot_moderate(tmp_path_factory) -> dict[str, Any]:
    return plan_stack(_project(tmp_path_factory.mktemp("pilot"), "pilot", "moderate"), "pilot")


def test_pilot_to_moderate_keeps_every_stateful_resource(plans, pilot_moderate) -> None:
    diff = diff_plans(plans["pilot"], pilot_moderate)
    assert _lost(diff) == []
    # The third zone adds its subnets; the two zones there keep theirs (the layout is fixed per zone index).
    created = {c["name"] for c in diff["changes"] if c["action"] == "create" and c["type"] == "aws:ec2/subnet:Subnet"}
    assert created == {"network-private-use1-az4", "network-public-use1-az4"}
    # The system node group takes the new zone's subnet: EKS cannot change a node group's subnets, so it is replaced
    # (its nodes roll), and the diff names the setting that would keep it.
    (system,) = [c for c in diff["changes"] if c["name"] == "cluster-system" and c["action"] == "replace"]
    assert [f["path"] for f in system["fields"] if f["forces_replacement"]] == ["subnetIds"]


def test_product_to_enterprise_keeps_its_network_and_state_and_moves_its_kubernetes_objects(plans, tmp_path) -> None:
    head = plan_stack(_project(tmp_path, "product", "enterprise"), "product")
    base = plans["product"]
    diff = diff_plans(base, head)
    # The stack file pins its NAT mode (per-zone) as it pins its range: the public subnets and NAT gateways stay.
    assert _lost(diff) == []
    assert not [c for c in diff["changes"] if c["type"].startswith("aws:ec2/") and c["action"] in ("replace", "delete")]

    moves = state_moves(base, head)
    (move,) = moves.moves
    assert (move.source, move.dest) == ("product", "product-k8s")
    kubernetes = {r["urn"] for r in base["resources"] if r["type"].startswith("kubernetes:")}
    # Every Kubernetes object that the split stack still has is named or goes with a named parent.
    kept = {r["key"] for r in head["resources"] if r["stack"] == "product-k8s"}
    after = apply_moves(base, moves)
    moved_keys = {r["key"] for r in after["resources"] if r["stack"] == "product-k8s"}
    assert {r["key"] for r in base["resources"] if r["urn"] in kubernetes} & kept <= moved_keys
    assert not any(urn.split("::")[2].startswith("pulumi:providers:") for urn in move.urns)  # the CLI refuses those
    assert any("a provider is never moved" in line for line in moves.cannot)
    # After the moves, nothing that moved is replaced: `pulumi up` of either stack finds them.
    moved_diff = diff_plans(after, head)
    assert not [c for c in moved_diff["changes"] if c["action"] == "replace" and c["key"] in moved_keys]


def test_a_stack_that_did_not_pin_its_nat_mode_is_told_which_setting_keeps_its_public_subnets(plans, tmp_path) -> None:
    """A stack file written before the NAT mode was the stack's takes the enterprise preset's `nat: none`: nothing
    needs the public subnets then, and each deletion names the pin that keeps it."""
    project = _project(tmp_path, "product", "enterprise")
    stack_file = project / "stacks" / "Pulumi.product.yaml"
    text = stack_file.read_text()
    assert "    nat: per-zone\n" in text
    stack_file.write_text(text.replace("    nat: per-zone\n", ""))
    head = plan_stack(project, "product")
    lost = _lost(diff_plans(apply_moves(plans["product"], state_moves(plans["product"], head)), head))
    zones = ("use1-az1", "use1-az2", "use1-az4")
    assert sorted(lost) == [f"delete us-east-1/network/network-public-{z}::aws:ec2/subnet:Subnet" for z in zones]
    warnings = diff_plans(plans["product"], head)["warnings"]
    assert any("pin modelyard:network.nat" in w and "network-public-use1-az1" in w for w in warnings)


def test_a_changed_vpc_cidr_shows_the_cluster_everything_on_the_vpc_and_on_the_cluster_replaced(
    plans, tmp_path
) -> None:
    project = _project(tmp_path, "pilot", "minimal")
    stack_file = project / "stacks" / "Pulumi.pilot.yaml"
    stack_file.write_text(stack_file.read_text().replace("cidr: 10.40.0.0/16", "cidr: 10.41.0.0/16"))
    head = plan_stack(project, "pilot")
    diff = diff_plans(plans["pilot"], head)
    replaced = {c["type"] for c in diff["changes"] if c["action"] == "replace"}
    assert {
        "aws:ec2/vpc:Vpc",
        "aws:ec2/subnet:Subnet",
        "aws:eks/cluster:Cluster",
        "aws:eks/nodeGroup:NodeGroup",
        "aws:ec2/routeTable:RouteTable",
        "aws:ec2/vpcEndpoint:VpcEndpoint",
        "aws:ec2/natGateway:NatGateway",
        # They take the cluster's name, which stays: the engine replaces them because the cluster is replaced.
        "aws:eks/addon:Addon",
        "aws:eks/accessEntry:AccessEntry",
        "aws:eks/podIdentityAssociation:PodIdentityAssociation",
    } <= replaced
    (cluster,) = [c for c in diff["changes"] if c["type"] == "aws:eks/cluster:Cluster"]
    on_cluster = {
        r["key"]
        for r in head["resources"]
        if cluster["key"] in (r.get("property_dependencies") or {}).get("clusterName", [])
    }
    actions = {c["key"]: c for c in diff["changes"]}
    assert len(on_cluster) >= 8 and all(actions[k]["action"] == "replace" for k in on_cluster)
    # The node group is replaced for its own subnets; the add-ons, access entries, associations follow the cluster.
    assert {k for k in on_cluster if actions[k]["cascade"] == cluster["key"]} == {
        k for k in on_cluster if not k.endswith("aws:eks/nodeGroup:NodeGroup")
    }
    assert [f["path"] for f in cluster["fields"] if f["forces_replacement"]] == ["vpcConfig.subnetIds"]
    assert any('pin modelyard:network.cidr: "10.40.0.0/16"' in w for w in diff["warnings"])
    assert any("REPLACES stateful aws:eks/cluster:Cluster" in w for w in diff["warnings"])
    # The Kubernetes provider's kubeconfig comes from the replaced cluster: pulumi-kubernetes replaces a provider whose
    # kubeconfig is unknown, and the engine every object of a replaced provider, stateful ones loudly.
    (provider,) = [c for c in diff["changes"] if c["type"] == "pulumi:providers:kubernetes"]
    assert provider["action"] == "replace" and provider["cascade"] == cluster["key"]
    objects = [r["key"] for r in head["resources"] if r.get("provider") == provider["key"] and r["custom"]]
    assert objects and all(
        actions[k]["action"] == "replace" and actions[k]["cascade"] == provider["key"] for k in objects
    )


def test_a_subnet_change_within_its_vpc_updates_the_cluster_in_place(plans, pilot_moderate) -> None:
    """EKS changes a cluster's subnets in place within its VPC: a third zone's subnet is an update."""
    diff = diff_plans(plans["pilot"], pilot_moderate)
    (cluster,) = [c for c in diff["changes"] if c["type"] == "aws:eks/cluster:Cluster"]
    assert cluster["action"] == "update"


def test_same_settings_same_ids(plans) -> None:
    """Mock ids follow replace-forcing inputs only: planning the same stack again changes nothing."""
    again = plan_stack(ROOT, "pilot")
    assert json.dumps(again, sort_keys=True) == json.dumps(plans["pilot"], sort_keys=True)


def test_state_moves_command(plans, tmp_path, capsys) -> None:
    head = plan_stack(_project(tmp_path, "product", "enterprise"), "product")
    (tmp_path / "base.json").write_text(json.dumps(plans["product"]))
    (tmp_path / "head.json").write_text(json.dumps(head))
    assert cli_main(["diff", str(tmp_path / "base.json"), str(tmp_path / "head.json"), "--state-moves"]) == 0
    out = capsys.readouterr().out
    assert "pulumi state move --source product --dest product-k8s \\\n" in out
    assert "'urn:pulumi:product::modelyard::modelyard:k8s:Monitoring$kubernetes:helm.sh/v3:Release::" in out
    assert "pulumi:providers:" not in out.split("# What does not move:")[0]
    assert cli_main(["diff", str(tmp_path / "base.json"), str(tmp_path / "base.json"), "--state-moves"]) == 0
    assert "no `pulumi state move` needed" in capsys.readouterr().out
