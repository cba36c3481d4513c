"""The gateway's endpoint: GatewayExposure (AWS), LoadBalancerController (chart) and the Gateway's binding,
run together through the offline engine and priced from the plan; the rendered objects checked with the real
tools; every refusal of the settings naming its key."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import re
import shutil
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pytest
import yaml

from components import contract
from components.aws.gateway_exposure import TLS_POLICY, GatewayExposure, GatewayExposureArgs, controller_policy
from components.contract import (
    LOAD_BALANCER_CONTROLLER_NAMESPACE,
    LOAD_BALANCER_CONTROLLER_SERVICE_ACCOUNT,
    UNKNOWN,
    subnet_layout,
)
from components.errors import InputError
from components.k8s.charts import UPSTREAM_CHARTS
from components.k8s.gateway import objects
from components.k8s.gateway.component import Gateway
from components.k8s.load_balancer_controller import (
    CHART,
    CHART_REPO,
    CHART_VERSION,
    IMAGE_TAG,
    LoadBalancerController,
    LoadBalancerControllerArgs,
    controller_values,
)
from components.plan.document import build_plan
from components.plan.engine import run_program
from components.plan.run import load_settings
from components.platform import gateway_args
from components.policy.rules import evaluate, no_world_ingress
from components.settings import Settings
from tests.conftest import aws_layer
from tests.tools import ROOT, background_checkov, require_tool, validate_strict

CERTIFICATE = "arn:aws:acm:us-east-1:111122223333:certificate/01234567-89ab-cdef-0123-456789abcdef"
INTERNAL = {"hostname": "llm.example.internal", "certificate_arn": CERTIFICATE}
PUBLIC = {
    "hostname": "llm.acme-corp.io",
    "exposure": "public",
    "public_zone_id": "Z0123456789ABCDEFGHIJ",
    "allowed_cidrs": ["198.51.100.0/24"],
}
VPC_ID = "vpc-0123456789abcdef0"
PRIVATE_SUBNETS = ["subnet-00000000000000001", "subnet-00000000000000002"]
PUBLIC_SUBNETS = ["subnet-00000000000000011", "subnet-00000000000000012"]
CLUSTER_SG = "sg-0cccccccccccccccc"
KUBERNETES_VERSION = "1.33"


def _project(tmp_path: Path, gateway: dict[str, Any], stack: str = "exposed") -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copytree(ROOT / "stacks" / "presets", tmp_path / "stacks" / "presets")
    config = {"modelyard:preset": "minimal", "modelyard:gateway": gateway}
    (tmp_path / "stacks" / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump({"config": config}))
    return tmp_path


def _program(settings: Settings) -> Any:
    """What the platform composes for the endpoint: the AWS side, the chart, the gateway bound to the NLB."""

    def program() -> None:
        aws_provider = aws.Provider("aws", region=settings.region)
        k8s_provider = k8s.Provider("k8s", kubeconfig="{}", namespace="default")
        exposure = GatewayExposure(
            "gateway-exposure",
            args=GatewayExposureArgs(
                gateway=settings.gateway,
                cluster_name=settings.name,
                vpc_id=VPC_ID,
                vpc_cidr=settings.network.cidr,
                region=settings.region,
                private_subnet_ids=PRIVATE_SUBNETS,
                public_subnet_ids=PUBLIC_SUBNETS,
                cluster_security_group_id=CLUSTER_SG,
                tags=settings.tags_for("gateway"),
            ),
            opts=pulumi.ResourceOptions(provider=aws_provider),
        )
        controller = LoadBalancerController(
            "load-balancer-controller",
            args=LoadBalancerControllerArgs(cluster_name=settings.name, region=settings.region, vpc_id=VPC_ID),
            opts=pulumi.ResourceOptions(provider=k8s_provider, depends_on=[exposure]),
        )
        Gateway(
            "gateway",
            args=gateway_args(settings, aws_layer(gateway_target_group_arn=exposure.target_group_arn)),
            opts=pulumi.ResourceOptions(provider=k8s_provider, depends_on=[controller.release]),
        )
        pulumi.export("endpoint", exposure.endpoint)

    return program


def plan_for(tmp_path: Path, gateway: dict[str, Any], *, preview: bool = False) -> dict[str, Any]:
    project = _project(tmp_path, gateway)
    stack_file, settings = load_settings(project, "exposed")
    recording = run_program(stack_file, preview=preview, program=_program(settings))
    return build_plan(settings=settings, recordings=[recording], catalog_date="2026-08-21", project_dir=project)


def one(plan: dict[str, Any], type_token: str) -> dict[str, Any]:
    (resource,) = [r for r in plan["resources"] if r["type"] == type_token]
    return resource


def every(plan: dict[str, Any], type_token: str) -> list[dict[str, Any]]:
    return [r for r in plan["resources"] if r["type"] == type_token]


def manifest(plan: dict[str, Any], kind: str) -> dict[str, Any]:
    (obj,) = [m["object"] for m in plan["manifests"] if m["object"]["kind"] == kind]
    return obj


# --- the AWS side ----------------------------------------------------------------------------------------


def test_internal_by_default_in_the_private_subnets_with_a_private_zone(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, INTERNAL)
    lb = one(plan, "aws:lb/loadBalancer:LoadBalancer")["inputs"]
    assert lb["loadBalancerType"] == "network" and lb["internal"] is True
    assert lb["subnets"] == PRIVATE_SUBNETS
    (lb_group,) = lb["securityGroups"]
    (egress,) = every(plan, "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
    assert lb_group.startswith("sg-") and egress["inputs"]["securityGroupId"] == lb_group  # the kit's own group

    zone = one(plan, "aws:route53/zone:Zone")["inputs"]
    assert zone["name"] == "llm.example.internal"
    assert zone["vpcs"] == [{"vpcId": VPC_ID, "vpcRegion": "us-east-1"}]  # private, attached to the VPC
    (record,) = every(plan, "aws:route53/record:Record")
    assert record["inputs"]["name"] == "llm.example.internal" and record["inputs"]["type"] == "A"
    assert record["inputs"].get("zoneId") != PUBLIC["public_zone_id"]  # in the private zone: see the preview test
    assert record["inputs"]["aliases"][0]["evaluateTargetHealth"] is True
    assert not every(plan, "aws:acm/certificate:Certificate")  # the stack's own certificate
    assert plan["outputs"]["endpoint"] == "https://llm.example.internal"


def test_tls_listener_with_the_certificate_and_a_modern_policy(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, INTERNAL)
    listener = one(plan, "aws:lb/listener:Listener")["inputs"]
    assert (listener["port"], listener["protocol"], listener["certificateArn"]) == (443, "TLS", CERTIFICATE)
    assert listener["sslPolicy"] == TLS_POLICY == "ELBSecurityPolicy-TLS13-1-2-Res-2021-06"
    assert [a["type"] for a in listener["defaultActions"]] == ["forward"]
    target_group = one(plan, "aws:lb/targetGroup:TargetGroup")["inputs"]
    assert (target_group["targetType"], target_group["protocol"], target_group["port"]) == ("ip", "TCP", 4000)
    assert target_group["preserveClientIp"] == "false"
    check = target_group["healthCheck"]
    assert (check["protocol"], check["path"], check["port"]) == ("HTTP", contract.GATEWAY_LIVENESS_PATH, "traffic-port")
    # The path the load balancer checks is the one the pods' liveness probe uses.
    args = gateway_args(load_settings(tmp_path, "exposed")[1], aws_layer())
    container = objects.deployment(args)["spec"]["template"]["spec"]["containers"]
    assert container[0]["livenessProbe"]["httpGet"]["path"] == contract.GATEWAY_LIVENESS_PATH


def test_security_groups_admit_443_from_the_vpc_and_only_the_nlb_to_the_pods(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, INTERNAL)
    (lb_group,) = one(plan, "aws:lb/loadBalancer:LoadBalancer")["inputs"]["securityGroups"]
    ingress = every(plan, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    from_clients = [r["inputs"] for r in ingress if "cidrIpv4" in r["inputs"]]
    assert [(r["cidrIpv4"], r["fromPort"], r["toPort"]) for r in from_clients] == [("10.40.0.0/16", 443, 443)]
    (to_pods,) = [r["inputs"] for r in ingress if r["inputs"].get("securityGroupId") == CLUSTER_SG]
    assert (to_pods["fromPort"], to_pods["toPort"], to_pods["ipProtocol"]) == (4000, 4000, "tcp")
    assert to_pods["referencedSecurityGroupId"] == lb_group
    assert all(r["securityGroupId"] == lb_group for r in from_clients)
    (egress,) = every(plan, "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
    assert egress["inputs"]["referencedSecurityGroupId"] == CLUSTER_SG
    assert (egress["inputs"]["fromPort"], egress["inputs"]["toPort"]) == (4000, 4000)
    # No inline rules: the group has exactly the rules above (the provider removes AWS's allow-all egress).
    group = one(plan, "aws:ec2/securityGroup:SecurityGroup")["inputs"]
    assert not group.get("ingress") and not group.get("egress")


def test_internet_facing_only_when_public(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, PUBLIC)
    lb = one(plan, "aws:lb/loadBalancer:LoadBalancer")["inputs"]
    assert lb["internal"] is False and lb["subnets"] == PUBLIC_SUBNETS
    rules = every(plan, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert [r["inputs"]["cidrIpv4"] for r in rules if "cidrIpv4" in r["inputs"]] == ["198.51.100.0/24"]
    assert not every(plan, "aws:route53/zone:Zone")  # the record goes in the company's public zone
    records = {r["name"]: r["inputs"] for r in every(plan, "aws:route53/record:Record")}
    assert records["gateway-exposure-dns"]["zoneId"] == PUBLIC["public_zone_id"]
    assert records["gateway-exposure-dns"]["name"] == PUBLIC["hostname"]
    # The kit requests the certificate and validates it by DNS in the same zone; the listener waits for it.
    certificate = one(plan, "aws:acm/certificate:Certificate")["inputs"]
    assert certificate["domainName"] == PUBLIC["hostname"] and certificate["validationMethod"] == "DNS"
    assert records["gateway-exposure-certificate-validation"]["zoneId"] == PUBLIC["public_zone_id"]
    preview = plan_for(tmp_path / "preview", PUBLIC, preview=True)
    validation = one(preview, "aws:acm/certificateValidation:CertificateValidation")
    listener = one(preview, "aws:lb/listener:Listener")
    assert validation["key"] in listener["depends_on"] and listener["inputs"]["certificateArn"] == UNKNOWN


def test_the_controller_may_only_register_targets_of_the_gateway_target_group(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, INTERNAL)
    target_group = one(plan, "aws:lb/targetGroup:TargetGroup")
    policy = json.loads(one(plan, "aws:iam/rolePolicy:RolePolicy")["inputs"]["policy"])
    writes = [s for s in policy["Statement"] if s["Resource"] != "*"]
    assert len(writes) == 1 and sorted(writes[0]["Action"]) == [
        "elasticloadbalancing:DeregisterTargets",
        "elasticloadbalancing:RegisterTargets",
    ]
    assert re.fullmatch(
        r"arn:aws:elasticloadbalancing:us-east-1:\d{12}:targetgroup/[\w-]{1,32}/[0-9a-f]{16}", writes[0]["Resource"]
    )
    assert target_group["key"] in one(plan, "aws:iam/rolePolicy:RolePolicy")["depends_on"]
    actions = [a for s in policy["Statement"] for a in s["Action"]]
    # The controller creates and deletes nothing: Pulumi owns the load balancer and the security group rules.
    forbidden = re.compile(r":(Create|Delete|Modify|Set|Add|Remove|Authorize|Revoke)|:\*|^\*$")
    assert not [a for a in actions if forbidden.search(a)]
    assert all(re.search(r":(Describe|RegisterTargets|DeregisterTargets)", a) for a in actions)
    # Pod Identity binds the role to the chart's service account in kube-system.
    trust = json.loads(one(plan, "aws:iam/role:Role")["inputs"]["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    association = one(plan, "aws:eks/podIdentityAssociation:PodIdentityAssociation")["inputs"]
    release = one(plan, "kubernetes:helm.sh/v3:Release")["inputs"]
    assert association["namespace"] == release["namespace"] == LOAD_BALANCER_CONTROLLER_NAMESPACE
    assert (
        association["serviceAccount"]
        == release["values"]["serviceAccount"]["name"]
        == LOAD_BALANCER_CONTROLLER_SERVICE_ACCOUNT
    )
    assert association["clusterName"] == "modelyard-exposed"


def test_controller_policy_is_the_target_group_only() -> None:
    arn = "arn:aws:elasticloadbalancing:us-east-1:111122223333:targetgroup/gw/0123456789abcdef"
    statements = json.loads(controller_policy(arn))["Statement"]
    assert {s["Sid"]: s["Resource"] for s in statements} == {"Describe": "*", "GatewayTargets": arn}


# --- the Kubernetes side ---------------------------------------------------------------------------------


def test_the_chart_is_pinned_on_the_system_nodes_with_explicit_cluster_facts(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, INTERNAL)
    release = one(plan, "kubernetes:helm.sh/v3:Release")
    inputs = release["inputs"]
    assert (inputs["chart"], inputs["version"], inputs["repositoryOpts"]["repo"]) == (CHART, CHART_VERSION, CHART_REPO)
    assert re.fullmatch(r"\d+\.\d+\.\d+", CHART_VERSION) and f"v{CHART_VERSION}" == IMAGE_TAG
    values = inputs["values"]
    # Pods cannot reach the instance metadata service (one IMDSv2 hop): the chart is told region and VPC.
    assert (values["clusterName"], values["region"], values["vpcId"]) == ("modelyard-exposed", "us-east-1", VPC_ID)
    assert values["nodeSelector"] == {"modelyard.dev/pool": "system"} and values["replicaCount"] == 2
    assert values["image"] == {"repository": "public.ecr.aws/eks/aws-load-balancer-controller", "tag": IMAGE_TAG}
    assert not values["enableShield"] and not values["enableWaf"] and not values["enableWafv2"]
    assert values["createIngressClassResource"] is False and values["enableBackendSecurityGroup"] is False
    assert values["serviceMutatorWebhookConfig"]["failurePolicy"] == "Ignore"
    assert release["provider"].endswith("::pulumi:providers:kubernetes")
    # Through the pull-through cache where nodes have no NAT.
    mirrored = controller_values(cluster_name="c", region="us-east-1", vpc_id=VPC_ID, image_registry="1.dkr/ecr-public")
    assert mirrored["image"]["repository"] == "1.dkr/ecr-public/eks/aws-load-balancer-controller"


def test_the_chart_installs_its_own_crds_for_want_of_a_crd_chart(tmp_path: Path) -> None:
    """Upstream publishes no chart of the controller's CRDs (components/k8s/load_balancer_controller.py): the
    release is the only one that creates them on a new cluster, so it must not skip its crds/; a bump applies the
    new chart's CRDs by hand first (docs/upgrades.md, "CRDs")."""
    assert not [c for c in UPSTREAM_CHARTS.values() if c.crds_of == CHART]
    inputs = one(plan_for(tmp_path, INTERNAL), "kubernetes:helm.sh/v3:Release")["inputs"]
    assert "skipCrds" not in inputs and "takeOwnership" not in inputs


