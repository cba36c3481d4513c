"""Attacks on a tenant's way out of the cluster and into the stack's weights, proven closed over the shipped
stacks' plans (docs/security.md#tenant-egress):

- a compromised tenant pod opens connections: its namespace's NetworkPolicies are evaluated rule by rule
  (tests/netpol.py) for the places it must reach and the ones it must not;
- it writes to a bucket of its own through the VPC's S3 gateway endpoint: the endpoint's policy is evaluated
  as IAM evaluates it;
- it reads another tenant's weights, or decrypts them outside S3: each read role is evaluated the same way.

Each check also meets a case it must catch (the policies as they were, or a deliberately open one), so it
cannot pass by accident.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from typing import Any

import pytest
import yaml

from components import catalog
from components.catalog import s3_ranges
from components.contract import GATEWAY_NAMESPACE, GATEWAY_POD_LABELS, GATEWAY_PORT
from components.errors import InputError
from components.k8s.isolation import (
    MODEL_SERVER_COMPONENT,
    POD_IDENTITY_AGENT,
    PRIVATE_RANGES,
    isolation_args,
    network_policies,
)
from components.plan.run import load_settings
from components.settings import Settings
from components.settings.cross_checks import known_regions
from components.settings.types import TenantEgress
from tests.conftest import ROOT, SHIPPED_STACKS, by_type, plan_with
from tests.netpol import (
    document_allows,
    egress_allows,
    external,
    pod,
    world_open_rules,
)
from tests.tools import validate_strict

KUBERNETES_VERSION = "1.33"
REGION = "us-east-1"
ACCOUNT = "123456789012"  # the offline plan's account
KUBE_DNS = pod("kube-system", {"k8s-app": "kube-dns"})
GATEWAY = pod(GATEWAY_NAMESPACE, GATEWAY_POD_LABELS)
MODEL_SERVER = dict([MODEL_SERVER_COMPONENT])
# Public addresses outside S3: a DNS resolver, a CDN, GitHub, Hugging Face's CDN range, another cloud.
ELSEWHERE = ("1.1.1.1", "8.8.8.8", "104.16.0.1", "140.82.112.3", "18.160.0.1", "34.117.0.1")


def settings_of(stack: str) -> Settings:
    return load_settings(ROOT, stack)[1]


def network_policy_objects(plan: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [m["object"] for m in plan["manifests"] if m["object"]["kind"] == "NetworkPolicy"]


def as_objects(namespace: str, specs: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": namespace},
            "spec": dict(spec),
        }
        for name, spec in specs.items()
    ]


def first_host(cidr: str) -> str:
    network = ipaddress.ip_network(cidr)
    return str(network.network_address + (1 if network.num_addresses > 1 else 0))


# --- tenant egress ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_a_tenant_pod_reaches_dns_the_gateway_the_agent_its_namespace_and_its_regions_s3_only(plans, stack):
    region = plans[stack]["outputs"]["region"]  # the eu-west-1 cell too
    s3_address = str(next(ipaddress.ip_network(s3_ranges.region_cidrs(region)[0]).hosts()))
    settings = settings_of(stack)
    policies = network_policy_objects(plans[stack])
    vpc_host = first_host(settings.network.cidr)
    for tenant in settings.tenants:
        namespace = f"tenant-{tenant}"
        others = [f"tenant-{t}" for t in settings.tenants if t != tenant] + ["tenant-nobody"]
        for labels in ({}, MODEL_SERVER):
            me = pod(namespace, labels)

            def reach(destination, port, protocol="TCP", me=me):
                return egress_allows(policies, source=me, destination=destination, port=port, protocol=protocol)

            assert reach(KUBE_DNS, 53, "UDP") and reach(KUBE_DNS, 53)
            assert reach(GATEWAY, GATEWAY_PORT)
            assert reach(external(POD_IDENTITY_AGENT.split("/")[0]), 80)
            assert reach(pod(namespace, MODEL_SERVER), 8000)
            assert reach(external(s3_address), 443)  # S3 of the stack's region
            # Not: S3 off 443, IMDS, the VPC (nodes, interface endpoints, internal load balancers), other tenants,
            # another pod of kube-system or the gateway's namespace on another port, the internet.
            assert not reach(external(s3_address), 80)
            assert not reach(external("169.254.169.254"), 80)
            assert not reach(external(vpc_host), 443)
            assert not any(reach(pod(other, MODEL_SERVER), 8000) for other in others)
            assert not reach(pod("kube-system", {"k8s-app": "kube-dns"}), 443)
            assert not reach(GATEWAY, 443)
            assert not any(reach(external(ip), port) for ip in ELSEWHERE for port in (443, 80, 53))


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_every_s3_range_of_the_region_is_reachable_and_no_other_regions(plans, stack):
    region = plans[stack]["outputs"]["region"]  # the eu-west-1 cell too
    policies = network_policy_objects(plans[stack])
    table = s3_ranges.s3_ranges().regions
    own = [ipaddress.ip_network(c) for c in table[region]]
    me = pod(f"tenant-{next(iter(settings_of(stack).tenants))}")
    for cidr in table[region]:
        assert egress_allows(policies, source=me, destination=external(first_host(cidr)), port=443), cidr
    elsewhere = [c for region, cidrs in table.items() if region != region for c in cidrs]
    for cidr in elsewhere:
        host = first_host(cidr)
        if any(ipaddress.ip_address(host) in n for n in own):
            continue  # a range AWS lists under two regions
        assert not egress_allows(policies, source=me, destination=external(host), port=443), cidr


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_no_shipped_tenant_network_policy_admits_the_internet(plans, stack):
    tenant_policies = [
        p for p in network_policy_objects(plans[stack]) if p["metadata"]["namespace"].startswith("tenant-")
    ]
    assert len(tenant_policies) >= 7
    opened = {
        f"{p['metadata']['namespace']}/{p['metadata']['name']}": world_open_rules(p["spec"]) for p in tenant_policies
    }
    assert not {name: rules for name, rules in opened.items() if rules}


def test_the_checks_catch_a_tenant_open_to_the_internet():
    """The policies as they shipped before (HTTPS to every public address) and an `egress: internet` tenant's:
    the world-open check names them and the evaluator lets 1.1.1.1 through; nothing private opens even then."""
    namespace = "tenant-x"
    before = {
        "allow-s3-https": {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": list(PRIVATE_RANGES)}}],
                    "ports": [{"protocol": "TCP", "port": 443}],
                }
            ],
        }
    }
    assert world_open_rules(before["allow-s3-https"]) == ["egress[0]"]
    assert egress_allows(
        as_objects(namespace, before), source=pod(namespace), destination=external("1.1.1.1"), port=443
    )
    assert world_open_rules({"egress": [{"ports": [{"port": 443}]}]}) == ["egress[0]"]  # no `to`: every address

    cidrs = s3_ranges.region_cidrs(REGION)
    internet = network_policies(namespace, egress=TenantEgress.INTERNET, s3_cidrs=cidrs)
    assert world_open_rules(internet["allow-internet-https"]) == ["egress[0]"]
    objects = as_objects(namespace, internet)
    assert egress_allows(objects, source=pod(namespace), destination=external("1.1.1.1"), port=443)
    assert not egress_allows(objects, source=pod(namespace), destination=external("1.1.1.1"), port=80)
    for private in ("10.60.0.10", "169.254.169.254", "172.16.0.1", "192.168.1.1", "100.64.0.1"):
        assert not egress_allows(objects, source=pod(namespace), destination=external(private), port=443), private


@pytest.mark.parametrize(
    ("egress", "names", "s3", "internet"),
    [
        (TenantEgress.NONE, set(), False, False),
        (TenantEgress.S3, {"allow-s3-https"}, True, False),
        (TenantEgress.INTERNET, {"allow-s3-https", "allow-internet-https"}, True, True),
    ],
)
def test_the_egress_setting_decides_what_opens(egress, names, s3, internet):
    base = {"default-deny", "allow-dns", "allow-gateway-and-prometheus", "allow-to-gateway"}
    base |= {"allow-pod-identity-agent", "allow-same-namespace"}
    specs = network_policies("tenant-x", egress=egress, s3_cidrs=s3_ranges.region_cidrs(REGION))
    assert set(specs) == base | names
    objects = as_objects("tenant-x", specs)
    me = pod("tenant-x")
    assert egress_allows(objects, source=me, destination=external("54.231.0.1"), port=443) is s3
    assert egress_allows(objects, source=me, destination=external("1.1.1.1"), port=443) is internet
    assert egress_allows(objects, source=me, destination=KUBE_DNS, port=53, protocol="UDP")
    validate_strict(objects, KUBERNETES_VERSION, frozenset())


def test_isolation_takes_each_tenants_egress_and_the_regions_ranges(make_settings):
    settings = make_settings(
        "moderate",
        region="eu-west-1",
        network={"zone_ids": ["euw1-az1", "euw1-az2"]},
        tenants={"internal": {"egress": "internet"}},
    )
    args = isolation_args(settings)
    assert args.egress == {"product": TenantEgress.S3, "internal": TenantEgress.INTERNET}
    assert args.s3_cidrs == s3_ranges.region_cidrs("eu-west-1") != s3_ranges.region_cidrs(REGION)


# --- settings that cannot serve the tenant ------------------------------------------------------------------


def _problems(make_settings, preset: str, **overrides: Any) -> dict[str, str]:
    with pytest.raises(InputError) as exc:
        make_settings(preset, **overrides)
    return {p.path.removeprefix("modelyard:"): p.message for p in exc.value.problems}


def test_egress_that_cannot_serve_the_tenant_is_refused(make_settings, monkeypatch):
    found = _problems(make_settings, "moderate", tenants={"product": {"egress": "none"}})
    assert "owns the servers of llama-70b, llama-8b" in found["tenants.product.egress"]
    found = _problems(make_settings, "minimal", tenants={"internal": {"egress": "internet"}})
    assert "data: external-allowed" in found["tenants.internal.egress"]
    assert "tenants.internal.egress" in _problems(make_settings, "minimal", tenants={"internal": {"egress": "www"}})
    # A tenant that owns no servers may have no egress at all; internet where NAT and its data policy allow.
    make_settings("moderate", tenants={"internal": {"egress": "none"}})
    make_settings("moderate", tenants={"internal": {"egress": "internet"}})
    # A region the table has no ranges for (a region newer than the table): refused, naming the fix.
    monkeypatch.setattr(s3_ranges, "region_cidrs", lambda region: ())
    assert "regenerate it from a fresh ip-ranges.json" in _problems(make_settings, "minimal")["region"]


def test_the_enterprise_internet_refusal_names_both_reasons(make_settings):
    """enterprise has no NAT, and core's prompts stay in the VPC: the internet is unreachable and forbidden."""
    with pytest.raises(InputError) as exc:
        make_settings("enterprise", tenants={"core": {"egress": "internet"}})
    messages = [p.message for p in exc.value.problems if p.path == "modelyard:tenants.core.egress"]
    assert len(messages) == 2
    assert any("network.nat is none" in m for m in messages) and any("external-allowed" in m for m in messages)


