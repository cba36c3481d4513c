"""The gateway as the platform composes it: its AWS side (state, Bedrock role, load balancer) created in the AWS
layer, and its outputs reaching the Gateway and the load balancer controller in the Kubernetes layer, in one
stack and across the stack reference of a split deployment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from components import contract
from components.contract import SECRET
from components.k8s.gateway import objects
from components.policy.rules import evaluate
from tests.conftest import by_type, plan_with
from tests.test_gateway_exposure import INTERNAL, PUBLIC
from tests.test_gateway_state import BEDROCK_MODEL

# The enterprise preset in one stack (its own is split), reachable from a VPN range; no runner, so the charts
# come from their repositories (deploy.charts: the default, upstream).
ENTERPRISE_ONE_STACK = {
    "deploy": {"layers": "one-stack", "state_bucket": None, "secrets_key_arn": None, "charts": None},
    "cluster": {"private_access_cidrs": ["10.200.0.0/16"]},
    "network": {"cidr": "10.60.0.0/16"},  # core's, which its stack file pins
}


def gateway_env(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    (deployment,) = [r for r in by_type(plan, "kubernetes:apps/v1:Deployment") if r["key"].startswith("gateway/")]
    return {e["name"]: e for e in deployment["inputs"]["spec"]["template"]["spec"]["containers"][0]["env"]}


def gateway_secrets(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        r["inputs"]["metadata"]["name"]: r
        for r in by_type(plan, "kubernetes:core/v1:Secret")
        if r["inputs"]["metadata"].get("namespace") == contract.GATEWAY_NAMESPACE
    }


def one(plan: dict[str, Any], type_token: str, key_prefix: str = "") -> dict[str, Any]:
    (resource,) = [r for r in by_type(plan, type_token) if r["key"].startswith(key_prefix)]
    return resource


def load_balancer_ranges(plan: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(the ranges the gateway's ingress policy admits the NLB from, the ranges of the NLB's subnets): the first
    computed by the platform for GatewayArgs, the second the network's own subnets, tagged for the NLB's kind."""
    (policy,) = [
        r
        for r in by_type(plan, "kubernetes:networking.k8s.io/v1:NetworkPolicy")
        if r["inputs"]["metadata"]["name"] == "litellm-ingress"
    ]
    (from_load_balancer,) = policy["inputs"]["spec"]["ingress"][1:]
    admitted = [peer["ipBlock"]["cidr"] for peer in from_load_balancer["from"]]
    internal = one(plan, "aws:lb/loadBalancer:LoadBalancer")["inputs"]["internal"]
    role = "kubernetes.io/role/internal-elb" if internal else "kubernetes.io/role/elb"
    subnets = [
        s["inputs"]["cidrBlock"] for s in by_type(plan, "aws:ec2/subnet:Subnet") if s["inputs"]["tags"].get(role)
    ]
    return sorted(admitted), sorted(subnets)


@pytest.mark.parametrize("stack", ["product", "core"])
def test_the_gateway_uses_the_state_the_aws_layer_created(plans: dict[str, Any], stack: str) -> None:
    plan = plans[stack]
    aws_stack = plan["stack"]
    (database,) = by_type(plan, "aws:rds/instance:Instance")
    (valkey,) = by_type(plan, "aws:elasticache/replicationGroup:ReplicationGroup")
    assert database["stack"] == valkey["stack"] == aws_stack
    env = gateway_env(plan)
    # The Valkey group's own address and port (core: read back through the stack reference), not a placeholder.
    assert env["REDIS_HOST"]["value"] == plan["outputs"]["gateway_redis_host"]
    assert env["REDIS_HOST"]["value"].startswith("master.gateway-state-redis-")
    assert env["REDIS_PORT"]["value"] == "6379"
    assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == objects.DATABASE_URL_SECRET
    assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == objects.REDIS_PASSWORD_SECRET
    secrets = gateway_secrets(plan)
    for name in (objects.DATABASE_URL_SECRET, objects.REDIS_PASSWORD_SECRET):
        assert secrets[name]["inputs"]["stringData"] in (SECRET, {"url": SECRET}, {"password": SECRET})
    # Secret stack outputs stay secret: the Kubernetes layer of core reads them as secrets too.
    assert plan["outputs"]["gateway_database_url"] == SECRET
    assert plan["outputs"]["gateway_redis_password"] == SECRET