def test_the_gateway_is_bound_to_the_target_group(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, INTERNAL)
    binding = manifest(plan, "TargetGroupBinding")
    assert binding["apiVersion"] == "elbv2.k8s.aws/v1beta1" and binding["metadata"]["namespace"] == "gateway"
    assert binding["spec"]["serviceRef"] == {"name": "litellm", "port": 4000}
    assert binding["spec"]["targetType"] == "ip"
    assert binding["spec"]["targetGroupARN"].startswith("arn:aws:elasticloadbalancing:us-east-1:")
    service = manifest(plan, "Service")
    assert service["metadata"]["name"] == "litellm" and service["spec"]["type"] == "ClusterIP"
    # The readiness gate: a rollout waits until the NLB finds the new pod healthy.
    namespace = manifest(plan, "Namespace")
    assert namespace["metadata"]["labels"]["elbv2.k8s.aws/pod-readiness-gate-inject"] == "enabled"
    # The binding is a CRD of the chart: created after the release.
    (resource,) = [r for r in plan["resources"] if r["type"] == "kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding"]
    gateway = next(r for r in plan["resources"] if r["key"] == resource["parent"])
    assert one(plan, "kubernetes:helm.sh/v3:Release")["key"] in gateway["depends_on"]


def test_in_preview_only_the_arn_waits_for_the_aws_layer(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, INTERNAL, preview=True)
    binding = manifest(plan, "TargetGroupBinding")
    assert binding["spec"]["targetGroupARN"] == UNKNOWN
    assert binding["spec"]["serviceRef"] == {"name": "litellm", "port": 4000}
    # The apex record lives in the private zone (its id is known only after apply).
    (record,) = every(plan, "aws:route53/record:Record")
    assert record["inputs"]["zoneId"] == UNKNOWN
    assert one(plan, "aws:route53/zone:Zone")["key"] in record["depends_on"]