def test_a_malformed_endpoint_bucket_is_refused(make_settings):
    found = _problems(make_settings, "minimal", network={"s3_endpoint_buckets": ["Team_Datasets"]})
    assert any(path.startswith("network.s3_endpoint_buckets") for path in found), found


# --- the S3 gateway endpoint --------------------------------------------------------------------------------


FULL_ACCESS = {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}]}


def endpoint_policy(plan: Mapping[str, Any]) -> dict[str, Any]:
    """The S3 gateway endpoint's policy; without one, AWS's default: full access to every bucket."""
    (endpoint,) = [
        e for e in by_type(plan, "aws:ec2/vpcEndpoint:VpcEndpoint") if e["inputs"]["serviceName"].endswith(".s3")
    ]
    policy = endpoint["inputs"].get("policy")
    return json.loads(policy) if policy else FULL_ACCESS


def stack_buckets(stack: str) -> set[str]:
    settings = settings_of(stack)
    buckets = {f"modelyard-{stack}-models-{ACCOUNT}"}
    if settings.kubernetes_stack is not None:
        buckets |= {f"modelyard-{stack}-deploy-{ACCOUNT}", str(settings.deploy.state_bucket)}
    return buckets


def test_the_endpoint_check_catches_the_default_full_access_policy():
    """Before: no policy on the endpoint, AWS's default, and anything in the VPC could write to any bucket."""
    assert document_allows(FULL_ACCESS, "s3:PutObject", "arn:aws:s3:::exfiltration-bucket/prompts.jsonl")


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_the_s3_endpoint_admits_the_stacks_buckets_and_what_nodes_read_only(plans, stack):
    region = plans[stack]["outputs"]["region"]  # the eu-west-1 cell too
    settings = settings_of(stack)
    policy = endpoint_policy(plans[stack])
    statements = {s["Sid"]: s for s in policy["Statement"]}
    own = stack_buckets(stack)
    assert set(statements["StackBuckets"]["Resource"]) == {
        arn for bucket in own for arn in (f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*")
    }
    assert all(s["Effect"] == "Allow" and s["Resource"] != "*" for s in policy["Statement"])
    assert statements["ReadNodeSoftware"]["Action"] == "s3:GetObject"

    def admits(action: str, arn: str) -> bool:
        return document_allows(policy, action, arn)

    for bucket in own:
        assert admits("s3:GetObject", f"arn:aws:s3:::{bucket}/models/x/main/config.json")
        assert admits("s3:PutObject", f"arn:aws:s3:::{bucket}/key")  # IAM, not the endpoint, decides who may
        assert admits("s3:ListBucket", f"arn:aws:s3:::{bucket}")
    for action in ("s3:PutObject", "s3:GetObject", "s3:ListBucket", "s3:DeleteObject"):
        for arn in ("arn:aws:s3:::exfiltration-bucket", "arn:aws:s3:::exfiltration-bucket/prompts.jsonl"):
            assert not admits(action, arn), (action, arn)
    # The model bucket's access logs are written by S3's log delivery, from outside the VPC.
    assert not admits("s3:PutObject", f"arn:aws:s3:::modelyard-{stack}-models-{ACCOUNT}-logs/access/x")
    layers = f"arn:aws:s3:::prod-{region}-starport-layer-bucket/sha256/abc"
    assert admits("s3:GetObject", layers) and not admits("s3:PutObject", layers)
    assert admits("s3:GetObject", f"arn:aws:s3:::al2023-repos-{region}-de612dc2/core/mirrors/latest/x")
    registry = f"arn:aws:s3:::prod-registry-k8s-io-{region}/containers/images/sha256:abc"
    # Nodes without the pull-through cache pull kube-state-metrics and LWS from registry.k8s.io themselves.
    assert admits("s3:GetObject", registry) is (not settings.image_cache_on)
    assert not admits("s3:PutObject", registry)


def test_buckets_the_stack_names_reach_the_endpoint(tmp_path):
    plan = plan_with(tmp_path, "minimal", {"network": {"s3_endpoint_buckets": ["team-datasets"]}})
    policy = endpoint_policy(plan)
    assert document_allows(policy, "s3:GetObject", "arn:aws:s3:::team-datasets/eval/x.jsonl")
    assert not document_allows(policy, "s3:GetObject", "arn:aws:s3:::team-datasets-2/x")


# --- who reads which weights, and KMS only through S3 -----------------------------------------------------


def read_policy(plan: Mapping[str, Any], role: str) -> dict[str, Any]:
    (policy,) = [r for r in by_type(plan, "aws:iam/rolePolicy:RolePolicy") if r["name"] == role]
    return json.loads(policy["inputs"]["policy"])


def weights_prefix(settings: Settings, model: str) -> str:
    entry = settings.models[model]
    return f"models/{catalog.resolve_model(entry.model).name}/{entry.revision}/"


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_a_tenant_reads_the_weights_only_of_the_servers_it_runs(plans, stack):
    settings = settings_of(stack)
    bucket = f"arn:aws:s3:::modelyard-{stack}-models-{ACCOUNT}"
    for tenant in settings.tenants:
        policy = read_policy(plans[stack], f"models-read-{tenant}")
        runs = {weights_prefix(settings, m) for m in settings.models if settings.model_owner(m) == tenant}
        for model in settings.models:
            prefix = weights_prefix(settings, model)
            assert document_allows(policy, "s3:GetObject", f"{bucket}/{prefix}model.safetensors") is (prefix in runs)
        for other in settings.tenants:
            assert document_allows(policy, "s3:GetObject", f"{bucket}/tenants/{other}/adapter.bin") is (other == tenant)
        assert not document_allows(policy, "s3:PutObject", f"{bucket}/tenants/{tenant}/x")
        assert not document_allows(policy, "s3:GetObject", f"{bucket}/models/other/main/x")


def test_a_tenant_calling_a_model_it_does_not_own_cannot_read_its_weights(plans):
    """product's `internal` lists llama-8b, which product's servers run: it calls the model through the gateway;
    before, its role read the weights of every model it listed."""
    settings = settings_of("product")
    assert "llama-8b" in settings.tenants["internal"].models and settings.model_owner("llama-8b") == "product"
    bucket = f"arn:aws:s3:::modelyard-product-models-{ACCOUNT}"
    weights = f"{bucket}/models/llama-3.1-8b/main/model-00001-of-00004.safetensors"
    assert not document_allows(read_policy(plans["product"], "models-read-internal"), "s3:GetObject", weights)
    assert document_allows(read_policy(plans["product"], "models-read-product"), "s3:GetObject", weights)
    listed = read_policy(plans["product"], "models-read-internal")["Statement"]
    assert not any(
        "/models/" in r for s in listed for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])
    )


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_the_weights_key_is_usable_only_by_s3_for_the_model_bucket(plans, stack):
    region = plans[stack]["outputs"]["region"]  # the eu-west-1 cell too
    elsewhere = "us-west-2" if region == "eu-west-1" else "eu-west-1"
    plan = plans[stack]
    bucket = f"arn:aws:s3:::modelyard-{stack}-models-{ACCOUNT}"
    via_s3 = {"kms:ViaService": f"s3.{region}.amazonaws.com", "kms:EncryptionContext:aws:s3:arn": bucket}
    roles = [f"models-read-{t}" for t in settings_of(stack).tenants] + ["models-writer"]
    for role in roles:
        policy = read_policy(plan, role)
        (statement,) = [s for s in policy["Statement"] if any(a.startswith("kms:") for a in _actions(s))]
        resource = statement["Resource"]
        assert resource.startswith(f"arn:aws:kms:{region}:{ACCOUNT}:key/"), "the key itself, not every key"
        actions = ["kms:Decrypt"] + (["kms:GenerateDataKey"] if role == "models-writer" else [])
        for action in actions:
            assert document_allows(policy, action, resource, via_s3), (role, action)
            # Directly (no S3 in between), through another service, or for another bucket under the same key.
            assert not document_allows(policy, action, resource, {}), role
            assert not document_allows(
                policy, action, resource, {**via_s3, "kms:ViaService": f"s3.{elsewhere}.amazonaws.com"}
            )
            assert not document_allows(
                policy, action, resource, {**via_s3, "kms:ViaService": f"ssm.{region}.amazonaws.com"}
            )
            other_bucket = {**via_s3, "kms:EncryptionContext:aws:s3:arn": "arn:aws:s3:::another-bucket"}
            assert not document_allows(policy, action, resource, other_bucket), role


