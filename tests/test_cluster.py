"""The Cluster: its settings' refusals, and what every shipped stack's plan must prove about it."""

from __future__ import annotations

import json

import pytest

from components.aws.addons import ADDON_VERSIONS
from components.errors import InputError
from components.plan.engine import dump_json
from components.plan.run import plan_stack
from components.settings.model import EndpointAccess
from tests.conftest import SHIPPED_STACKS, by_type, plan_with


def problems(exc: pytest.ExceptionInfo[InputError]) -> dict[str, str]:
    return {p.path: p.message for p in exc.value.problems}


# --- settings -------------------------------------------------------------------------------------


def test_presets_limit_or_close_the_public_endpoint(make_settings):
    for preset in ("minimal", "moderate"):
        cluster = make_settings(preset).cluster
        assert cluster.endpoint is EndpointAccess.PUBLIC_AND_PRIVATE
        assert cluster.public_cidrs and "0.0.0.0/0" not in cluster.public_cidrs
        assert not cluster.allow_public_world
    enterprise = make_settings("enterprise").cluster
    assert enterprise.endpoint is EndpointAccess.PRIVATE and not enterprise.public_cidrs


def test_public_endpoint_without_cidrs_is_refused(make_settings):
    with pytest.raises(InputError) as exc:
        make_settings("minimal", cluster={"public_cidrs": []})
    assert "needs the CIDRs" in problems(exc)["modelyard:cluster.public_cidrs"]


def test_whole_internet_is_refused_without_the_override(make_settings):
    with pytest.raises(InputError) as exc:
        make_settings("minimal", cluster={"public_cidrs": ["0.0.0.0/0"]})
    assert "allow_public_world" in problems(exc)["modelyard:cluster.public_cidrs[0]"]


def test_whole_internet_is_allowed_only_when_deliberately_overridden(make_settings):
    settings = make_settings("minimal", cluster={"public_cidrs": ["0.0.0.0/0"], "allow_public_world": True})
    assert settings.cluster.public_cidrs == ("0.0.0.0/0",)


def test_private_endpoint_takes_no_cidrs_nor_override(make_settings):
    with pytest.raises(InputError) as exc:
        make_settings("enterprise", cluster={"public_cidrs": ["198.51.100.0/24"], "allow_public_world": True})
    found = problems(exc)
    assert "modelyard:cluster.public_cidrs" in found and "modelyard:cluster.allow_public_world" in found


@pytest.mark.parametrize(
    ("cidr", "expected"),
    [("10.0.0.0/8", "private range"), ("198.51.100.1/24", "not a network address"), ("banana", "does not match")],
)
def test_bad_public_cidrs_are_named(make_settings, cidr, expected):
    with pytest.raises(InputError) as exc:
        make_settings("minimal", cluster={"public_cidrs": [cidr]})
    assert expected in problems(exc)["modelyard:cluster.public_cidrs[0]"]


def test_unpinned_version_is_refused(make_settings):
    with pytest.raises(InputError) as exc:
        make_settings("minimal", cluster={"version": "1.29"})
    assert "choose one of 1.33" in problems(exc)["modelyard:cluster.version"]


def test_admins_must_be_iam_arns(make_settings):
    ok = make_settings("minimal", cluster={"admins": ["arn:aws:iam::123456789012:role/platform-admin"]})
    assert ok.cluster.admins == ("arn:aws:iam::123456789012:role/platform-admin",)
    with pytest.raises(InputError) as exc:
        make_settings("minimal", cluster={"admins": ["platform-admin"]})
    assert "IAM role or user ARN" in problems(exc)["modelyard:cluster.admins[0]"]


@pytest.mark.parametrize(
    ("system_nodes", "path", "expected"),
    [
        ({"instance_type": "g6e.xlarge"}, "instance_type", "GPU type"),
        ({"instance_type": "m7i.larg"}, "instance_type", "did you mean 'm7i.large'"),
        ({"min_nodes": 3, "max_nodes": 2, "desired_nodes": 2}, "max_nodes", "below min_nodes"),
        ({"min_nodes": 2, "max_nodes": 3, "desired_nodes": 5}, "desired_nodes", "outside 2..3"),
    ],
)
def test_bad_system_nodes_are_refused(make_settings, system_nodes, path, expected):
    with pytest.raises(InputError) as exc:
        make_settings("minimal", cluster={"system_nodes": system_nodes})
    assert expected in problems(exc)[f"modelyard:cluster.system_nodes.{path}"]


