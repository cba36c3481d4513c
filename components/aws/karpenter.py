"""Karpenter's AWS side: the interruption queue and its EventBridge rules, the node role (with its access entry)
and the controller's role (scoped by the tags Karpenter puts on what it creates, as upstream's reference policy is).

Created as children of the Cluster component (their URNs are the cluster's children's); the controller itself
is a chart of the Kubernetes layer (components/k8s/cluster_services.py), bound to the controller role by a Pod
Identity association on the contract's namespace and service account.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pulumi
import pulumi_aws as aws

from components.aws.iam import MANAGED_POLICY_PREFIX, NODE_POLICIES, POD_IDENTITY_TRUST, assume_role_policy
from components.contract import KARPENTER_NAMESPACE, KARPENTER_SERVICE_ACCOUNT

# EventBridge events Karpenter drains nodes on (Karpenter docs, "Interruption"): detail-type by source.
INTERRUPTION_EVENTS = {
    "scheduled-change": ("aws.health", "AWS Health Event"),
    "spot-interruption": ("aws.ec2", "EC2 Spot Instance Interruption Warning"),
    "rebalance": ("aws.ec2", "EC2 Instance Rebalance Recommendation"),
    "instance-state-change": ("aws.ec2", "EC2 Instance State-change Notification"),
}


def karpenter_aws_side(
    name: str,
    cluster: aws.eks.Cluster,
    *,
    cluster_name: str,
    region: str,
    named: Callable[[str], dict[str, str]],
    opts: pulumi.ResourceOptions,
) -> tuple[aws.iam.Role, aws.sqs.Queue]:
    """Karpenter's AWS side, named `<name>-karpenter-...` under `opts`' parent. Returns the node role (Karpenter's
    EC2NodeClasses name it) and the interruption queue (the controller's chart is told its name)."""
    child = opts
    queue = aws.sqs.Queue(
        f"{name}-karpenter-interruption",
        name=f"{cluster_name}-karpenter",
        message_retention_seconds=300,  # an interruption notice older than 5 minutes is moot
        sqs_managed_sse_enabled=True,
        tags=named("karpenter-interruption"),
        opts=child,
    )
    aws.sqs.QueuePolicy(
        f"{name}-karpenter-interruption",
        queue_url=queue.url,
        policy=queue.arn.apply(
            lambda arn: json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "EventBridgeAndHealth",
                            "Effect": "Allow",
                            "Principal": {"Service": ["events.amazonaws.com", "sqs.amazonaws.com"]},
                            "Action": "sqs:SendMessage",
                            "Resource": arn,
                        },
                        {
                            "Sid": "DenyHTTP",
                            "Effect": "Deny",
                            "Principal": "*",
                            "Action": "sqs:*",
                            "Resource": arn,
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                        },
                    ],
                },
                sort_keys=True,
            )
        ),
        opts=child,
    )
    for event, (source, detail_type) in INTERRUPTION_EVENTS.items():
        rule = aws.cloudwatch.EventRule(
            f"{name}-karpenter-{event}",
            name=f"{cluster_name}-karpenter-{event}",
            event_pattern=json.dumps({"source": [source], "detail-type": [detail_type]}, sort_keys=True),
            tags=named(f"karpenter-{event}"),
            opts=child,
        )
        aws.cloudwatch.EventTarget(
            f"{name}-karpenter-{event}", rule=rule.name, arn=queue.arn, target_id="karpenter", opts=child
        )

    node_role = aws.iam.Role(
        f"{name}-karpenter-nodes",
        name=f"{cluster_name}-karpenter-node",
        assume_role_policy=assume_role_policy("ec2.amazonaws.com"),
        tags=named("karpenter-nodes"),
        opts=child,
    )
    # Upstream's reference template also attaches AmazonEKS_CNI_Policy here; the kit's VPC CNI has its own role.
    for policy in (*NODE_POLICIES, "AmazonSSMManagedInstanceCore"):
        aws.iam.RolePolicyAttachment(
            f"{name}-karpenter-nodes-{policy}",
            role=node_role.name,
            policy_arn=f"{MANAGED_POLICY_PREFIX}{policy}",
            opts=child,
        )
    # With authentication mode API, nodes join only through an access entry of type EC2_LINUX.
    aws.eks.AccessEntry(
        f"{name}-karpenter-nodes",
        cluster_name=cluster.name,
        principal_arn=node_role.arn,
        type="EC2_LINUX",
        tags=named("karpenter-nodes"),
        opts=child,
    )

    controller_role = aws.iam.Role(
        f"{name}-karpenter-controller",
        assume_role_policy=POD_IDENTITY_TRUST,
        tags=named("karpenter-controller"),
        opts=child,
    )
    controller_policy = aws.iam.Policy(
        f"{name}-karpenter-controller",
        description=f"Karpenter controller of EKS cluster {cluster_name}",
        policy=pulumi.Output.all(queue.arn, node_role.arn, cluster.arn).apply(
            lambda v: _karpenter_controller_policy(
                cluster_name=cluster_name,
                region=region,
                cluster_arn=v[2],
                queue_arn=v[0],
                node_role_arn=v[1],
            )
        ),
        tags=named("karpenter-controller"),
        opts=child,
    )
    aws.iam.RolePolicyAttachment(
        f"{name}-karpenter-controller", role=controller_role.name, policy_arn=controller_policy.arn, opts=child
    )
    aws.eks.PodIdentityAssociation(
        f"{name}-karpenter-controller",
        cluster_name=cluster.name,
        namespace=KARPENTER_NAMESPACE,
        service_account=KARPENTER_SERVICE_ACCOUNT,
        role_arn=controller_role.arn,
        tags=named("karpenter-controller"),
        opts=child,
    )
    return node_role, queue