def _actions(statement: Mapping[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


# --- the table of S3 ranges -----------------------------------------------------------------------------------


def test_the_s3_table_covers_every_region_the_settings_accept():
    assert set(known_regions()) <= set(s3_ranges.s3_ranges().regions)


def test_the_s3_table_is_dated_sourced_and_as_the_generator_writes_it():
    table = s3_ranges.s3_ranges()
    assert table.source.url == s3_ranges.IP_RANGES_URL
    assert table.source.date >= "2026-08-22" and table.source.sync_token.isdigit()
    assert "52.216.0.0/15" in table.regions[REGION]
    text = s3_ranges.DATA_FILE.read_text(encoding="utf-8")
    contents = yaml.safe_load(text)
    assert s3_ranges.render(contents) == text, (
        "edited by hand: regenerate it with python -m components.catalog.s3_ranges"
    )


@pytest.mark.parametrize(
    ("regions", "message"),
    [
        ({"us-east-1": ["10.0.0.0/8"]}, "regions.us-east-1: 10.0.0.0/8 is not a public range"),
        ({"us-east-1": ["169.254.169.254/32"]}, "is not a public range"),
        ({"us-east-1": ["52.216.0.1/15"]}, "is not an IPv4 network"),
        ({"us-east-1": []}, "expected a non-empty list"),
    ],
)
def test_the_loader_refuses_what_would_open_the_vpc_or_is_malformed(regions, message):
    source = {"url": "u", "create_date": "2026-08-22-15-17-05", "sync_token": "1", "copy": "c", "read": "2026-12-07"}
    with pytest.raises(s3_ranges.S3RangesError, match=message):
        s3_ranges.parse({"source": source, "regions": regions})
    with pytest.raises(s3_ranges.S3RangesError, match="source"):
        s3_ranges.parse({"source": {"url": "u"}, "regions": {"us-east-1": ["52.216.0.0/15"]}})


def test_the_generator_keeps_s3_ipv4_by_region_only(tmp_path, capsys):
    document = {
        "syncToken": "1787411825",
        "createDate": "2026-08-22-15-17-05",
        "prefixes": [
            {"ip_prefix": "54.231.0.0/16", "region": "us-east-1", "service": "S3", "network_border_group": "us-east-1"},
            {"ip_prefix": "52.216.0.0/15", "region": "us-east-1", "service": "S3", "network_border_group": "us-east-1"},
            {
                "ip_prefix": "52.216.0.0/15",
                "region": "us-east-1",
                "service": "AMAZON",
                "network_border_group": "us-east-1",
            },
            {"ip_prefix": "52.4.0.0/14", "region": "us-east-1", "service": "EC2", "network_border_group": "us-east-1"},
            {"ip_prefix": "13.248.224.0/24", "region": "GLOBAL", "service": "S3", "network_border_group": "GLOBAL"},
            {"ip_prefix": "52.218.0.0/17", "region": "eu-west-1", "service": "S3", "network_border_group": "eu-west-1"},
        ],
        "ipv6_prefixes": [{"ipv6_prefix": "2600:1ff8:2c00::/40", "region": "us-east-1", "service": "S3"}],
    }
    source, output = tmp_path / "ip-ranges.json", tmp_path / "s3_ranges.yaml"
    source.write_text(json.dumps(document))
    assert s3_ranges.main([str(source), "--output", str(output)]) == 0
    assert "3 ranges in 2 regions" in capsys.readouterr().out
    table = s3_ranges.parse(yaml.safe_load(output.read_text()))
    assert dict(table.regions) == {"eu-west-1": ("52.218.0.0/17",), "us-east-1": ("52.216.0.0/15", "54.231.0.0/16")}
    assert (table.source.create_date, table.source.sync_token) == ("2026-08-22-15-17-05", "1787411825")
    source.write_text("<html>rate limited</html>")
    assert s3_ranges.main([str(source), "--output", str(output)]) == 2
    assert "not a usable ip-ranges.json" in capsys.readouterr().err