@pytest.mark.parametrize(("gateway", "cidrs"), [(INTERNAL, "private"), (PUBLIC, "public"), ({}, None)])
def test_network_policy_admits_the_nlb_from_its_subnets(make_settings, gateway, cidrs) -> None:
    settings = make_settings("minimal", gateway=gateway)
    args = gateway_args(settings, aws_layer())
    (policy,) = [p for p in objects.network_policies(args) if p["metadata"]["name"] == "litellm-ingress"]
    rules = policy["spec"]["ingress"]
    # Pods of the cluster (tenants' clients, Prometheus) always; the NLB's private addresses with a hostname.
    assert rules[0]["from"] == [{"namespaceSelector": {}}]
    private, public = subnet_layout(settings.network.cidr, len(settings.network.zone_ids))
    if cidrs is None:
        assert len(rules) == 1
        return
    expected = private if cidrs == "private" else public
    assert [peer["ipBlock"]["cidr"] for peer in rules[1]["from"]] == expected
    assert rules[1]["ports"] == [{"protocol": "TCP", "port": 4000}]
    vpc = ipaddress.IPv4Network(settings.network.cidr)
    assert all(ipaddress.IPv4Network(c).subnet_of(vpc) for c in expected)


def test_the_gateway_needs_the_target_group_exactly_with_a_hostname(tmp_path: Path) -> None:
    stack_file, settings = load_settings(_project(tmp_path, INTERNAL), "exposed")

    def program() -> None:
        # Wired as the platform wires it, but for the load balancer's target group.
        args = dataclasses.replace(gateway_args(settings, aws_layer()), target_group_arn=None)
        Gateway("gateway", args=args)

    with pytest.raises(Exception, match="target_group_arn"):
        run_program(stack_file, preview=True, program=program)