def _karpenter_controller_policy(
    *, cluster_name: str, region: str, cluster_arn: str, queue_arn: str, node_role_arn: str
) -> str:
    """Karpenter's controller policy: upstream's reference policy, statement by statement, same Sids.

    Source: aws/karpenter-provider-aws, tag v1.7.3 (the chart version of components/k8s/charts.py),
    website/content/en/preview/getting-started/getting-started-with-karpenter/cloudformation.yaml, resource
    KarpenterControllerPolicy (the file the v1.7 getting-started scripts download at that tag; the same blob as
    website/content/en/v1.7/... of the docs). ${ClusterName}, ${AWS::Region}, ${AWS::Partition} and
    ${AWS::AccountId} are the cluster's name, region, partition and account (the latter two read from its ARN);
    the queue and the node role are the kit's.

    Write actions are scoped by the tags Karpenter puts on what it creates, and these match the kit's settings:
      - `kubernetes.io/cluster/<cluster>: owned` and `eks:eks-cluster-name: <cluster>` come from the chart's
        `settings.clusterName` (components/k8s/cluster_services.py), which is settings.name, the same value as
        `cluster_name` here: both layers of a split deployment name the same cluster;
      - `karpenter.sh/nodepool` (instances, volumes, network interfaces, fleets, launch templates) and
        `karpenter.k8s.aws/ec2nodeclass` (instance profiles) are set by Karpenter itself for every NodePool and
        EC2NodeClass (components/k8s/gpu_pools.py); `topology.kubernetes.io/region` is the region the
        controller runs in, this cluster's;
      - the EC2NodeClasses' own `tags` (the kit's cost tags) are added beside them; Karpenter's CRD refuses
        any that would override them (kubernetes.io/cluster/*, eks:eks-cluster-name, karpenter.sh/nodepool,
        karpenter.sh/nodeclaim, karpenter.k8s.aws/ec2nodeclass).
    Nothing of the kit's needs Karpenter to act on an untagged resource: EC2NodeClasses name a `role` (so
    Karpenter creates and tags its instance profiles) and no launch template (Karpenter v1 creates and tags its
    own); subnets, security groups, AMIs and snapshots are only read or referenced by RunInstances/CreateFleet
    (AllowScopedEC2InstanceAccessActions); the kit's launch templates and node groups (system, static GPU
    pools) carry no `karpenter.sh/nodepool` tag, so Karpenter can neither use, terminate nor delete them.
    """
    arn = cluster_arn.split(":")
    if len(arn) != 6 or arn[2] != "eks" or arn[3] != region or arn[5] != f"cluster/{cluster_name}":
        raise ValueError(f"{cluster_arn!r} is not the ARN of EKS cluster {cluster_name} in {region}")
    partition, account = arn[1], arn[4]
    ec2 = f"arn:{partition}:ec2:{region}"
    instance_profiles = f"arn:{partition}:iam::{account}:instance-profile/*"
    owned = f"kubernetes.io/cluster/{cluster_name}"
    # Resources Karpenter creates with RunInstances, CreateFleet and CreateLaunchTemplate, tagged in the request.
    created = [
        f"{ec2}:*:fleet/*",
        f"{ec2}:*:instance/*",
        f"{ec2}:*:volume/*",
        f"{ec2}:*:network-interface/*",
        f"{ec2}:*:launch-template/*",
        f"{ec2}:*:spot-instances-request/*",
    ]
    request_tags = {f"aws:RequestTag/{owned}": "owned", "aws:RequestTag/eks:eks-cluster-name": cluster_name}
    statements: list[dict[str, object]] = [
        {
            "Sid": "AllowScopedEC2InstanceAccessActions",
            "Effect": "Allow",
            "Resource": [
                f"arn:{partition}:ec2:{region}::image/*",
                f"arn:{partition}:ec2:{region}::snapshot/*",
                f"{ec2}:*:security-group/*",
                f"{ec2}:*:subnet/*",
                f"{ec2}:*:capacity-reservation/*",
            ],
            "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
        },
        {
            "Sid": "AllowScopedEC2LaunchTemplateAccessActions",
            "Effect": "Allow",
            "Resource": f"{ec2}:*:launch-template/*",
            "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
            "Condition": {
                "StringEquals": {f"aws:ResourceTag/{owned}": "owned"},
                "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"},
            },
        },
        {
            "Sid": "AllowScopedEC2InstanceActionsWithTags",
            "Effect": "Allow",
            "Resource": [*created, f"{ec2}:*:capacity-reservation/*"],
            "Action": ["ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"],
            "Condition": {
                "StringEquals": request_tags,
                "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"},
            },
        },
        {
            "Sid": "AllowScopedResourceCreationTagging",
            "Effect": "Allow",
            "Resource": created,
            "Action": "ec2:CreateTags",
            "Condition": {
                "StringEquals": {
                    **request_tags,
                    "ec2:CreateAction": ["RunInstances", "CreateFleet", "CreateLaunchTemplate"],
                },
                "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"},
            },
        },
        {
            "Sid": "AllowScopedResourceTagging",
            "Effect": "Allow",
            "Resource": f"{ec2}:*:instance/*",
            "Action": "ec2:CreateTags",
            "Condition": {
                "StringEquals": {f"aws:ResourceTag/{owned}": "owned"},
                "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"},
                "StringEqualsIfExists": {"aws:RequestTag/eks:eks-cluster-name": cluster_name},
                "ForAllValues:StringEquals": {
                    "aws:TagKeys": ["eks:eks-cluster-name", "karpenter.sh/nodeclaim", "Name"]
                },
            },
        },
        {
            "Sid": "AllowScopedDeletion",
            "Effect": "Allow",
            "Resource": [f"{ec2}:*:instance/*", f"{ec2}:*:launch-template/*"],
            "Action": ["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
            "Condition": {
                "StringEquals": {f"aws:ResourceTag/{owned}": "owned"},
                "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"},
            },
        },
        {
            "Sid": "AllowRegionalReadActions",
            "Effect": "Allow",
            "Resource": "*",
            "Action": [
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
            "Condition": {"StringEquals": {"aws:RequestedRegion": region}},
        },
        {
            "Sid": "AllowSSMReadActions",
            "Effect": "Allow",
            "Resource": f"arn:{partition}:ssm:{region}::parameter/aws/service/*",
            "Action": "ssm:GetParameter",
        },
        {"Sid": "AllowPricingReadActions", "Effect": "Allow", "Resource": "*", "Action": "pricing:GetProducts"},
        {
            "Sid": "AllowInterruptionQueueActions",
            "Effect": "Allow",
            "Resource": queue_arn,
            "Action": ["sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"],
        },
        {
            "Sid": "AllowPassingInstanceRole",
            "Effect": "Allow",
            "Resource": node_role_arn,
            "Action": "iam:PassRole",
            # Upstream lists both EC2 principals (the .cn one is China's partition's).
            "Condition": {"StringEquals": {"iam:PassedToService": ["ec2.amazonaws.com", "ec2.amazonaws.com.cn"]}},
        },
        {
            "Sid": "AllowScopedInstanceProfileCreationActions",
            "Effect": "Allow",
            "Resource": instance_profiles,
            "Action": ["iam:CreateInstanceProfile"],
            "Condition": {
                "StringEquals": {**request_tags, "aws:RequestTag/topology.kubernetes.io/region": region},
                "StringLike": {"aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*"},
            },
        },
        {
            "Sid": "AllowScopedInstanceProfileTagActions",
            "Effect": "Allow",
            "Resource": instance_profiles,
            "Action": ["iam:TagInstanceProfile"],
            "Condition": {
                "StringEquals": {
                    f"aws:ResourceTag/{owned}": "owned",
                    "aws:ResourceTag/topology.kubernetes.io/region": region,
                    **request_tags,
                    "aws:RequestTag/topology.kubernetes.io/region": region,
                },
                "StringLike": {
                    "aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*",
                    "aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*",
                },
            },
        },
        {
            "Sid": "AllowScopedInstanceProfileActions",
            "Effect": "Allow",
            "Resource": instance_profiles,
            "Action": [
                "iam:AddRoleToInstanceProfile",
                "iam:RemoveRoleFromInstanceProfile",
                "iam:DeleteInstanceProfile",
            ],
            "Condition": {
                "StringEquals": {
                    f"aws:ResourceTag/{owned}": "owned",
                    "aws:ResourceTag/topology.kubernetes.io/region": region,
                },
                "StringLike": {"aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*"},
            },
        },
        {
            "Sid": "AllowInstanceProfileReadActions",
            "Effect": "Allow",
            "Resource": instance_profiles,
            "Action": "iam:GetInstanceProfile",
        },
        {
            "Sid": "AllowUnscopedInstanceProfileListAction",
            "Effect": "Allow",
            "Resource": "*",
            "Action": "iam:ListInstanceProfiles",
        },
        {
            "Sid": "AllowAPIServerEndpointDiscovery",
            "Effect": "Allow",
            "Resource": cluster_arn,
            "Action": "eks:DescribeCluster",
        },
    ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)
