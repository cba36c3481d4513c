"""The gateway's state (RDS PostgreSQL, ElastiCache Valkey) and AWS role, through the offline engine; the
settings that choose them; and the gateway objects and LiteLLM config that use them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pytest
import yaml

from components import contract
from components.aws.gateway_identity import GatewayIdentity, GatewayIdentityArgs, foundation_model_arns
from components.aws.gateway_state import GatewayState, GatewayStateArgs
from components.contract import SECRET, UNKNOWN
from components.cost.estimate import stack_cost
from components.errors import InputError
from components.k8s.gateway import objects
from components.k8s.gateway.component import Gateway, GatewayArgs
from components.k8s.gateway.config import gateway_config
from components.k8s.isolation import PRIVATE_RANGES
from components.plan.document import build_plan
from components.plan.engine import run_program
from components.plan.run import load_settings
from components.platform import gateway_args
from components.settings import Settings
from components.settings.types import ENDPOINTS_WITHOUT_NAT, InterfaceEndpoint, NatMode
from tests.conftest import aws_layer, config_for, plan_with
from tests.tools import ROOT, background_checkov, require_tool, validate_strict

CLUSTER_SG = "sg-0cluster0000000001"
VPC_ID = "vpc-00000000000000001"
SUBNETS = ["subnet-0000000000000000a", "subnet-0000000000000000b"]
BEDROCK_MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
KUBERNETES_VERSION = "1.33"


def _project(tmp_path: Path, preset: str, overrides: Mapping[str, Any]) -> Path:
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copytree(ROOT / "stacks" / "presets", tmp_path / "stacks" / "presets")
    config = {"modelyard:preset": preset, **{f"modelyard:{k}": v for k, v in overrides.items()}}
    (tmp_path / "stacks" / "Pulumi.state.yaml").write_text(yaml.safe_dump({"config": config}))
    return tmp_path


def build_state(settings: Settings) -> None:
    """Only the AWS layer's gateway pieces, with fixed inputs (a VPC, subnets, the cluster's security group) so
    that each test can name them; how the platform wires them is tests/test_platform_gateway.py's."""
    provider = aws.Provider("aws", region=settings.region)
    gateway = settings.gateway
    if gateway.database is not None or gateway.redis is not None:
        state = GatewayState(
            "gateway-state",
            args=GatewayStateArgs(
                name=settings.name,
                vpc_id=VPC_ID,
                subnet_ids=SUBNETS,
                client_security_group_ids={"cluster": CLUSTER_SG},
                database=gateway.database,
                redis=gateway.redis,
                tags=settings.tags_for("gateway"),
            ),
            opts=pulumi.ResourceOptions(provider=provider),
        )
        for output in ("database_url", "redis_host", "redis_port", "redis_password"):
            if getattr(state, output) is not None:
                pulumi.export(output, getattr(state, output))
    models = settings.bedrock_models_in_use
    if models:
        identity = GatewayIdentity(
            "gateway-identity",
            args=GatewayIdentityArgs(
                cluster_name=settings.name,
                region=settings.region,
                namespace=contract.GATEWAY_NAMESPACE,
                service_account=contract.GATEWAY_NAME,
                bedrock_models=models,
                tags=settings.tags_for("gateway"),
            ),
            opts=pulumi.ResourceOptions(provider=provider),
        )
        pulumi.export("role_arn", identity.role_arn)


def plan(tmp_path: Path, preset: str, overrides: Mapping[str, Any] | None = None, *, preview: bool = False) -> dict:
    project = _project(tmp_path, preset, overrides or {})
    stack_file, settings = load_settings(project, "state")
    recording = run_program(stack_file, preview=preview, program=lambda: build_state(settings))
    document = build_plan(settings=settings, recordings=[recording], catalog_date="-", project_dir=project)
    document["settings"] = settings
    return document


def of_type(document: Mapping[str, Any], type_token: str) -> list[dict[str, Any]]:
    return [r for r in document["resources"] if r["type"] == type_token]


