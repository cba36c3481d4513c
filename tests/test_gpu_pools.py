"""GPU pools over every shipped stack's plan, and a static pool with a capacity reservation."""

from __future__ import annotations

import pytest

from components.contract import GPU_LABEL, POOL_LABEL
from components.k8s.gpu_pools import AMI_ALIAS, TENANT_LABEL
from tests.conftest import SHIPPED_STACKS, by_type, plan_with

CR = "kubernetes:karpenter.sh/v1:NodePool"
NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"


def _objects(plan, kind):
    return [m["object"] for m in plan["manifests"] if m["object"]["kind"] == kind]


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_one_node_pool_per_elastic_pool_tainted_labelled_and_limited(plans, stack):
    from components.plan.run import load_settings
    from tests.conftest import ROOT

    _, settings = load_settings(ROOT, stack)
    pools = {p["metadata"]["name"]: p for p in _objects(plans[stack], "NodePool")}
    assert set(pools) == {f"gpu-{name}" for name in settings.pools}
    for name, pool in settings.pools.items():
        spec = pools[f"gpu-{name}"]["spec"]
        template = spec["template"]
        assert {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"} in template["spec"]["taints"]
        labels = template["metadata"]["labels"]
        assert labels["nvidia.com/gpu.present"] == "true" and labels[POOL_LABEL] == name and labels[GPU_LABEL]
        assert spec["limits"] == {"nvidia.com/gpu": str(pool.max_gpus)}
        requirements = {r["key"]: r["values"] for r in template["spec"]["requirements"]}
        assert requirements["node.kubernetes.io/instance-type"] == sorted(pool.instance_types)
        assert requirements["karpenter.sh/capacity-type"] == [pool.capacity.value]
        if pool.zone_ids:
            assert requirements["topology.k8s.aws/zone-id"] == sorted(pool.zone_ids)


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_voluntary_disruption_moves_one_gpu_node_at_a_time_and_never_a_busy_one_to_consolidate(plans, stack):
    """The choice docs/gpu-pools.md ("Disruption") explains: consolidation only of empty nodes; drift (and emptiness)
    one node at a time, at any hour; expiry monthly (forceful in Karpenter 1.x: budgets do not govern it); no node
    terminationGracePeriod, so a single-replica server's do-not-disrupt holds its node until the operator moves it."""
    for pool in _objects(plans[stack], "NodePool"):
        spec = pool["spec"]
        assert spec["disruption"] == {
            "consolidationPolicy": "WhenEmpty",
            "consolidateAfter": "10m",
            "budgets": [{"nodes": "1"}],
        }
        assert spec["template"]["spec"]["expireAfter"] == "720h"
        assert "terminationGracePeriod" not in spec["template"]["spec"]


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_node_classes_imdsv2_one_hop_encrypted_raid0_pinned_ami_cost_tags(plans, stack):
    classes = _objects(plans[stack], "EC2NodeClass")
    assert classes
    for node_class in classes:
        spec = node_class["spec"]
        assert spec["metadataOptions"]["httpTokens"] == "required"
        assert spec["metadataOptions"]["httpPutResponseHopLimit"] == 1
        assert all(d["ebs"]["encrypted"] is True for d in spec["blockDeviceMappings"])
        assert spec["instanceStorePolicy"] == "RAID0"
        assert spec["amiSelectorTerms"] == [{"alias": AMI_ALIAS}]
        assert spec["tags"]["modelyard:stack"] == stack and spec["tags"]["modelyard:cost-center"]


def test_dedicated_pool_carries_its_tenants_taint_and_label(plans):
    pools = {p["metadata"]["name"]: p for p in _objects(plans["core"], "NodePool")}
    template = pools["gpu-analytics"]["spec"]["template"]
    assert {"key": TENANT_LABEL, "value": "analytics", "effect": "NoSchedule"} in template["spec"]["taints"]
    assert template["metadata"]["labels"][TENANT_LABEL] == "analytics"
    assert TENANT_LABEL not in pools["gpu-h200"]["spec"]["template"]["metadata"]["labels"]


def test_efa_pool_gets_a_self_only_security_group_and_the_efa_plugin(plans):
    plan = plans["core"]
    (sg,) = [s for s in by_type(plan, "aws:ec2/securityGroup:SecurityGroup") if s["name"] == "gpu-pools-efa"]
    rules = by_type(plan, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule") + by_type(
        plan, "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
    )
    efa_rules = [r for r in rules if r["name"].startswith("gpu-pools-efa")]
    assert len(efa_rules) == 2
    assert all(sg["key"] in r["depends_on"] and "cidrIpv4" not in r["inputs"] for r in efa_rules)
    releases = {r["inputs"]["name"] for r in by_type(plan, "kubernetes:helm.sh/v3:Release")}
    assert "aws-efa-k8s-device-plugin" in releases
    assert "aws-efa-k8s-device-plugin" not in {
        r["inputs"]["name"] for r in by_type(plans["pilot"], "kubernetes:helm.sh/v3:Release")
    }


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_device_plugin_pinned_and_only_on_gpu_nodes(plans, stack):
    (release,) = [
        r
        for r in by_type(plans[stack], "kubernetes:helm.sh/v3:Release")
        if r["inputs"]["name"] == "nvidia-device-plugin"
    ]
    assert release["inputs"]["version"] == "0.18.0"
    values = release["inputs"]["values"]
    assert values["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in values["tolerations"]


def test_static_reserved_pool_is_a_managed_node_group_in_its_zone(tmp_path):
    plan = plan_with(
        tmp_path,
        "minimal",
        {
            "pools": {
                "l40s": {
                    "kind": "static",
                    "capacity": "reservation",
                    "reservation_id": "cr-0123456789abcdef0",
                    "zone_ids": ["use1-az2"],
                    "min_nodes": 1,
                }
            }
        },
    )
    (group,) = [g for g in by_type(plan, "aws:eks/nodeGroup:NodeGroup") if g["name"] == "gpu-pools-l40s"]
    assert group["options"]["ignore_changes"] == ["scalingConfig.desiredSize"]
    assert group["inputs"]["amiType"] == "AL2023_x86_64_NVIDIA"
    assert group["inputs"]["scalingConfig"] == {"minSize": 1, "maxSize": 2, "desiredSize": 1}
    taints = group["inputs"]["taints"]
    assert {"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"} in taints
    assert group["inputs"]["labels"]["nvidia.com/gpu.present"] == "true"
    assert len(group["inputs"]["subnetIds"]) == 1
    subnets = {s["name"]: s["key"] for s in by_type(plan, "aws:ec2/subnet:Subnet")}
    assert subnets["network-private-use1-az2"] in group["depends_on"], "the subnet of the reservation's zone"
    assert subnets["network-private-use1-az1"] not in group["depends_on"]
    (template,) = [t for t in by_type(plan, "aws:ec2/launchTemplate:LaunchTemplate") if t["name"] == "gpu-pools-l40s"]
    inputs = template["inputs"]
    assert inputs["metadataOptions"]["httpTokens"] == "required"
    assert inputs["metadataOptions"]["httpPutResponseHopLimit"] == 1
    target = inputs["capacityReservationSpecification"]["capacityReservationTarget"]
    assert target["capacityReservationId"] == "cr-0123456789abcdef0"
    kinds = {spec["resourceType"] for spec in inputs["tagSpecifications"]}
    assert {"instance", "volume"} <= kinds
    assert all(spec["tags"]["modelyard:cost-center"] for spec in inputs["tagSpecifications"])
    assert not _objects(plan, "NodePool"), "a static pool is not also a Karpenter pool"
