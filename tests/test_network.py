"""The Network over every shipped stack's plan, and its NAT modes under mocks."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest

from components.contract import subnet_layout
from components.tagging import KIT_TAG_KEYS, is_taggable
from tests.conftest import SHIPPED_STACKS, by_type

SUBNET = "aws:ec2/subnet:Subnet"


def _subnets(plan, role):
    return [s for s in by_type(plan, SUBNET) if s["name"].startswith(f"network-{role}-")]


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_flow_logs_to_a_log_group_with_retention(plans, stack):
    plan = plans[stack]
    (flow_log,) = by_type(plan, "aws:ec2/flowLog:FlowLog")
    (log_group,) = [g for g in by_type(plan, "aws:cloudwatch/logGroup:LogGroup") if "flow-logs" in g["name"]]
    assert flow_log["inputs"]["logDestinationType"] == "cloud-watch-logs"
    assert flow_log["inputs"]["trafficType"] == "ALL"
    assert log_group["key"] in flow_log["depends_on"]
    assert log_group["inputs"]["retentionInDays"] >= 30
    (vpc,) = by_type(plan, "aws:ec2/vpc:Vpc")
    assert vpc["key"] in flow_log["depends_on"]


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_private_subnets_one_per_zone_tagged_for_internal_lbs_and_karpenter(plans, stack):
    plan = plans[stack]
    private = _subnets(plan, "private")
    zones = {s["inputs"]["availabilityZoneId"] for s in private}
    assert len(private) == len(zones) >= 2
    for subnet in private:
        tags = subnet["inputs"]["tags"]
        assert tags["kubernetes.io/role/internal-elb"] == "1"
        assert tags["karpenter.sh/discovery"] == f"modelyard-{stack}"
        assert "kubernetes.io/role/elb" not in tags
        assert subnet["inputs"].get("mapPublicIpOnLaunch") is False


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_every_taggable_resource_carries_the_kit_tags(plans, stack):
    plan = plans[stack]
    checked = 0
    for resource in plan["resources"]:
        if not resource["custom"] or not is_taggable(resource["type"]):
            continue
        tags = resource["inputs"].get("tags", {})
        missing = [k for k in KIT_TAG_KEYS if not tags.get(k)]
        assert not missing, f"{resource['key']} lacks {missing}"
        assert tags["modelyard:stack"] == stack
        assert tags["modelyard:preset"] == plan["preset"]
        checked += 1
    assert checked >= 10


def test_extra_tags_from_settings_reach_resources(plans):
    (vpc,) = by_type(plans["pilot"], "aws:ec2/vpc:Vpc")
    assert vpc["inputs"]["tags"]["team"] == "ml-platform"
    assert vpc["inputs"]["tags"]["modelyard:cost-center"] == "ml-platform-pilot"


def test_no_nat_means_no_public_subnets_and_every_node_endpoint(plans):
    plan = plans["core"]
    assert not by_type(plan, "aws:ec2/natGateway:NatGateway")
    assert not by_type(plan, "aws:ec2/internetGateway:InternetGateway")
    assert not _subnets(plan, "public")
    services = {
        e["inputs"]["serviceName"].split("us-east-1.")[1] for e in by_type(plan, "aws:ec2/vpcEndpoint:VpcEndpoint")
    }
    assert {
        "s3",
        "ecr.api",
        "ecr.dkr",
        "sts",
        "eks-auth",
        "ec2",
        "elasticloadbalancing",
        "sqs",
        "kms",
        "logs",
    } <= services
    for route in by_type(plan, "aws:ec2/route:Route"):
        assert "natGatewayId" not in route["inputs"] and "gatewayId" not in route["inputs"]


def test_per_zone_nat_routes_each_zone_through_its_own_gateway(plans):
    plan = plans["product"]
    nats = {n["name"]: n for n in by_type(plan, "aws:ec2/natGateway:NatGateway")}
    assert len(nats) == 3
    for zone in ("use1-az1", "use1-az2", "use1-az4"):
        (route,) = [r for r in by_type(plan, "aws:ec2/route:Route") if r["name"] == f"network-private-{zone}-default"]
        assert f"us-east-1/network/network-nat-{zone}::aws:ec2/natGateway:NatGateway" in route["depends_on"]


def test_single_nat_serves_every_zone(plans):
    plan = plans["pilot"]
    (nat,) = by_type(plan, "aws:ec2/natGateway:NatGateway")
    private_routes = [r for r in by_type(plan, "aws:ec2/route:Route") if r["name"].startswith("network-private-")]
    assert len(private_routes) == 2 and all(nat["key"] in r["depends_on"] for r in private_routes)


def test_public_subnets_only_for_load_balancers(plans):
    for subnet in _subnets(plans["pilot"], "public"):
        assert subnet["inputs"]["tags"]["kubernetes.io/role/elb"] == "1"
        assert subnet["inputs"].get("mapPublicIpOnLaunch") is False


def test_s3_gateway_endpoint_on_every_private_route_table(plans):
    for plan in plans.values():
        (s3,) = [
            e for e in by_type(plan, "aws:ec2/vpcEndpoint:VpcEndpoint") if e["inputs"]["serviceName"].endswith(".s3")
        ]
        assert s3["inputs"]["vpcEndpointType"] == "Gateway"
        private_tables = [t for t in by_type(plan, "aws:ec2/routeTable:RouteTable") if "private" in t["name"]]
        assert len(s3["inputs"]["routeTableIds"]) == len(private_tables)


def test_default_security_group_is_emptied(plans):
    for plan in plans.values():
        (sg,) = by_type(plan, "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
        assert not sg["inputs"].get("ingress") and not sg["inputs"].get("egress")


def test_endpoint_security_group_admits_https_from_the_vpc_only(plans):
    plan = plans["core"]
    (sg,) = [s for s in by_type(plan, "aws:ec2/securityGroup:SecurityGroup") if s["name"] == "network-endpoints"]
    (rule,) = sg["inputs"]["ingress"]
    assert (rule["fromPort"], rule["toPort"], rule["cidrBlocks"]) == (443, 443, ["10.60.0.0/16"])


def test_flow_log_role_can_only_write_its_log_group(plans):
    plan = plans["pilot"]
    (policy,) = [p for p in by_type(plan, "aws:iam/rolePolicy:RolePolicy") if p["name"] == "network-flow-logs"]
    document = json.loads(policy["inputs"]["policy"])
    (statement,) = document["Statement"]
    assert all(r.startswith("arn:aws:logs:us-east-1:123456789012:log-group:/modelyard/") for r in statement["Resource"])
    assert not any(a.endswith("*") for a in statement["Action"])


@pytest.mark.parametrize("cidr", ["10.0.0.0/16", "172.16.0.0/18", "192.168.0.0/20"])
@pytest.mark.parametrize("zones", [2, 3])
def test_subnet_layout_is_disjoint_and_inside_the_vpc(cidr, zones):
    private, public = subnet_layout(cidr, zones)
    nets = [ipaddress.IPv4Network(c) for c in private + public]
    vpc = ipaddress.IPv4Network(cidr)
    assert len(private) == len(public) == zones
    assert all(n.subnet_of(vpc) for n in nets)
    assert not any(a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1 :])
    assert ipaddress.IPv4Network(private[0]).prefixlen == vpc.prefixlen + 2


def test_adding_a_zone_keeps_existing_subnets():
    two, _ = subnet_layout("10.0.0.0/16", 2)
    three, _ = subnet_layout("10.0.0.0/16", 3)
    assert three[:2] == two


def test_every_aws_resource_uses_the_kit_provider(plans):
    for plan in plans.values():
        providers = {r["key"] for r in by_type(plan, "pulumi:providers:aws")}
        assert len(providers) == 1
        for resource in plan["resources"]:
            if resource["custom"] and resource["type"].startswith("aws:"):
                assert resource["provider"] in providers, resource["key"]


def test_pulumi_yaml_disables_default_providers(root: Path):
    import yaml

    project = yaml.safe_load((root / "Pulumi.yaml").read_text())
    assert project["config"]["pulumi:disable-default-providers"]["value"] == ["*"]