BEDROCK = {
    "tenants": {"internal": {"data": "external-allowed"}},
    "gateway": {
        "keys": {"internal": {"key": "sk-internal-0123456789"}},
        "fallbacks": {"llama-8b": {"provider": "bedrock", "model": BEDROCK_MODEL}},
    },
}


# As `pulumi config set --secret --path` writes a key into the stack file (the settings refuse one in plain text).
SECURE = {"secure": "v1:abc=="}
BEDROCK_IN_A_STACK_FILE = {**BEDROCK, "gateway": {**BEDROCK["gateway"], "keys": {"internal": {"key": SECURE}}}}


@pytest.fixture(scope="module")
def moderate(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return plan(tmp_path_factory.mktemp("moderate"), "moderate")


@pytest.fixture(scope="module")
def enterprise(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return plan(tmp_path_factory.mktemp("enterprise"), "enterprise")


# --- the database ----------------------------------------------------------------------------------------


def test_the_database_is_private_encrypted_backed_up_and_kept(moderate: dict[str, Any]) -> None:
    (db,) = of_type(moderate, "aws:rds/instance:Instance")
    inputs = db["inputs"]
    assert inputs["publiclyAccessible"] is False
    assert inputs["storageEncrypted"] is True and inputs["storageType"] == "gp3"
    (key,) = [k for k in of_type(moderate, "aws:kms/key:Key") if k["name"].startswith("gateway")]
    assert inputs["kmsKeyId"].startswith("arn:aws:kms:us-east-1:") and key["inputs"]["enableKeyRotation"] is True
    assert inputs["backupRetentionPeriod"] == 7 and inputs["multiAz"] is False
    assert inputs["deletionProtection"] is True and inputs["skipFinalSnapshot"] is False
    assert inputs["finalSnapshotIdentifier"] == "modelyard-state-gateway-final"
    assert inputs["engine"] == "postgres" and inputs["engineVersion"] == "17" and inputs["autoMinorVersionUpgrade"]
    assert db["protect"] and db["retain_on_delete"] and key["protect"] and key["retain_on_delete"]
    (params,) = of_type(moderate, "aws:rds/parameterGroup:ParameterGroup")
    assert params["inputs"]["family"] == f"postgres{inputs['engineVersion']}"
    assert {"name": "rds.force_ssl", "value": "1", "applyMethod": "immediate"} in params["inputs"]["parameters"] or {
        "name": "rds.force_ssl",
        "value": "1",
    } in params["inputs"]["parameters"]
    (subnets,) = of_type(moderate, "aws:rds/subnetGroup:SubnetGroup")
    assert subnets["inputs"]["subnetIds"] == SUBNETS


def test_the_enterprise_database_has_a_standby_and_five_weeks_of_backups(enterprise: dict[str, Any]) -> None:
    (db,) = of_type(enterprise, "aws:rds/instance:Instance")
    assert db["inputs"]["multiAz"] is True and db["inputs"]["backupRetentionPeriod"] == 35
    assert db["inputs"]["instanceClass"] == "db.m7g.large"


def test_secrets_are_masked_in_the_plan(moderate: dict[str, Any], tmp_path: Path) -> None:
    (db,) = of_type(moderate, "aws:rds/instance:Instance")
    assert db["inputs"]["password"] == SECRET
    (cache,) = of_type(moderate, "aws:elasticache/replicationGroup:ReplicationGroup")
    assert cache["inputs"]["authToken"] == SECRET
    assert moderate["outputs"]["database_url"] == SECRET
    assert moderate["outputs"]["redis_password"] == SECRET
    # In preview too, where nothing is known yet.
    preview = plan(tmp_path, "moderate", preview=True)
    assert preview["outputs"]["database_url"] in (SECRET, UNKNOWN)
    (db,) = of_type(preview, "aws:rds/instance:Instance")
    assert db["inputs"]["password"] in (SECRET, UNKNOWN)


# --- Valkey -------------------------------------------------------------------------------------------------


def test_valkey_is_encrypted_authenticated_and_fails_over(moderate: dict[str, Any], enterprise: dict[str, Any]) -> None:
    for document, nodes in ((moderate, 2), (enterprise, 3)):
        (cache,) = of_type(document, "aws:elasticache/replicationGroup:ReplicationGroup")
        inputs = cache["inputs"]
        assert inputs["engine"] == "valkey" and inputs["numCacheClusters"] == nodes
        assert inputs["atRestEncryptionEnabled"] is True and inputs["kmsKeyId"].startswith("arn:aws:kms:")
        assert inputs["transitEncryptionEnabled"] is True and inputs["transitEncryptionMode"] == "required"
        assert inputs["automaticFailoverEnabled"] is True and inputs["multiAzEnabled"] is True
        assert inputs["snapshotRetentionLimit"] >= 1
        assert cache["protect"] and cache["retain_on_delete"]
        (subnets,) = of_type(document, "aws:elasticache/subnetGroup:SubnetGroup")
        assert subnets["inputs"]["subnetIds"] == SUBNETS


def test_only_the_cluster_security_group_reaches_either_store(moderate: dict[str, Any]) -> None:
    groups = {g["key"]: g for g in of_type(moderate, "aws:ec2/securityGroup:SecurityGroup")}
    assert len(groups) == 2
    for group in groups.values():
        assert group["inputs"].get("egress", []) == [] and not group["inputs"].get("ingress")
    rules = of_type(moderate, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert sorted(r["inputs"]["fromPort"] for r in rules) == [5432, 6379]
    for rule in rules:
        inputs = rule["inputs"]
        assert inputs["referencedSecurityGroupId"] == CLUSTER_SG
        assert inputs["fromPort"] == inputs["toPort"] and inputs["ipProtocol"] == "tcp"
        assert "cidrIpv4" not in inputs and "cidrIpv6" not in inputs and "prefixListId" not in inputs
    # Each store sits behind its own group, and nothing else is attached to it.
    (db,) = of_type(moderate, "aws:rds/instance:Instance")
    (cache,) = of_type(moderate, "aws:elasticache/replicationGroup:ReplicationGroup")
    assert len(db["inputs"]["vpcSecurityGroupIds"]) == 1 and len(cache["inputs"]["securityGroupIds"]) == 1
    assert db["inputs"]["vpcSecurityGroupIds"] != cache["inputs"]["securityGroupIds"]


def test_the_cost_model_prices_both_stores(moderate: dict[str, Any]) -> None:
    cost = stack_cost(moderate, moderate["settings"])
    lines = {ln["resource"]: ln for ln in cost["lines"] if ln["resource"]}
    (db,) = of_type(moderate, "aws:rds/instance:Instance")
    (cache,) = of_type(moderate, "aws:elasticache/replicationGroup:ReplicationGroup")
    # db.t4g.medium: 730 h x $0.065 + 20 GB x $0.115; Valkey cache.t4g.small: 2 x 730 h x $0.0256
    # (docs/sources.md#rds-and-elasticache).
    assert lines[db["key"]]["status"] == "priced" and lines[db["key"]]["monthly"] == "49.75"
    assert lines[cache["key"]]["status"] == "priced" and lines[cache["key"]]["monthly"] == "37.38"


def test_a_minimal_stack_gets_no_state(tmp_path: Path) -> None:
    document = plan(tmp_path, "minimal")
    assert not [r for r in document["resources"] if r["type"].startswith(("aws:rds", "aws:elasticache"))]
    with pytest.raises(ValueError, match=r"gateway\.database or gateway\.redis"):
        GatewayState(
            "x",
            args=GatewayStateArgs(
                name="x", vpc_id="v", subnet_ids=[], client_security_group_ids={}, database=None, redis=None, tags={}
            ),
        )


# --- the Bedrock role -------------------------------------------------------------------------------------


def test_the_bedrock_role_invokes_exactly_the_fallback_models(tmp_path: Path) -> None:
    document = plan(tmp_path, "minimal", BEDROCK_IN_A_STACK_FILE)
    (policy,) = of_type(document, "aws:iam/rolePolicy:RolePolicy")
    (statement,) = json.loads(policy["inputs"]["policy"])["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"]
    assert statement["Resource"] == [f"arn:aws:bedrock:us-east-1::foundation-model/{BEDROCK_MODEL}"]
    (role,) = of_type(document, "aws:iam/role:Role")
    trust = json.loads(role["inputs"]["assumeRolePolicy"])
    assert [s["Principal"] for s in trust["Statement"]] == [{"Service": "pods.eks.amazonaws.com"}]
    (association,) = of_type(document, "aws:eks/podIdentityAssociation:PodIdentityAssociation")
    assert association["inputs"]["namespace"] == "gateway" and association["inputs"]["serviceAccount"] == "litellm"
    assert association["inputs"]["roleArn"].startswith("arn:aws:iam::")
    assert foundation_model_arns("eu-west-1", ["b.m", "a.m", "b.m"]) == [
        "arn:aws:bedrock:eu-west-1::foundation-model/a.m",
        "arn:aws:bedrock:eu-west-1::foundation-model/b.m",
    ]


@pytest.mark.parametrize(
    "gateway",
    [
        {},  # no fallback
        {
            "keys": {"internal": {"key": SECURE}},
            "fallbacks": {"llama-8b": {"provider": "openai", "model": "gpt-4o", "api_key": SECURE}},
        },
    ],
)
def test_no_role_without_a_bedrock_fallback_in_use(tmp_path: Path, gateway: dict[str, Any]) -> None:
    document = plan(tmp_path, "minimal", {"tenants": {"internal": {"data": "external-allowed"}}, "gateway": gateway})
    assert not of_type(document, "aws:iam/role:Role")
    assert not of_type(document, "aws:eks/podIdentityAssociation:PodIdentityAssociation")


# --- Bedrock without NAT: the bedrock-runtime endpoint, and no fallback that cannot answer ------------------

DOCKER_HUB = "arn:aws:secretsmanager:us-east-1:111122223333:secret:ecr-pullthroughcache/docker-hub"
NO_NAT = {"network": {"nat": "none"}, "cluster": {"image_cache": {"docker_hub_secret_arn": DOCKER_HUB}}}
NODE_ENDPOINTS = [e.value for e in ENDPOINTS_WITHOUT_NAT]


def args_of(settings: Settings) -> GatewayArgs:
    """The Gateway's args as the platform builds them from `settings`."""
    return gateway_args(settings, aws_layer())


def _egress(settings: Settings) -> list[dict[str, Any]]:
    (policy,) = [p for p in objects.network_policies(args_of(settings)) if p["metadata"]["name"] == "litellm-egress"]
    return policy["spec"]["egress"]


def _https_to(settings: Settings) -> list[dict[str, Any]]:
    """The egress rules' destinations on 443."""
    return [
        peer for rule in _egress(settings) if {"protocol": "TCP", "port": 443} in rule["ports"] for peer in rule["to"]
    ]


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_fallback_in_use_that_needs_the_internet_is_refused_without_nat(make_settings: Any, provider: str) -> None:
    gateway = {
        **BEDROCK["gateway"],
        "fallbacks": {"llama-8b": {"provider": provider, "model": "m", "api_key": "sk-provider-0123"}},
    }
    with pytest.raises(InputError) as exc:
        make_settings(**NO_NAT, tenants=BEDROCK["tenants"], gateway=gateway)
    problems = {p.path: p.message for p in exc.value.problems}
    assert list(problems) == ["modelyard:gateway.fallbacks.llama-8b.provider"]
    message = problems["modelyard:gateway.fallbacks.llama-8b.provider"]
    assert f"no route to {provider}'s API" in message and "choose bedrock" in message and "network.nat" in message
    # With NAT the same fallback is fine.
    assert make_settings(tenants=BEDROCK["tenants"], gateway=gateway).fallbacks_in_use == ("llama-8b",)


@pytest.mark.parametrize(
    ("tenants", "keys"),
    [
        ({"internal": {"data": "in-vpc"}}, BEDROCK["gateway"]["keys"]),  # its tenant keeps its data in the VPC
        ({"internal": {"data": "in-vpc"}}, {}),  # and has no key
    ],
)
def test_a_fallback_no_tenant_uses_stays_allowed_without_nat(
    make_settings: Any, tenants: dict[str, Any], keys: dict[str, str]
) -> None:
    fallback = {"provider": "openai", "model": "gpt-4o", "api_key": "sk-provider-0123"}
    settings = make_settings(**NO_NAT, tenants=tenants, gateway={"keys": keys, "fallbacks": {"llama-8b": fallback}})
    assert settings.fallbacks_in_use == () and _https_to(settings) == []


@pytest.mark.parametrize(
    ("overrides", "in_use"),
    [
        ({**NO_NAT, **BEDROCK}, True),  # no NAT, a tenant with a key and data external-allowed
        (BEDROCK, True),  # NAT: Bedrock's public endpoint, reached through it
        # No key yet: in a split deployment the keys are secrets of the Kubernetes layer's stack, which the AWS
        # layer (the endpoint's) never reads.
        ({**NO_NAT, "tenants": BEDROCK["tenants"], "gateway": {"fallbacks": BEDROCK["gateway"]["fallbacks"]}}, True),
        ({**NO_NAT, "gateway": BEDROCK["gateway"]}, False),  # the tenant keeps its data in the VPC
        ({**NO_NAT, "tenants": BEDROCK["tenants"], "gateway": {"keys": BEDROCK["gateway"]["keys"]}}, False),  # none
    ],
)
def test_the_bedrock_runtime_endpoint_comes_with_a_bedrock_fallback_in_use_without_nat(
    make_settings: Any, overrides: dict[str, Any], in_use: bool
) -> None:
    settings = make_settings(**overrides)
    # One answer to "which Bedrock models are used": the gateway role's (the platform gives GatewayIdentity
    # Settings.bedrock_models_in_use) and the endpoint's.
    assert bool(settings.bedrock_models_in_use) is in_use
    endpoints = [e.value for e in settings.interface_endpoints]
    if settings.network.nat is NatMode.NONE:
        assert endpoints == sorted(NODE_ENDPOINTS + ["bedrock-runtime"] * in_use)
    else:
        assert endpoints == []


def test_a_listed_set_of_endpoints_without_bedrock_runtime_is_refused(make_settings: Any) -> None:
    network = {"nat": "none", "interface_endpoints": NODE_ENDPOINTS}
    with pytest.raises(InputError) as exc:
        make_settings(**{**NO_NAT, **BEDROCK, "network": network})
    problems = {p.path: p.message for p in exc.value.problems}
    assert list(problems) == ["modelyard:network.interface_endpoints"]
    message = problems["modelyard:network.interface_endpoints"]
    assert "add bedrock-runtime" in message and "llama-8b" in message and "nodes reach AWS" not in message
    # Listed, it is accepted; without a Bedrock fallback in use the node endpoints are enough.
    listed = make_settings(
        **{**NO_NAT, **BEDROCK, "network": {**network, "interface_endpoints": [*NODE_ENDPOINTS, "bedrock-runtime"]}}
    )
    assert InterfaceEndpoint.BEDROCK_RUNTIME in listed.interface_endpoints
    assert InterfaceEndpoint.BEDROCK_RUNTIME not in make_settings(**{**NO_NAT, "network": network}).interface_endpoints


def test_without_nat_the_gateway_reaches_bedrock_through_the_vpc_and_nothing_public(make_settings: Any) -> None:
    settings = make_settings(**NO_NAT, **BEDROCK)
    assert _https_to(settings) == [{"ipBlock": {"cidr": settings.network.cidr}}]
    assert {"to": [{"ipBlock": {"cidr": "169.254.170.23/32"}}], "ports": [{"protocol": "TCP", "port": 80}]} in _egress(
        settings
    )
    validate_strict(objects.network_policies(args_of(settings)), KUBERNETES_VERSION, frozenset())
    # With NAT, Bedrock answers on public addresses: HTTPS to every public address, nothing private.
    with_nat = make_settings(**BEDROCK)
    assert _https_to(with_nat) == [{"ipBlock": {"cidr": "0.0.0.0/0", "except": list(PRIVATE_RANGES)}}]
    # With NAT and a bedrock-runtime endpoint listed, its private DNS answers for Bedrock inside the VPC.
    listed = make_settings(**BEDROCK, network={"interface_endpoints": ["bedrock-runtime"]})
    assert _https_to(listed) == [{"ipBlock": {"cidr": listed.network.cidr}}]
    # Without any fallback in use, no HTTPS out at all.
    assert _https_to(make_settings(**NO_NAT)) == []


def test_a_bedrock_fallback_without_nat_gets_its_endpoint_priced_per_zone(tmp_path: Path) -> None:
    """The whole program: the network creates the endpoint from the settings, the cost model prices it like
    every interface endpoint (per zone and hour, plus its share of the data), the policy admits the VPC."""
    document = plan_with(tmp_path, "minimal", {**NO_NAT, **BEDROCK_IN_A_STACK_FILE})
    endpoints = {
        r["inputs"]["serviceName"]: r
        for r in document["resources"]
        if r["type"] == "aws:ec2/vpcEndpoint:VpcEndpoint" and r["inputs"]["vpcEndpointType"] == "Interface"
    }
    runtime = endpoints.pop("com.amazonaws.us-east-1.bedrock-runtime")
    assert runtime["inputs"]["privateDnsEnabled"] is True  # bedrock-runtime.<region>.amazonaws.com resolves to it
    assert (
        len(runtime["inputs"]["subnetIds"]) == 2
        and runtime["inputs"]["subnetIds"] == next(iter(endpoints.values()))["inputs"]["subnetIds"]
    )
    lines = {ln["resource"]: ln for ln in document["cost"]["lines"] if ln["resource"]}
    line = lines[runtime["key"]]
    assert line["status"] == "priced" and line["item"] == "interface endpoint bedrock-runtime (2 zones)"
    assert {lines[e["key"]]["monthly"] for e in endpoints.values()} == {line["monthly"]}
    (policy,) = [
        m["object"]
        for m in document["manifests"]
        if m["object"]["kind"] == "NetworkPolicy" and m["object"]["metadata"]["name"] == "litellm-egress"
    ]
    https = [
        peer
        for rule in policy["spec"]["egress"]
        if {"protocol": "TCP", "port": 443} in rule["ports"]
        for peer in rule["to"]
    ]
    (vpc,) = of_type(document, "aws:ec2/vpc:Vpc")
    assert https == [{"ipBlock": {"cidr": vpc["inputs"]["cidrBlock"]}}]


# --- settings that do not hold ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("preset", "overrides", "path", "message"),
    [
        (
            "moderate",
            {"gateway": {"database": {"instance_class": "db.x9.huge"}}},
            "gateway.database.instance_class",
            "no price in the cost model",
        ),
        (
            "moderate",
            {"gateway": {"redis": {"node_type": "cache.r9.huge"}}},
            "gateway.redis.node_type",
            "no Valkey price",
        ),
        ("moderate", {"gateway": {"redis": {"nodes": 1}}}, "gateway.redis.nodes", "cannot fail over"),
        ("moderate", {"gateway": {"replicas": 1}}, "gateway.redis", "this stack runs 1"),
        ("minimal", {"gateway": {"redis": {"nodes": 2}}}, "gateway.redis", "this stack runs 1"),
        (
            "minimal",
            {"gateway": {"fallbacks": {"llama-8b": {"provider": "bedrock", "model": "us." + BEDROCK_MODEL}}}},
            "gateway.fallbacks.llama-8b.model",
            "cross-region inference profile",
        ),
        (
            "minimal",
            {"gateway": {"fallbacks": {"llama-8b": {"provider": "bedrock", "model": "claude"}}}},
            "gateway.fallbacks.llama-8b.model",
            "not a Bedrock foundation model id",
        ),
        ("moderate", {"gateway": {"database": {"storage_gb": 10}}}, "gateway.database.storage_gb", ""),
    ],
)
def test_settings_that_do_not_hold_are_refused_naming_the_key(
    make_settings: Any, preset: str, overrides: dict[str, Any], path: str, message: str
) -> None:
    with pytest.raises(InputError) as exc:
        make_settings(preset, **overrides)
    problems = {p.path: p.message for p in exc.value.problems}
    assert message in problems[f"modelyard:{path}"], problems


def test_a_price_of_your_own_admits_another_instance_class(make_settings: Any) -> None:
    settings = make_settings(
        "moderate",
        gateway={"database": {"instance_class": "db.r7g.xlarge"}},
        cost={"prices": {"rds_db.r7g.xlarge_hour": 0.48}},
    )
    assert settings.gateway.database is not None and settings.gateway.database.instance_class == "db.r7g.xlarge"


def test_the_presets_get_what_docs_say(make_settings: Any) -> None:
    minimal, moderate, enterprise = (make_settings(p) for p in ("minimal", "moderate", "enterprise"))
    assert minimal.gateway.database is None and minimal.gateway.redis is None
    assert moderate.gateway.database is not None and not moderate.gateway.database.multi_az
    assert moderate.gateway.redis is not None and moderate.gateway.redis.nodes == 2
    assert enterprise.gateway.database is not None and enterprise.gateway.database.multi_az
    assert enterprise.gateway.redis is not None and enterprise.gateway.redis.nodes == 3


# --- the gateway with its state -----------------------------------------------------------------------------


def test_the_proxy_config_shares_limits_through_tls_redis(make_settings: Any) -> None:
    """LiteLLM 1.103.0 reads general_settings.coordination_redis into CoordinationRedisParams after resolving
    its os.environ/ references: the kit's block must come out as a TLS connection to the pod's REDIS_*."""
    moderate = args_of(make_settings("moderate"))
    block = gateway_config(moderate)["general_settings"]["coordination_redis"]
    assert "coordination_redis" not in gateway_config(args_of(make_settings("minimal")))["general_settings"]
    deployment = objects.deployment(moderate, redis_endpoint=("master.cache.example", 6379))
    env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == objects.REDIS_PASSWORD_SECRET
    assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": objects.DATABASE_URL_SECRET, "key": "url"}
    # The real parser, in a process of its own with the pod's environment (importing the proxy in pytest's
    # process would load its model cost map and trip the warnings-as-errors filter).
    pod_env = {name: e["value"] for name, e in env.items() if "value" in e}
    script = (
        "import json, sys\n"
        "from litellm.proxy._types import CoordinationRedisParams\n"
        "from litellm.proxy.proxy_server import _resolve_coordination_redis_env_refs\n"
        "params = CoordinationRedisParams.model_validate(_resolve_coordination_redis_env_refs(json.load(sys.stdin)))\n"
        "print(json.dumps([params.host, params.port, params.password, params.ssl]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(block),
        capture_output=True,
        text=True,
        timeout=120,
        env={
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", "/tmp"),
            **pod_env,
            "REDIS_PASSWORD": "token-from-the-secret",
        },
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [
        "master.cache.example",
        6379,
        "token-from-the-secret",
        True,
    ]


def test_the_gateway_may_reach_its_stores_and_nothing_more(make_settings: Any) -> None:
    settings = make_settings("moderate")
    (rule,) = [r for r in _egress(settings) if r["to"] == [{"ipBlock": {"cidr": settings.network.cidr}}]]
    assert rule["ports"] == [{"protocol": "TCP", "port": 5432}, {"protocol": "TCP", "port": 6379}]
    minimal = make_settings("minimal")
    assert not [r for r in _egress(minimal) if r["to"] == [{"ipBlock": {"cidr": minimal.network.cidr}}]]


def _state_objects(settings: Settings) -> list[dict[str, Any]]:
    args = args_of(settings)
    return [
        objects.namespace_object(KUBERNETES_VERSION),
        *objects.manifests(args),
        *[objects.secret_object(spec, "placeholder") for spec in objects.secret_specs(args)],
    ]


@pytest.fixture(scope="module")
def state_checkov(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from components.settings import build_settings

    settings = build_settings(project="modelyard", stack="gw", config=config_for("moderate"))
    target = tmp_path_factory.mktemp("checkov") / "gateway-state.yaml"
    skips = Path(objects.__file__).with_name("checkov-skips.yaml")
    with background_checkov(target, _state_objects(settings), skips) as run:
        yield run


def test_objects_with_state_are_valid_and_pass_checkov(make_settings: Any, state_checkov: dict[str, Any]) -> None:
    rendered = _state_objects(make_settings("moderate"))
    assert {o["metadata"]["name"] for o in rendered if o["kind"] == "Secret"} >= {
        objects.DATABASE_URL_SECRET,
        objects.REDIS_PASSWORD_SECRET,
    }
    validate_strict(rendered, KUBERNETES_VERSION, frozenset({"monitoring.coreos.com"}))
    require_tool("checkov")
    stdout, stderr = state_checkov["process"].communicate(timeout=300)
    assert stdout.strip(), stderr
    report = json.loads(stdout)
    reports = report if isinstance(report, list) else [report]
    assert [f"{f['check_id']} {f['resource']}" for r in reports for f in r["results"]["failed_checks"]] == []


def test_the_gateway_component_puts_each_state_secret_in_a_secret_of_its_own(tmp_path: Path) -> None:
    project = _project(tmp_path, "moderate", {})
    stack_file, settings = load_settings(project, "state")

    def program() -> None:
        provider = k8s.Provider("k8s", kubeconfig="{}")
        layer = aws_layer(
            gateway_database_url=pulumi.Output.secret("postgresql://litellm:pw-0123456789@db.example:5432/litellm"),
            gateway_redis_host="master.cache.example",
            gateway_redis_port=6379,
            gateway_redis_password=pulumi.Output.secret("tok-0123"),
        )
        Gateway("gateway", args=gateway_args(settings, layer), opts=pulumi.ResourceOptions(provider=provider))

    document = build_plan(
        settings=settings,
        recordings=[run_program(stack_file, preview=False, program=program)],
        catalog_date="-",
        project_dir=project,
    )
    text = json.dumps(document)
    assert "pw-0123456789" not in text and "tok-0123" not in text
    secrets = {
        r["inputs"]["metadata"]["name"]: r for r in document["resources"] if r["type"] == "kubernetes:core/v1:Secret"
    }
    for name in (objects.DATABASE_URL_SECRET, objects.REDIS_PASSWORD_SECRET):
        data = secrets[name]["inputs"]["stringData"]
        assert data == SECRET or list(data.values()) == [SECRET]
    (deployment,) = [r for r in document["resources"] if r["type"] == "kubernetes:apps/v1:Deployment"]
    env = {e["name"]: e for e in deployment["inputs"]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["REDIS_HOST"]["value"] == "master.cache.example" and env["REDIS_PORT"]["value"] == "6379"