# --- the rendered objects with the real tools -------------------------------------------------------------

# The TargetGroupBinding fields the kit sets, as the controller's v1beta1 CRD (v3.5.0) declares them:
# kubernetes-validate has no schema for a CRD, so this one stands in for the parts the kit relies on.
TARGET_GROUP_BINDING_SPEC = {
    "type": "object",
    "required": ["serviceRef"],
    "properties": {
        "serviceRef": {
            "type": "object",
            "required": ["name", "port"],
            "properties": {"name": {"type": "string"}, "port": {"type": ["integer", "string"]}},
            "additionalProperties": False,
        },
        "targetGroupARN": {"type": "string", "pattern": r"^arn:aws[\w-]*:elasticloadbalancing:"},
        "targetType": {"enum": ["instance", "ip"]},
        "ipAddressType": {"enum": ["ipv4", "ipv6"]},
    },
    "additionalProperties": False,
}
CRD_GROUPS = frozenset({"elbv2.k8s.aws", "monitoring.coreos.com"})
CHECKOV_SKIPS = Path(objects.__file__).with_name("checkov-skips.yaml")
ARN = "arn:aws:elasticloadbalancing:us-east-1:111122223333:targetgroup/gateway/0123456789abcdef"


def rendered_objects() -> list[dict[str, Any]]:
    from components.settings import build_settings
    from tests.conftest import config_for

    settings = build_settings(
        project="modelyard", stack="exposed", config=config_for("minimal", gateway=INTERNAL, tenants={})
    )
    return [
        objects.namespace_object(KUBERNETES_VERSION, load_balanced=True),
        *objects.manifests(gateway_args(settings, aws_layer())),
        objects.target_group_binding(ARN),
    ]