def test_the_pilot_gateway_has_no_state_and_no_load_balancer(plans: dict[str, Any]) -> None:
    plan = plans["pilot"]
    created = {r["type"] for r in plan["resources"]}
    assert not created & {
        "modelyard:aws:GatewayState",
        "modelyard:aws:GatewayIdentity",
        "modelyard:aws:GatewayExposure",
        "modelyard:k8s:LoadBalancerController",
    }
    env = gateway_env(plan)
    assert "DATABASE_URL" not in env and "REDIS_HOST" not in env


def test_the_split_gateway_is_the_one_stack_gateway(plans: dict[str, Any], tmp_path: Path) -> None:
    """The core deployment's Kubernetes layer gets the same gateway as one stack holding both layers."""
    import yaml

    from tests.conftest import ROOT

    # core's own settings (its gateway hostname, tenants, cell) in one stack; its replication into core-eu's bucket
    # does not reach the gateway, and the scratch project has no core-eu.
    core = yaml.safe_load((ROOT / "stacks" / "Pulumi.core.yaml").read_text())["config"]
    # Not its remote write either: a cell's Prometheus writes to its global stack's workspace.
    left_out = ("modelyard:preset", "modelyard:monitoring")
    overrides = {k.removeprefix("modelyard:"): v for k, v in core.items() if k not in left_out}
    overrides["deploy"] = {**overrides["deploy"], **ENTERPRISE_ONE_STACK["deploy"]}
    overrides.update(cluster=ENTERPRISE_ONE_STACK["cluster"], storage={"replicas": None})
    one_stack = plan_with(tmp_path, "enterprise", overrides)

    def gateway_objects(plan: dict[str, Any]) -> dict[str, Any]:
        return {r["key"]: r["inputs"] for r in plan["resources"] if r["key"].startswith("gateway/")}

    assert gateway_objects(plans["core"]) == gateway_objects(one_stack)


def test_a_hostname_brings_the_load_balancer_the_controller_and_the_binding(tmp_path: Path) -> None:
    plan = plan_with(tmp_path, "moderate", {"gateway": INTERNAL})
    outputs = plan["outputs"]
    assert outputs["gateway_endpoint"] == "https://llm.example.internal"
    nlb = one(plan, "aws:lb/loadBalancer:LoadBalancer")
    assert nlb["inputs"]["internal"] is True
    assert nlb["inputs"]["subnets"] == outputs["private_subnet_ids"]
    target_group = outputs["gateway_target_group_arn"]
    assert target_group.startswith("arn:aws:elasticloadbalancing:us-east-1:")
    binding = one(plan, "kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding")
    assert binding["inputs"]["spec"]["targetGroupARN"] == target_group
    # The controller is told the VPC the AWS layer made; its role is that of the exposure (Pod Identity).
    release = one(plan, "kubernetes:helm.sh/v3:Release", "load-balancer-controller/")
    assert release["inputs"]["values"]["vpcId"] == outputs["vpc_id"]
    association = one(plan, "aws:eks/podIdentityAssociation:PodIdentityAssociation", "us-east-1/gateway-exposure/")
    assert association["inputs"]["serviceAccount"] == release["inputs"]["values"]["serviceAccount"]["name"]
    # Order of a first `up`: the association before the controller's pods; the controller (its CRD) before the
    # binding.
    assert association["key"] in release["depends_on"]
    assert release["key"] in binding["depends_on"]
    # The pods admit the NLB's private addresses: the ranges of the subnets the network made for it.
    admitted, subnets = load_balancer_ranges(plan)
    assert admitted == subnets and len(subnets) == 3
    assert evaluate(plan) == []