# --- the plan of every shipped stack ----------------------------------------------------------------

CLUSTER = "aws:eks/cluster:Cluster"


def _one(plan, type_token):
    (resource,) = by_type(plan, type_token)
    return resource


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_secrets_are_encrypted_with_a_rotating_kms_key(plans, stack):
    plan = plans[stack]
    cluster = _one(plan, CLUSTER)
    (key,) = [k for k in by_type(plan, "aws:kms/key:Key") if k["name"] == "cluster-secrets"]
    assert key["inputs"]["enableKeyRotation"] is True
    encryption = cluster["inputs"]["encryptionConfig"]
    assert encryption["resources"] == ["secrets"]
    assert encryption["provider"]["keyArn"].startswith("arn:aws:kms:us-east-1:123456789012:key/")
    assert key["key"] in cluster["depends_on"]


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_audit_logs_go_to_a_log_group_with_retention_created_first(plans, stack):
    plan = plans[stack]
    cluster = _one(plan, CLUSTER)
    assert {"api", "audit", "authenticator"} <= set(cluster["inputs"]["enabledClusterLogTypes"])
    (group,) = [
        g for g in by_type(plan, "aws:cloudwatch/logGroup:LogGroup") if g["inputs"]["name"].endswith("/cluster")
    ]
    assert group["inputs"]["name"] == f"/aws/eks/modelyard-{stack}/cluster"
    assert group["inputs"]["retentionInDays"] >= 30
    assert group["key"] in cluster["depends_on"]


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_public_endpoint_is_off_or_limited(plans, stack):
    vpc_config = _one(plans[stack], CLUSTER)["inputs"]["vpcConfig"]
    assert vpc_config["endpointPrivateAccess"] is True
    if vpc_config["endpointPublicAccess"]:
        cidrs = vpc_config["publicAccessCidrs"]
        assert cidrs and "0.0.0.0/0" not in cidrs
    else:
        assert not vpc_config.get("publicAccessCidrs")