@pytest.fixture(scope="module")
def checkov_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    target = tmp_path_factory.mktemp("checkov") / "gateway-exposure.yaml"
    with background_checkov(target, rendered_objects(), CHECKOV_SKIPS) as run:
        yield run


def test_objects_are_valid_for_the_cluster_kubernetes() -> None:
    objs = rendered_objects()
    assert validate_strict(objs, KUBERNETES_VERSION, CRD_GROUPS) >= {"elbv2.k8s.aws"}
    (binding,) = [o for o in objs if o["kind"] == "TargetGroupBinding"]
    jsonschema.validate(binding["spec"], TARGET_GROUP_BINDING_SPEC)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**binding["spec"], "targetType": "pod"}, TARGET_GROUP_BINDING_SPEC)


def test_checkov_finds_nothing_outside_the_skip_list(checkov_run: dict[str, Any]) -> None:
    require_tool("checkov")
    stdout, stderr = checkov_run["process"].communicate(timeout=300)
    assert stdout.strip(), stderr
    report = json.loads(stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [f"{f['check_id']} {f['resource']}" for r in reports for f in r["results"]["failed_checks"]]
    assert failed == []
    # Every object was read (a file checkov cannot parse would pass silently).
    assert all(r["summary"]["parsing_errors"] == 0 and r["summary"]["passed"] > 0 for r in reports)


# --- settings: refusals name their keys --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gateway", "path", "message"),
    [
        ({"exposure": "public"}, "gateway.hostname", "required with exposure: public"),
        ({"certificate_arn": CERTIFICATE}, "gateway.certificate_arn", "only with gateway.hostname"),
        ({"allowed_cidrs": ["10.1.0.0/16"]}, "gateway.allowed_cidrs", "only with gateway.hostname"),
        ({"hostname": "llm.acme-corp.io"}, "gateway.certificate_arn", "required with gateway.hostname"),
        (
            {"hostname": "llm.example.internal", "public_zone_id": "Z0123"},
            "gateway.certificate_arn",
            "not a public DNS name",
        ),
        (
            {**INTERNAL, "certificate_arn": CERTIFICATE.replace("us-east-1", "eu-west-1")},
            "gateway.certificate_arn",
            "eu-west-1",
        ),
        ({**PUBLIC, "allowed_cidrs": ["0.0.0.0/0"]}, "gateway.allowed_cidrs[0]", "allow_public_world"),
        ({**PUBLIC, "allowed_cidrs": []}, "gateway.allowed_cidrs", "required with exposure: public"),
        ({**PUBLIC, "allowed_cidrs": ["10.0.0.0/8"]}, "gateway.allowed_cidrs[0]", "private range"),
        ({**PUBLIC, "public_zone_id": None}, "gateway.public_zone_id", "required with exposure: public"),
        ({**PUBLIC, "hostname": "llm.corp.internal"}, "gateway.hostname", "not a public DNS name"),
        ({**INTERNAL, "allowed_cidrs": ["198.51.100.0/24"]}, "gateway.allowed_cidrs[0]", "not a private range"),
        ({**INTERNAL, "allow_public_world": True}, "gateway.allow_public_world", "only with gateway.exposure"),
        ({**INTERNAL, "hostname": "LLM.Example.com"}, "gateway.hostname", "DNS name"),
        ({**INTERNAL, "public_zone_id": "zone-1"}, "gateway.public_zone_id", "hosted zone id"),
    ],
)
def test_incomplete_or_unsafe_exposure_is_refused_naming_the_key(make_settings, gateway, path, message) -> None:
    with pytest.raises(InputError) as caught:
        make_settings("minimal", gateway=gateway)
    problems = [p for p in caught.value.problems if p.path == f"modelyard:{path}"]
    assert problems and any(message in p.message for p in problems), caught.value.problems


