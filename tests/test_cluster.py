"""The Cluster: its settings' refusals, and what every shipped stack's plan must prove about it."""

from __future__ import annotations

import json

import pytest

from components.aws.addons import ADDON_VERSIONS
from components.errors import InputError
from components.k8s.cluster_services import KARPENTER_CHART, KARPENTER_CRD_CHART
from components.plan.engine import dump_json
from components.plan.run import plan_stack
from components.settings.types import EndpointAccess
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
    region = plan["outputs"]["region"]
    assert encryption["provider"]["keyArn"].startswith(f"arn:aws:kms:{region}:123456789012:key/")
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
    # The FSx CSI driver only where the stack has a file system (storage.fsx: the enterprise preset's core).
    fsx = {"aws-fsx-csi-driver"} if stack == "core" else set()
    assert set(addons) == {"vpc-cni", "kube-proxy", "coredns", "eks-pod-identity-agent", "aws-ebs-csi-driver", *fsx}
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
    rules = [r for r in by_type(plan, "aws:cloudwatch/eventRule:EventRule") if "karpenter" in r["name"]]
    patterns = [json.loads(r["inputs"]["eventPattern"]) for r in rules]
    assert {p["detail-type"][0] for p in patterns} == {
        "AWS Health Event",
        "EC2 Spot Instance Interruption Warning",
        "EC2 Instance Rebalance Recommendation",
        "EC2 Instance State-change Notification",
    }
    targets = [t for t in by_type(plan, "aws:cloudwatch/eventTarget:EventTarget") if "karpenter" in t["name"]]
    queue = f"arn:aws:sqs:{plan['outputs']['region']}:"
    assert len(targets) == 4 and all(t["inputs"]["arn"].startswith(queue) for t in targets)
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


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_karpenter_is_told_its_region_since_its_pods_cannot_ask_imds(plans, stack):
    """The system nodes allow pods no IMDS hop; Karpenter asks IMDS for its region unless AWS_REGION is set."""
    plan = plans[stack]
    (template,) = [t for t in by_type(plan, "aws:ec2/launchTemplate:LaunchTemplate") if t["name"] == "cluster-system"]
    assert template["inputs"]["metadataOptions"]["httpPutResponseHopLimit"] == 1
    (release,) = [r for r in by_type(plan, "kubernetes:helm.sh/v3:Release") if r["inputs"]["name"] == "karpenter"]
    env = release["inputs"]["values"]["controller"]["env"]
    assert {"name": "AWS_REGION", "value": plan["outputs"]["region"]} in env


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_karpenters_crds_are_a_release_of_their_own_before_the_controller(plans, stack):
    """Helm never upgrades a chart's crds/: karpenter-crd (same version) holds them, adopting the ones a cluster
    installed before already has, and keeps them if the release goes; the controller's release skips its copy."""
    releases = {r["name"]: r for r in by_type(plans[stack], "kubernetes:helm.sh/v3:Release")}
    crds, controller = releases["cluster-karpenter-crd"], releases["cluster-karpenter"]
    assert KARPENTER_CRD_CHART.crds_of == KARPENTER_CHART.name
    assert KARPENTER_CRD_CHART.version == KARPENTER_CHART.version
    assert crds["inputs"]["chart"] in (KARPENTER_CRD_CHART.reference, KARPENTER_CRD_CHART.bundle_path)
    assert (crds["inputs"]["name"], crds["inputs"]["version"]) == ("karpenter-crd", KARPENTER_CRD_CHART.version)
    assert crds["inputs"]["namespace"] == controller["inputs"]["namespace"] == "kube-system"
    assert crds["inputs"]["takeOwnership"] is True
    assert crds["inputs"]["values"] == {"additionalAnnotations": {"helm.sh/resource-policy": "keep"}}
    assert crds["provider"] == controller["provider"]
    assert controller["inputs"]["skipCrds"] is True and "skipCrds" not in crds["inputs"]
    assert crds["key"] in controller["depends_on"]


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
        if r["name"] == "cluster-api-from-10-200-0-0-16"
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


# --- Karpenter's controller policy: upstream's reference policy, scoped by Karpenter's tags ----------------