def test_enterprise_cluster_is_private_only(plans):
    assert _one(plans["core"], CLUSTER)["inputs"]["vpcConfig"]["endpointPublicAccess"] is False


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_access_is_through_access_entries_with_creator_admin(plans, stack):
    access = _one(plans[stack], CLUSTER)["inputs"]["accessConfig"]
    assert access == {"authenticationMode": "API", "bootstrapClusterCreatorAdminPermissions": True}


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_cluster_runs_in_the_private_subnets(plans, stack):
    plan = plans[stack]
    private = {s["key"] for s in by_type(plan, "aws:ec2/subnet:Subnet") if "-private-" in s["name"]}
    cluster = _one(plan, CLUSTER)
    assert private <= set(cluster["depends_on"])
    assert all(s.startswith("subnet-") for s in cluster["inputs"]["vpcConfig"]["subnetIds"])


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_cni_enforces_network_policy(plans, stack):
    addons = {a["inputs"]["addonName"]: a for a in by_type(plans[stack], "aws:eks/addon:Addon")}
    cni = addons["vpc-cni"]
    assert json.loads(cni["inputs"]["configurationValues"])["enableNetworkPolicy"] == "true"


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_addons_are_pinned_and_coredns_waits_for_the_system_nodes(plans, stack):
    plan = plans[stack]
    addons = {a["inputs"]["addonName"]: a for a in by_type(plan, "aws:eks/addon:Addon")}
    assert set(addons) == {"vpc-cni", "kube-proxy", "coredns", "eks-pod-identity-agent", "aws-ebs-csi-driver"}
    for name, addon in addons.items():
        assert addon["inputs"]["addonVersion"] == ADDON_VERSIONS["1.33"][name]
    nodes = _one(plan, "aws:eks/nodeGroup:NodeGroup")
    assert nodes["key"] in addons["coredns"]["depends_on"]
    (association,) = addons["aws-ebs-csi-driver"]["inputs"]["podIdentityAssociations"]
    assert association["serviceAccount"] == "ebs-csi-controller-sa"


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_system_nodes_are_on_demand_and_keep_their_scaled_size(plans, stack):
    nodes = _one(plans[stack], "aws:eks/nodeGroup:NodeGroup")
    assert nodes["inputs"]["capacityType"] == "ON_DEMAND"
    assert nodes["options"]["ignore_changes"] == ["scalingConfig.desiredSize"]
    assert nodes["inputs"]["amiType"].startswith("AL2023_")


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_default_storage_class_is_encrypted_gp3(plans, stack):
    classes = [m["object"] for m in plans[stack]["manifests"] if m["object"]["kind"] == "StorageClass"]
    defaults = [
        c for c in classes if c["metadata"].get("annotations", {}).get("storageclass.kubernetes.io/is-default-class")
    ]
    (default,) = defaults
    assert default["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
    assert default["provisioner"] == "ebs.csi.aws.com"
    assert default["parameters"] == {"type": "gp3", "encrypted": "true"}
    assert default["volumeBindingMode"] == "WaitForFirstConsumer"


@pytest.mark.parametrize("mode", ["plans", "preview_plans"])
def test_no_kubernetes_resource_on_a_default_provider(request, mode):
    for plan in request.getfixturevalue(mode).values():
        (provider,) = by_type(plan, "pulumi:providers:kubernetes")
        kube = [r for r in plan["resources"] if r["custom"] and r["type"].startswith("kubernetes:")]
        assert kube
        for resource in kube:
            assert resource["provider"] == provider["key"], resource["key"]


def test_kubeconfig_gets_a_token_from_aws_and_holds_no_credential(plans):
    (provider,) = by_type(plans["pilot"], "pulumi:providers:kubernetes")
    config = json.loads(provider["inputs"]["kubeconfig"])
    (user,) = config["users"]
    assert user["user"]["exec"]["command"] == "aws"
    assert user["user"]["exec"]["args"][:4] == ["eks", "get-token", "--cluster-name", "modelyard-pilot"]
    assert config["clusters"][0]["cluster"]["server"].startswith("https://")


def test_preview_keeps_cluster_outputs_unknown(preview_plans):
    (provider,) = by_type(preview_plans["pilot"], "pulumi:providers:kubernetes")
    assert provider["inputs"]["kubeconfig"] == "(known after apply)"
    assert preview_plans["pilot"]["outputs"]["cluster_endpoint"] == "(known after apply)"


def test_admins_get_access_entries_with_the_cluster_admin_policy(tmp_path, root):
    plan = _plan_with(root, tmp_path, {"admins": ["arn:aws:iam::123456789012:role/platform-admin"]})
    (entry,) = [e for e in by_type(plan, "aws:eks/accessEntry:AccessEntry") if e["inputs"]["type"] == "STANDARD"]
    (association,) = by_type(plan, "aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    assert entry["inputs"]["principalArn"] == association["inputs"]["principalArn"]
    assert association["inputs"]["policyArn"].endswith(":cluster-access-policy/AmazonEKSClusterAdminPolicy")
    assert association["inputs"]["accessScope"] == {"type": "cluster"}
    assert entry["key"] in association["depends_on"]


def test_plan_is_byte_identical_run_to_run(root):
    assert dump_json(plan_stack(root, "pilot")) == dump_json(plan_stack(root, "pilot"))


def _plan_with(root, tmp_path, cluster):
    """Plan a copy of the pilot stack with cluster settings overridden."""
    import shutil

    import yaml

    shutil.copy(root / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copytree(root / "stacks", tmp_path / "stacks")
    path = tmp_path / "stacks" / "Pulumi.pilot.yaml"
    data = yaml.safe_load(path.read_text())
    data["config"]["modelyard:cluster"] = cluster
    path.write_text(yaml.safe_dump(data))
    return plan_stack(tmp_path, "pilot")


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_karpenter_interruption_queue_is_encrypted_and_fed_by_every_event(plans, stack):
    plan = plans[stack]
    queue = _one(plan, "aws:sqs/queue:Queue")
    assert queue["inputs"]["sqsManagedSseEnabled"] is True
    patterns = [json.loads(r["inputs"]["eventPattern"]) for r in by_type(plan, "aws:cloudwatch/eventRule:EventRule")]
    assert {p["detail-type"][0] for p in patterns} == {
        "AWS Health Event",
        "EC2 Spot Instance Interruption Warning",
        "EC2 Instance Rebalance Recommendation",
        "EC2 Instance State-change Notification",
    }
    targets = by_type(plan, "aws:cloudwatch/eventTarget:EventTarget")
    assert len(targets) == 4 and all(t["inputs"]["arn"].startswith("arn:aws:sqs:us-east-1:") for t in targets)
    policy = json.loads(_one(plan, "aws:sqs/queuePolicy:QueuePolicy")["inputs"]["policy"])
    assert any(s["Effect"] == "Deny" and "aws:SecureTransport" in str(s) for s in policy["Statement"])


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_karpenter_controller_uses_pod_identity_and_nodes_can_join(plans, stack):
    plan = plans[stack]
    (association,) = [
        a
        for a in by_type(plan, "aws:eks/podIdentityAssociation:PodIdentityAssociation")
        if a["name"] == "cluster-karpenter-controller"
    ]
    assert (association["inputs"]["namespace"], association["inputs"]["serviceAccount"]) == ("kube-system", "karpenter")
    node_entries = [e for e in by_type(plan, "aws:eks/accessEntry:AccessEntry") if e["inputs"]["type"] == "EC2_LINUX"]
    assert len(node_entries) == 1


# The enterprise preset in one stack: no runner, so no state bucket, secrets key or charts bundled in its image.
ONE_STACK = {"layers": "one-stack", "state_bucket": None, "secrets_key_arn": None, "charts": None}


def test_private_cluster_without_a_runner_path_is_refused(make_settings):
    with pytest.raises(InputError) as exc:
        make_settings("enterprise", deploy=ONE_STACK)
    found = {p.path: p.message for p in exc.value.problems}
    assert "needs a path for `pulumi up` to reach its Kubernetes API" in found["modelyard:deploy.layers"]
    # Either path is enough: the runner of a split deployment (the preset), or a joined private network.
    make_settings("enterprise", deploy=ONE_STACK, cluster={"private_access_cidrs": ["10.200.0.0/16"]})


def test_private_access_must_come_from_private_ranges(make_settings):
    with pytest.raises(InputError) as exc:
        make_settings("enterprise", cluster={"private_access_cidrs": ["198.51.100.0/24"]})
    assert (
        "not a private range"
        in {p.path: p.message for p in exc.value.problems}["modelyard:cluster.private_access_cidrs[0]"]
    )


def test_private_cluster_admits_the_joined_network_on_443_only(plans, tmp_path):
    plan = plan_with(
        tmp_path, "enterprise", {"deploy": ONE_STACK, "cluster": {"private_access_cidrs": ["10.200.0.0/16"]}}
    )
    (rule,) = [
        r
        for r in by_type(plan, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if r["name"] == "cluster-api-from-0"
    ]
    assert (rule["inputs"]["cidrIpv4"], rule["inputs"]["fromPort"], rule["inputs"]["toPort"]) == (
        "10.200.0.0/16",
        443,
        443,
    )
    assert not [
        r
        for r in by_type(plans["pilot"], "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if r["name"].startswith("cluster-api-from")
    ]


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_every_launch_template_requires_imdsv2_with_one_hop(plans, stack):
    templates = by_type(plans[stack], "aws:ec2/launchTemplate:LaunchTemplate")
    assert any(t["name"] == "cluster-system" for t in templates)
    for template in templates:
        options = template["inputs"]["metadataOptions"]
        assert (options["httpTokens"], options["httpPutResponseHopLimit"]) == ("required", 1), template["key"]
    for group in by_type(plans[stack], "aws:eks/nodeGroup:NodeGroup"):
        assert "launchTemplate" in group["inputs"], f"{group['key']} would get EKS's default template (two hops)"


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_node_groups_follow_the_control_planes_version(plans, preview_plans, stack):
    """A bump of cluster.version rolls the managed node groups after the control plane, in the same `up`:
    their version is the cluster's output (EKS would leave them on the old minor)."""
    (cluster,) = by_type(plans[stack], "aws:eks/cluster:Cluster")
    groups = by_type(plans[stack], "aws:eks/nodeGroup:NodeGroup")
    assert groups
    for group in groups:
        assert group["inputs"]["version"] == cluster["inputs"]["version"], group["key"]
        assert cluster["key"] in group["depends_on"], group["key"]
    # Known in a preview too (the version is an input of the cluster): no node group shows a pending change.
    for group in by_type(preview_plans[stack], "aws:eks/nodeGroup:NodeGroup"):
        assert group["inputs"]["version"] == cluster["inputs"]["version"], group["key"]
