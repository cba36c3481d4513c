"""A cell without NAT in another region writes its metrics over a VPC peering (docs/regions.md, "Observability across
regions"): the shipped enterprise deployment's core-eu reaches the workspace in us-east-1 through an endpoint
core-global puts in core's VPC. What the plan must hold for that path to work, and to carry nothing else; what it
costs; and the deployments it cannot serve, refused with the key to change."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from components.aws.metrics_peering import ENDPOINT_ACTIONS
from components.aws.metrics_workspace import remote_write_url
from components.contract import aps_workspaces_host
from components.cost import estimate
from components.errors import InputError
from components.settings.cells import deployment_of
from tests.conftest import by_type
from tests.test_cells import _project

CORE_CIDR, EU_CIDR = "10.60.0.0/16", "10.61.0.0/16"


@pytest.fixture(scope="module")
def deployment(global_plans) -> dict[str, Any]:
    return global_plans["core-global"]


def _one(plan: dict[str, Any], type_token: str, **where: str) -> dict[str, Any]:
    found = [r for r in by_type(plan, type_token) if all(r["name"].startswith(v) for v in where.values())]
    assert len(found) == 1, [r["name"] for r in by_type(plan, type_token)]
    return found[0]


def test_core_eu_is_peered_to_core_from_its_own_region(deployment, plans) -> None:
    peering = _one(deployment, "aws:ec2/vpcPeeringConnection:VpcPeeringConnection")
    accepter = _one(deployment, "aws:ec2/vpcPeeringConnectionAccepter:VpcPeeringConnectionAccepter")
    assert peering["key"].startswith("eu-west-1/") and accepter["key"].startswith("us-east-1/")
    inputs = peering["inputs"]
    assert inputs["vpcId"] == plans["core-eu"]["outputs"]["cell_vpc_id"]
    assert inputs["peerVpcId"] == plans["core"]["outputs"]["cell_vpc_id"]
    # Across regions the requester cannot accept its own request: the accepter does, in the peer's region.
    assert inputs["peerRegion"] == "us-east-1" and "autoAccept" not in inputs
    assert accepter["inputs"]["autoAccept"] is True


def test_routes_join_only_the_two_ranges_in_every_private_route_table(deployment, plans) -> None:
    routes = by_type(deployment, "aws:ec2/route:Route")
    by_region: dict[str, list[dict[str, Any]]] = {}
    for route in routes:
        by_region.setdefault(route["key"].split("/", 1)[0], []).append(route["inputs"])
    eu_tables = plans["core-eu"]["outputs"]["cell_private_route_table_ids"]
    core_tables = plans["core"]["outputs"]["cell_private_route_table_ids"]
    assert len(eu_tables) == len(core_tables) == 3
    assert sorted(r["routeTableId"] for r in by_region["eu-west-1"]) == sorted(eu_tables)
    assert sorted(r["routeTableId"] for r in by_region["us-east-1"]) == sorted(core_tables)
    assert {r["destinationCidrBlock"] for r in by_region["eu-west-1"]} == {CORE_CIDR}
    assert {r["destinationCidrBlock"] for r in by_region["us-east-1"]} == {EU_CIDR}
    assert all("vpcPeeringConnectionId" in r and "natGatewayId" not in r for r in by_region["eu-west-1"])


def test_the_endpoint_admits_only_the_peer_and_only_the_deployments_workspace(deployment, plans) -> None:
    endpoint = _one(deployment, "aws:ec2/vpcEndpoint:VpcEndpoint")
    inputs = endpoint["inputs"]
    assert endpoint["key"].startswith("us-east-1/")
    assert inputs["serviceName"] == "com.amazonaws.us-east-1.aps-workspaces"
    assert inputs["vpcId"] == plans["core"]["outputs"]["cell_vpc_id"]
    assert inputs["subnetIds"] == plans["core"]["outputs"]["cell_private_subnet_ids"]
    # core's own endpoint owns the service's name in core's VPC; this one is named only for the peers.
    assert inputs["privateDnsEnabled"] is False
    (statement,) = json.loads(inputs["policy"])["Statement"]
    assert statement["Action"] == list(ENDPOINT_ACTIONS)
    assert statement["Resource"] == deployment["outputs"]["metrics_workspace_arn"]
    group = _one(deployment, "aws:ec2/securityGroup:SecurityGroup")
    (rule,) = group["inputs"]["ingress"]
    assert (rule["protocol"], rule["fromPort"], rule["toPort"], rule["cidrBlocks"]) == ("tcp", 443, 443, [EU_CIDR])
    assert not group["inputs"].get("egress")


def test_the_peer_resolves_the_workspaces_own_url_to_the_endpoint(deployment, plans) -> None:
    zone = _one(deployment, "aws:route53/zone:Zone", name="metrics-peering")
    name = aps_workspaces_host("us-east-1")
    # The name in the URL the cell's Prometheus writes to is the zone's: no other URL is configured.
    assert remote_write_url("us-east-1", "ws-1").startswith(f"https://{name}/")
    assert zone["inputs"]["name"] == name
    # Only the peer's VPC: in core's VPC the name is already its own endpoint's (private DNS), and a second zone of
    # the same name there would hide it.
    assert zone["inputs"]["vpcs"] == [{"vpcId": plans["core-eu"]["outputs"]["cell_vpc_id"], "vpcRegion": "eu-west-1"}]
    record = _one(deployment, "aws:route53/record:Record", name="metrics-peering")
    (alias,) = record["inputs"]["aliases"]
    assert (record["inputs"]["name"], record["inputs"]["type"]) == (name, "A")
    assert alias["name"].startswith("vpce-") and ".aps-workspaces.us-east-1.vpce.amazonaws.com" in alias["name"]


def test_core_eu_has_no_endpoint_of_its_own_and_core_has_one(plans) -> None:
    def aps(stack: str) -> list[str]:
        return [
            e["inputs"]["serviceName"]
            for e in by_type(plans[stack], "aws:ec2/vpcEndpoint:VpcEndpoint")
            if "aps-workspaces" in e["inputs"]["serviceName"]
        ]

    assert aps("core") == ["com.amazonaws.us-east-1.aps-workspaces"]
    assert aps("core-eu") == []


def _line(plan: dict[str, Any], type_token: str) -> dict[str, Any]:
    (line,) = [ln for ln in plan["cost"]["lines"] if ln["id"].endswith(f"::{type_token}")]
    return line


def test_the_workspace_is_priced_at_amps_tiers_from_the_cells_series(deployment) -> None:
    line = _line(deployment, "aws:amp/workspace:Workspace")
    samples = Decimal(2 * 100_000) * 730 * 3600 / 30  # two cells, cost.metrics_active_series, one sample / 30 s
    first, rest = Decimal(2_000_000_000), samples - 2_000_000_000  # AMP's first tier, and the next one
    ingestion = first / 10_000_000 * Decimal("0.90") + rest / 10_000_000 * Decimal("0.35")
    stored_gb = samples * Decimal(150) * 24 / 730 * 2 / 2**30
    assert Decimal(line["monthly"]) == estimate.cents(ingestion + stored_gb * Decimal("0.03"))
    assert line["status"] == "priced" and "AMP-PRICES" in line["source"]
    assert deployment["cost"]["assumptions"]["usage"]["cost.metrics_active_series (core-eu)"] == "100000"


def test_the_peering_is_priced_as_inter_region_transfer_of_the_measured_wire_bytes(deployment) -> None:
    line = _line(deployment, "aws:ec2/vpcPeeringConnection:VpcPeeringConnection")
    gb = Decimal(100_000) * 730 * 3600 / 30 * estimate.REMOTE_WRITE_BYTES_PER_SAMPLE / 2**30
    assert Decimal(line["monthly"]) == estimate.cents(gb * Decimal("0.02"))
    assert "measured" in line["basis"]
    assert "unpriced" not in json.dumps(deployment["cost"]["unpriced"])
    assert not deployment["cost"]["unpriced"]


def test_more_series_cost_more(tmp_path) -> None:
    from components.plan.run import plan_global

    project = _project(tmp_path, {"core-eu": {"cost": _eu_cost(metrics_active_series=1_000_000)}})
    plan = plan_global(project, "core-global")
    assert Decimal(_line(plan, "aws:ec2/vpcPeeringConnection:VpcPeeringConnection")["monthly"]) > Decimal(30)
    assert Decimal(_line(plan, "aws:amp/workspace:Workspace")["monthly"]) > Decimal(3000)


def _eu_cost(**changes: Any) -> dict[str, Any]:
    import yaml

    from tests.test_cells import ROOT

    cost = yaml.safe_load((ROOT / "stacks" / "Pulumi.core-eu.yaml").read_text())["config"]["modelyard:cost"]
    return {**cost, **changes}


@pytest.mark.parametrize(
    ("changes", "path", "words"),
    [
        (
            # A workspace in a region with no cell: nowhere to peer core-eu (no NAT) to.
            {
                "core": {"monitoring": {"remote_write": {"region": "us-west-2"}}},
                "core-eu": {"monitoring": {"remote_write": {"region": "us-west-2"}}},
            },
            "global.cells",
            "only over a peering to the deployment's cell there, and there is none",
        ),
        (
            # Peered ranges may not overlap.
            {"core-eu": {"network": {"cidr": "10.60.128.0/17", "zone_ids": ["euw1-az1", "euw1-az2", "euw1-az3"]}}},
            "global.cells.eu-west-1",
            "peered VPCs may not overlap",
        ),
    ],
)
def test_a_deployment_the_peering_cannot_serve_is_refused_naming_the_key(tmp_path, changes, path, words) -> None:
    project = _project(tmp_path, changes)
    with pytest.raises(InputError) as refused:
        deployment_of(project, "core-global")
    messages = [f"{p.path}: {p.message}" for p in refused.value.problems]
    assert any(m.startswith(f"modelyard:{path}:") and words in m for m in messages), messages


def test_the_bytes_per_sample_benchmark_measures_a_real_prometheus_remote_write() -> None:
    """The figure the peering's line uses comes from this command (docs/benchmarks.md); a short run checks it still
    measures: a real Prometheus writes real samples to the counting receiver."""
    from tests.tools import require_tool

    require_tool("prometheus")
    require_tool("prometheus-node-exporter")
    from components.cost.remote_write_bench import measure

    m = measure(seconds=10, interval=1)  # past the queue's 5 s batch send deadline
    assert m["samples_sent"] > 100 and m["bytes_received"] > 0 and m["series"] > 100
    # Snappy-compressed protobuf: a few to a few dozen bytes a sample, never the raw text exposition's ~100.
    assert 2 < m["bytes_per_sample"] < 100


def test_two_peers_with_overlapping_ranges_are_refused() -> None:
    """The workspace cell routes back to every peer: a third cell reusing core-eu's range could not be told apart."""
    import dataclasses

    from components.plan.run import load_settings
    from tests.conftest import ROOT

    core, eu = load_settings(ROOT, "core")[1], load_settings(ROOT, "core-eu")[1]
    third = dataclasses.replace(eu, stack="core-de", region="eu-central-1")
    from components.settings.cells import _remote_write_problems

    assert not _remote_write_problems({"us-east-1": core, "eu-west-1": eu})
    problems = _remote_write_problems({"us-east-1": core, "eu-west-1": eu, "eu-central-1": third})
    assert [p.path for p in problems] == ["modelyard:global.cells.eu-west-1"]
    assert "could not route back to both" in problems[0].message


def test_the_docs_give_the_measured_bytes_and_the_shipped_lines_as_the_plan_prices_them(deployment) -> None:
    from tests.conftest import ROOT

    figures = {
        "workspace": _line(deployment, "aws:amp/workspace:Workspace")["monthly"],
        "peering": _line(deployment, "aws:ec2/vpcPeeringConnection:VpcPeeringConnection")["monthly"],
        "endpoint": next(
            ln["monthly"]
            for ln in deployment["cost"]["lines"]
            if ln["id"].startswith("us-east-1/metrics-peering/")
            and ln["id"].endswith("::aws:ec2/vpcEndpoint:VpcEndpoint")
        ),
    }
    for page in ("regions.md", "cost.md"):
        text = " ".join((ROOT / "docs" / page).read_text().split())
        assert f"{estimate.REMOTE_WRITE_BYTES_PER_SAMPLE} bytes" in text, page
        assert (
            f"the workspace ${figures['workspace']} a month, the peering ${figures['peering']}, the endpoint "
            f"${figures['endpoint']}" in text
        ), page
    assert f"**{estimate.REMOTE_WRITE_BYTES_PER_SAMPLE}**" in (ROOT / "docs" / "benchmarks.md").read_text()