def test_a_world_open_endpoint_passes_the_policy_only_on_its_marked_443(tmp_path: Path) -> None:
    world = {**PUBLIC, "allowed_cidrs": ["0.0.0.0/0"], "allow_public_world": True}
    plan = plan_for(tmp_path, world)
    assert no_world_ingress(plan) == []
    (rule,) = [r for r in plan["resources"] if r["inputs"].get("cidrIpv4") == "0.0.0.0/0"]
    rule["inputs"]["toPort"] = 8443
    assert [v.resource for v in no_world_ingress(plan)] == [rule["key"]]


@pytest.mark.parametrize("gateway", [INTERNAL, PUBLIC], ids=["internal", "public"])
def test_the_plan_passes_every_policy_rule(tmp_path: Path, gateway: dict[str, Any]) -> None:
    assert [str(v) for v in evaluate(plan_for(tmp_path, gateway))] == []


def test_the_whole_internet_only_when_said_so(make_settings) -> None:
    world = {**PUBLIC, "allowed_cidrs": ["0.0.0.0/0"], "allow_public_world": True}
    assert make_settings("minimal", gateway=world).gateway.allowed_cidrs == ("0.0.0.0/0",)
    assert make_settings("minimal", gateway=PUBLIC).gateway.exposure.value == "public"
    assert make_settings("minimal").gateway.hostname is None  # no preset creates a load balancer