def test_a_public_endpoint_without_nat_gets_public_subnets_and_still_no_nat(tmp_path: Path) -> None:
    plan = plan_with(tmp_path, "enterprise", {**ENTERPRISE_ONE_STACK, "gateway": PUBLIC})
    assert by_type(plan, "aws:ec2/natGateway:NatGateway") == []
    (igw,) = by_type(plan, "aws:ec2/internetGateway:InternetGateway")
    public = [s for s in by_type(plan, "aws:ec2/subnet:Subnet") if s["inputs"]["tags"].get("kubernetes.io/role/elb")]
    assert len(public) == 3 and not any(s["inputs"]["mapPublicIpOnLaunch"] for s in public)
    # Only the public subnets route to the internet gateway: nodes still have no way out.
    default_routes = [
        r["inputs"]
        for r in by_type(plan, "aws:ec2/route:Route")
        if r["inputs"].get("destinationCidrBlock") == "0.0.0.0/0"
    ]
    assert len(default_routes) == 1 and default_routes[0]["gatewayId"].startswith("igw-")
    nlb = one(plan, "aws:lb/loadBalancer:LoadBalancer")
    assert nlb["inputs"]["internal"] is False
    # Created after the whole network, internet gateway included (AWS refuses an internet-facing NLB before).
    assert igw["key"] in nlb["depends_on"]
    admitted, subnets = load_balancer_ranges(plan)
    assert admitted == subnets == sorted(s["inputs"]["cidrBlock"] for s in public)
    assert evaluate(plan) == []


def test_a_bedrock_fallback_gives_the_gateway_its_role_before_its_pods(tmp_path: Path) -> None:
    plan = plan_with(
        tmp_path,
        "moderate",
        {
            "tenants": {"internal": {"data": "external-allowed", "models": ["llama-8b"]}},
            "gateway": {
                # As `pulumi config set --secret --path` writes it (the program refuses keys in plain text).
                "keys": {"internal": {"key": {"secure": "v1:abc=="}}},
                "fallbacks": {"llama-8b": {"provider": "bedrock", "model": BEDROCK_MODEL}},
            },
        },
    )
    association = one(plan, "aws:eks/podIdentityAssociation:PodIdentityAssociation", "us-east-1/gateway-identity/")
    assert (association["inputs"]["namespace"], association["inputs"]["serviceAccount"]) == (
        contract.GATEWAY_NAMESPACE,
        contract.GATEWAY_NAME,
    )
    (deployment,) = [r for r in by_type(plan, "kubernetes:apps/v1:Deployment") if r["key"].startswith("gateway/")]
    assert association["key"] in deployment["depends_on"]


def test_a_split_deployment_gives_the_gateway_its_bedrock_role_though_the_keys_are_the_kubernetes_layers(
    tmp_path: Path,
) -> None:
    """The keys are secrets of the Kubernetes layer's stack, which the AWS layer never reads: the role, and the
    endpoint a VPC without NAT needs, follow the tenants' data policy and the fallbacks, not the keys."""
    import shutil

    import yaml

    from components.plan.run import plan_stack
    from tests.conftest import ROOT

    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copytree(ROOT / "stacks" / "presets", tmp_path / "stacks" / "presets")
    (tmp_path / "charts").symlink_to(ROOT / "charts")
    core = yaml.safe_load((ROOT / "stacks" / "Pulumi.core.yaml").read_text())["config"]
    tenant = next(iter(yaml.safe_load((ROOT / "stacks" / "presets" / "enterprise.yaml").read_text())["tenants"]))
    stacks = {
        "ent": {
            # Not a cell here: no core-eu to replicate into, no hostname for a cell's load balancer.
            **{
                k: v
                for k, v in core.items()
                if k not in ("modelyard:storage", "modelyard:deploy", "modelyard:monitoring")
            },
            "modelyard:tenants": {tenant: {"data": "external-allowed"}},
            "modelyard:gateway": {"fallbacks": {"llama-8b": {"provider": "bedrock", "model": BEDROCK_MODEL}}},
        },
        "ent-k8s": {
            "modelyard:layer_of": "ent",
            "modelyard:gateway": {"keys": {tenant: {"key": {"secure": "v1:abc=="}}}},
        },
    }
    for name, config in stacks.items():
        (tmp_path / "stacks" / f"Pulumi.{name}.yaml").write_text(yaml.safe_dump({"config": config}))
    plan = plan_stack(tmp_path, "ent")
    association = one(plan, "aws:eks/podIdentityAssociation:PodIdentityAssociation", "us-east-1/gateway-identity/")
    assert association["stack"] == "ent"
    endpoints = [r["inputs"]["serviceName"] for r in by_type(plan, "aws:ec2/vpcEndpoint:VpcEndpoint")]
    assert "com.amazonaws.us-east-1.bedrock-runtime" in endpoints
    (deployment,) = [r for r in by_type(plan, "kubernetes:apps/v1:Deployment") if r["key"].startswith("gateway/")]
    assert deployment["stack"] == "ent-k8s"