# Sid -> actions of KarpenterControllerPolicy in aws/karpenter-provider-aws v1.7.3 (website/content/en/preview/
# getting-started/getting-started-with-karpenter/cloudformation.yaml), in upstream's order.
UPSTREAM_KARPENTER_STATEMENTS = {
    "AllowScopedEC2InstanceAccessActions": ["ec2:RunInstances", "ec2:CreateFleet"],
    "AllowScopedEC2LaunchTemplateAccessActions": ["ec2:RunInstances", "ec2:CreateFleet"],
    "AllowScopedEC2InstanceActionsWithTags": ["ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"],
    "AllowScopedResourceCreationTagging": ["ec2:CreateTags"],
    "AllowScopedResourceTagging": ["ec2:CreateTags"],
    "AllowScopedDeletion": ["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
    "AllowRegionalReadActions": [
        "ec2:DescribeCapacityReservations",
        "ec2:DescribeImages",
        "ec2:DescribeInstances",
        "ec2:DescribeInstanceTypeOfferings",
        "ec2:DescribeInstanceTypes",
        "ec2:DescribeLaunchTemplates",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeSpotPriceHistory",
        "ec2:DescribeSubnets",
    ],
    "AllowSSMReadActions": ["ssm:GetParameter"],
    "AllowPricingReadActions": ["pricing:GetProducts"],
    "AllowInterruptionQueueActions": ["sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"],
    "AllowPassingInstanceRole": ["iam:PassRole"],
    "AllowScopedInstanceProfileCreationActions": ["iam:CreateInstanceProfile"],
    "AllowScopedInstanceProfileTagActions": ["iam:TagInstanceProfile"],
    "AllowScopedInstanceProfileActions": [
        "iam:AddRoleToInstanceProfile",
        "iam:RemoveRoleFromInstanceProfile",
        "iam:DeleteInstanceProfile",
    ],
    "AllowInstanceProfileReadActions": ["iam:GetInstanceProfile"],
    "AllowUnscopedInstanceProfileListAction": ["iam:ListInstanceProfiles"],
    "AllowAPIServerEndpointDiscovery": ["eks:DescribeCluster"],
}
# Resource types RunInstances and CreateFleet only reference (they cannot create them): upstream leaves these
# unconditioned, scoped to the region.
REFERENCED_ONLY = ("::image/*", "::snapshot/*", ":security-group/*", ":subnet/*", ":capacity-reservation/*")


def _actions(statement):
    action = statement["Action"]
    return [action] if isinstance(action, str) else action


def _resources(statement):
    resource = statement["Resource"]
    return [resource] if isinstance(resource, str) else resource


def _is_read(action):
    return action.split(":")[1].startswith(("Describe", "Get", "List"))


def _karpenter_policy(plan):
    (policy,) = [p for p in by_type(plan, "aws:iam/policy:Policy") if p["name"] == "cluster-karpenter-controller"]
    return json.loads(policy["inputs"]["policy"])["Statement"]


def test_karpenter_controller_policy_is_upstreams_statement_by_statement():
    from components.aws.karpenter import _karpenter_controller_policy

    statements = json.loads(
        _karpenter_controller_policy(
            cluster_name="modelyard-pilot",
            region="us-east-1",
            cluster_arn="arn:aws:eks:us-east-1:123456789012:cluster/modelyard-pilot",
            queue_arn="arn:aws:sqs:us-east-1:123456789012:modelyard-pilot-karpenter",
            node_role_arn="arn:aws:iam::123456789012:role/modelyard-pilot-karpenter-node",
        )
    )["Statement"]
    assert {s["Sid"]: _actions(s) for s in statements} == UPSTREAM_KARPENTER_STATEMENTS
    assert [s["Sid"] for s in statements] == list(UPSTREAM_KARPENTER_STATEMENTS)
    by_sid = {s["Sid"]: s for s in statements}
    # The substitutions: region, partition and account from the cluster's ARN, the cluster's name in tag keys.
    assert by_sid["AllowSSMReadActions"]["Resource"] == "arn:aws:ssm:us-east-1::parameter/aws/service/*"
    assert by_sid["AllowInstanceProfileReadActions"]["Resource"] == ("arn:aws:iam::123456789012:instance-profile/*")
    assert by_sid["AllowScopedEC2InstanceActionsWithTags"]["Condition"] == {
        "StringEquals": {
            "aws:RequestTag/kubernetes.io/cluster/modelyard-pilot": "owned",
            "aws:RequestTag/eks:eks-cluster-name": "modelyard-pilot",
        },
        "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"},
    }
    assert by_sid["AllowRegionalReadActions"]["Condition"] == {"StringEquals": {"aws:RequestedRegion": "us-east-1"}}
    assert by_sid["AllowAPIServerEndpointDiscovery"]["Resource"] == (
        "arn:aws:eks:us-east-1:123456789012:cluster/modelyard-pilot"
    )
    with pytest.raises(ValueError, match="not the ARN of EKS cluster"):
        _karpenter_controller_policy(
            cluster_name="modelyard-pilot",
            region="eu-west-1",
            cluster_arn="arn:aws:eks:us-east-1:123456789012:cluster/modelyard-pilot",
            queue_arn="q",
            node_role_arn="r",
        )


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_karpenter_controller_writes_nothing_unscoped(plans, stack):
    plan = plans[stack]
    region = plan["outputs"]["region"]
    statements = _karpenter_policy(plan)
    for statement in statements:
        assert statement["Effect"] == "Allow"
        writes = [a for a in _actions(statement) if not _is_read(a)]
        if not writes or "Condition" in statement:
            continue
        # Unconditioned writes: only the queue's messages, or what RunInstances merely references.
        if statement["Sid"] == "AllowInterruptionQueueActions":
            assert _resources(statement) == [f"arn:aws:sqs:{region}:123456789012:modelyard-{stack}-karpenter"]
            continue
        assert set(writes) <= {"ec2:RunInstances", "ec2:CreateFleet"}, statement["Sid"]
        for resource in _resources(statement):
            assert resource != "*" and resource.startswith(f"arn:aws:ec2:{region}:"), resource
            assert resource.endswith(REFERENCED_ONLY), resource
    # Nothing but reads (and pricing, which has no resources) on "*", and reads of EC2 only in the region.
    for statement in statements:
        if "*" in _resources(statement):
            assert all(_is_read(a) for a in _actions(statement)), statement["Sid"]
            if any(a.startswith("ec2:") for a in _actions(statement)):
                assert statement["Condition"] == {"StringEquals": {"aws:RequestedRegion": region}}


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_karpenter_terminates_and_deletes_only_what_it_owns_in_this_cluster(plans, stack):
    plan = plans[stack]
    cluster = f"modelyard-{stack}"
    destructive = {
        "ec2:TerminateInstances",
        "ec2:DeleteLaunchTemplate",
        "iam:DeleteInstanceProfile",
        "iam:RemoveRoleFromInstanceProfile",
        "iam:AddRoleToInstanceProfile",
    }
    found = set()
    for statement in _karpenter_policy(plan):
        hits = destructive & set(_actions(statement))
        if not hits:
            continue
        found |= hits
        condition = statement["Condition"]
        assert condition["StringEquals"][f"aws:ResourceTag/kubernetes.io/cluster/{cluster}"] == "owned"
        # ... and only what Karpenter made: a NodePool's instances and templates, an EC2NodeClass's profiles.
        assert set(condition["StringLike"]) & {
            "aws:ResourceTag/karpenter.sh/nodepool",
            "aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass",
        }, statement["Sid"]
    assert found == destructive
    # Creating and tagging: the cluster's tags must be in the request.
    for statement in _karpenter_policy(plan):
        if {"ec2:CreateLaunchTemplate", "iam:CreateInstanceProfile"} & set(_actions(statement)):
            assert statement["Condition"]["StringEquals"][f"aws:RequestTag/kubernetes.io/cluster/{cluster}"] == "owned"
            assert statement["Condition"]["StringEquals"]["aws:RequestTag/eks:eks-cluster-name"] == cluster


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_karpenter_passes_only_its_node_role_and_only_to_ec2(plans, stack):
    plan = plans[stack]
    passing = [s for s in _karpenter_policy(plan) if "iam:PassRole" in _actions(s)]
    (statement,) = passing
    assert _actions(statement) == ["iam:PassRole"]
    node_role = f"arn:aws:iam::123456789012:role/modelyard-{stack}-karpenter-node"
    assert statement["Resource"] == node_role
    assert statement["Condition"] == {
        "StringEquals": {"iam:PassedToService": ["ec2.amazonaws.com", "ec2.amazonaws.com.cn"]}
    }


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_karpenter_tags_match_the_policys_conditions(plans, stack):
    """Karpenter tags what it creates with the chart's clusterName: the policy's cluster, or no node launches.
    The EC2NodeClasses' own tags must not try to override Karpenter's (its CRD would refuse them)."""
    plan = plans[stack]
    cluster = f"modelyard-{stack}"
    (release,) = [r for r in plan["resources"] if r["type"].endswith(":Release") and r["name"] == "cluster-karpenter"]
    assert release["inputs"]["values"]["settings"]["clusterName"] == cluster
    policy = json.dumps(_karpenter_policy(plan))
    assert f"kubernetes.io/cluster/{cluster}" in policy
    assert policy.count("kubernetes.io/cluster/") == policy.count(f"kubernetes.io/cluster/{cluster}")
    restricted = ("kubernetes.io/cluster", "eks:eks-cluster-name", "karpenter.sh/", "karpenter.k8s.aws/")
    classes = [m["object"] for m in plan["manifests"] if m["object"]["kind"] == "EC2NodeClass"]
    assert classes
    for node_class in classes:
        assert "role" in node_class["spec"] and "instanceProfile" not in node_class["spec"]
        assert not [k for k in node_class["spec"]["tags"] if k.startswith(restricted)]