# --- cost from the plan -----------------------------------------------------------------------------------


def _lines(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {line["id"]: line for line in plan["cost"]["lines"]}


def test_the_nlb_and_the_private_zone_are_priced_from_the_plan(tmp_path: Path) -> None:
    lines = _lines(plan_for(tmp_path, INTERNAL))
    lb = one_line(lines, "aws:lb/loadBalancer:LoadBalancer")
    assert Decimal(lb["monthly"]) == Decimal("20.81")  # (0.0225 + 0.006 NLCU) x 730 h
    zone = one_line(lines, "aws:route53/zone:Zone")
    assert Decimal(zone["monthly"]) == Decimal("0.50")
    assert "controllers/lb/gateway" not in lines
    assert not [i for i, line in lines.items() if line.get("status") == "not priced"]


def test_a_public_nlb_also_pays_for_its_public_addresses(tmp_path: Path) -> None:
    lines = _lines(plan_for(tmp_path, PUBLIC))
    addresses = [line for i, line in lines.items() if i.endswith("/public-ipv4")]
    assert [Decimal(a["monthly"]) for a in addresses] == [Decimal("7.30")]  # 2 zones x 0.005 x 730 h
    assert not one_line(lines, "aws:route53/zone:Zone", missing_ok=True)


def one_line(lines: dict[str, dict[str, Any]], type_token: str, *, missing_ok: bool = False) -> dict[str, Any]:
    found = [line for i, line in lines.items() if i.endswith(f"::{type_token}")]
    if missing_ok and not found:
        return {}
    (line,) = found
    return line