# --- the VPC CNI's own Pod Identity role --------------------------------------------------------------------


def _attachments(plan):
    return by_type(plan, "aws:iam/rolePolicyAttachment:RolePolicyAttachment")


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_vpc_cni_has_its_own_pod_identity_role_and_nodes_none(plans, stack):
    plan = plans[stack]
    addons = {a["inputs"]["addonName"]: a for a in by_type(plan, "aws:eks/addon:Addon")}
    cni = addons["vpc-cni"]
    # EKS installs the VPC CNI in kube-system (no namespaceConfig): the association is kube-system/aws-node.
    assert "namespaceConfig" not in cni["inputs"]
    (association,) = cni["inputs"]["podIdentityAssociations"]
    assert association["serviceAccount"] == "aws-node"
    (role,) = [r for r in by_type(plan, "aws:iam/role:Role") if r["name"] == "cluster-vpc-cni"]
    assert association["roleArn"].startswith("arn:aws:iam::123456789012:role/cluster-vpc-cni")
    trust = json.loads(role["inputs"]["assumeRolePolicy"])
    assert trust["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "pods.eks.amazonaws.com"},
            "Action": ["sts:AssumeRole", "sts:TagSession"],
        }
    ]
    (policy,) = [a for a in _attachments(plan) if a["name"] == "cluster-vpc-cni"]
    assert policy["inputs"]["policyArn"] == "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy"
    # The CNI policy is attached to that role only: no node role carries it.
    cni_attachments = [
        a for a in _attachments(plan) if a["inputs"].get("policyArn", "").endswith("/AmazonEKS_CNI_Policy")
    ]
    assert cni_attachments == [policy]
    # Order: the Pod Identity agent and the role's policy before the add-on, the add-on before the system nodes.
    assert addons["eks-pod-identity-agent"]["key"] in cni["depends_on"]
    assert policy["key"] in cni["depends_on"]
    nodes = _one(plan, "aws:eks/nodeGroup:NodeGroup")
    assert {cni["key"], addons["eks-pod-identity-agent"]["key"]} <= set(nodes["depends_on"])


def test_static_gpu_nodes_boot_after_the_cni_has_its_role(tmp_path):
    plan = plan_with(
        tmp_path,
        "minimal",
        {"pools": {"l40s": {"kind": "static", "capacity": "on-demand", "zone_ids": ["use1-az2"], "min_nodes": 1}}},
    )
    (cni,) = [a for a in by_type(plan, "aws:eks/addon:Addon") if a["inputs"]["addonName"] == "vpc-cni"]
    (group,) = [g for g in by_type(plan, "aws:eks/nodeGroup:NodeGroup") if g["name"] == "gpu-pools-l40s"]
    assert cni["key"] in group["depends_on"]
    assert group["inputs"]["nodeRoleArn"] == "arn:aws:iam::123456789012:role/modelyard-custom-karpenter-node"
