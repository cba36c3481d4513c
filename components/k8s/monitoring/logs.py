"""ContainerLogs: every container's logs to CloudWatch Logs through Fluent Bit, kept as long as the preset says.

AWS for Fluent Bit (the aws/eks-charts chart, pinned) runs on every node, GPU and dedicated-tenant nodes
included, and writes to one log group the component creates with its retention (Fluent Bit never creates
groups: an auto-created group would keep logs forever). Its service account gets write access to that
group only, through EKS Pod Identity (the cluster runs the Pod Identity agent add-on).

Two components, one per layer: ContainerLogGroup (AWS: the group, the role, the association) and
ContainerLogs (Kubernetes: the chart).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.aws.iam import POD_IDENTITY_TRUST
from components.k8s.charts import UPSTREAM_CHARTS, ChartSource, chart_source
from components.k8s.monitoring.values import MONITORING_NAMESPACE
from components.options import children_moved_from
from components.settings.model import Preset

# aws/eks-charts' aws-for-fluent-bit (pinned, with where the pin was read, in components/k8s/charts.py).
FLUENT_BIT = UPSTREAM_CHARTS["aws-for-fluent-bit"]
FLUENT_BIT_CHART = FLUENT_BIT.name
FLUENT_BIT_VERSION = FLUENT_BIT.version
FLUENT_BIT_REPO = FLUENT_BIT.repository
FLUENT_BIT_RELEASE = "aws-for-fluent-bit"
FLUENT_BIT_SERVICE_ACCOUNT = "aws-for-fluent-bit"

# Days CloudWatch keeps container logs, by preset; None: no log shipping (a pilot reads `kubectl logs`, and
# CloudWatch ingestion costs $0.50/GB). Values CloudWatch accepts (components.settings.model.LOG_RETENTION_DAYS).
# The presets have no logs setting yet: this table stands in for it.
LOG_RETENTION_BY_PRESET: MappingProxyType[Preset, int | None] = MappingProxyType(
    {Preset.MINIMAL: None, Preset.MODERATE: 30, Preset.ENTERPRISE: 365}
)


def log_group_name(cluster_name: str) -> str:
    return f"/aws/eks/{cluster_name}/containers"


def fluent_bit_values(*, region: str, group_name: str, image_registry: str | None = None) -> dict[str, Any]:
    """Helm values for aws-for-fluent-bit: CloudWatch Logs only, on every node, into an existing group."""
    values: dict[str, Any] = {
        "fullnameOverride": FLUENT_BIT_RELEASE,
        "serviceAccount": {"create": True, "name": FLUENT_BIT_SERVICE_ACCOUNT},
        "cloudWatchLogs": {
            "enabled": True,
            "region": region,
            "logGroupName": group_name,
            # One stream per pod and container, named so an engineer can find it.
            "logStreamPrefix": "",
            "logStreamTemplate": "$kubernetes['namespace_name'].$kubernetes['pod_name'].$kubernetes['container_name']",
            "autoCreateGroup": False,
        },
        "cloudWatch": {"enabled": False},
        "firehose": {"enabled": False},
        "kinesis": {"enabled": False},
        "elasticsearch": {"enabled": False},
        # Every node: GPU nodes (nvidia.com/gpu) and dedicated tenant pools carry NoSchedule taints.
        "tolerations": [{"operator": "Exists", "effect": "NoSchedule"}],
        "priorityClassName": "system-node-critical",
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "250Mi"}},
    }
    if image_registry:
        # Stacks without NAT: ECR Public through the pull-through cache (components.aws.image_cache).
        values["image"] = {"repository": f"{image_registry}/aws-observability/aws-for-fluent-bit"}
    return values


def write_policy(group_arn: str) -> str:
    """Write to the one log group: create streams and put events, nothing else."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                    "Resource": [group_arn, f"{group_arn}:log-stream:*"],
                }
            ],
        }
    )


@dataclass(frozen=True, kw_only=True)
class ContainerLogGroupArgs:
    cluster_name: pulumi.Input[str]
    """The EKS cluster (its name also names the log group)."""
    retention_days: int
    """Days CloudWatch keeps the logs (LOG_RETENTION_BY_PRESET gives the kit's default per preset)."""
    namespace: str = MONITORING_NAMESPACE
    """Where Fluent Bit runs: its service account there gets the write role."""
    kms_key_arn: pulumi.Input[str] | None = None
    """A KMS key to encrypt the logs (its policy must admit logs.<region>.amazonaws.com); default: none,
    CloudWatch's own encryption."""
    tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """Tags on the log group and the role."""


class ContainerLogGroup(pulumi.ComponentResource):
    """The AWS side: a CloudWatch log group with retention and a Pod Identity role that may write only there."""

    log_group_name: pulumi.Output[str]

    def __init__(self, name: str, *, args: ContainerLogGroupArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(
            "modelyard:aws:ContainerLogGroup",
            name,
            None,
            pulumi.ResourceOptions.merge(
                opts, children_moved_from("modelyard:aws:ContainerLogGroup", "modelyard:k8s:ContainerLogs", "logs")
            ),
        )
        # These were children of ContainerLogs (named "logs", as this one is in the platform) until the
        # layers split: aliases keep their identity in stacks deployed before.
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)
        group = aws.cloudwatch.LogGroup(
            f"{name}-group",
            name=pulumi.Output.from_input(args.cluster_name).apply(log_group_name),
            retention_in_days=args.retention_days,
            kms_key_id=args.kms_key_arn,
            tags=tags,
            opts=child,
        )
        role = aws.iam.Role(f"{name}-fluent-bit", assume_role_policy=POD_IDENTITY_TRUST, tags=tags, opts=child)
        aws.iam.RolePolicy(f"{name}-fluent-bit-write", role=role.id, policy=group.arn.apply(write_policy), opts=child)
        aws.eks.PodIdentityAssociation(
            f"{name}-fluent-bit",
            cluster_name=args.cluster_name,
            namespace=args.namespace,
            service_account=FLUENT_BIT_SERVICE_ACCOUNT,
            role_arn=role.arn,
            tags=tags,
            opts=child,
        )
        self.log_group_name = group.name
        self.register_outputs({"log_group_name": self.log_group_name})


@dataclass(frozen=True, kw_only=True)
class ContainerLogsArgs:
    region: str
    """The region of the cluster and of the log group."""
    log_group_name: pulumi.Input[str]
    """The group ContainerLogGroup created (Fluent Bit never creates one)."""
    namespace: pulumi.Input[str] = MONITORING_NAMESPACE
    """Where Fluent Bit runs; pass Monitoring.namespace so the namespace exists first."""
    image_registry: pulumi.Input[str] | None = None
    """The registry serving ECR Public's images, for stacks without NAT; default: public.ecr.aws."""
    charts: ChartSource = ChartSource.UPSTREAM
    """Where the chart comes from (deploy.charts)."""


class ContainerLogs(pulumi.ComponentResource):
    """The Kubernetes side: AWS for Fluent Bit shipping every container's logs into the group.

    Its credentials come from ContainerLogGroup's Pod Identity association, which must exist before the first
    pod starts (or it logs errors until restarted): in one stack, depend on that component.
    """

    def __init__(self, name: str, *, args: ContainerLogsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("modelyard:k8s:ContainerLogs", name, None, opts)
        values = pulumi.Output.all(args.log_group_name, args.image_registry or "").apply(
            lambda v: fluent_bit_values(region=args.region, group_name=v[0], image_registry=v[1] or None)
        )
        chart, repository = chart_source(args.charts, FLUENT_BIT)
        k8s.helm.v3.Release(
            f"{name}-{FLUENT_BIT_RELEASE}",
            name=FLUENT_BIT_RELEASE,
            chart=chart,
            version=FLUENT_BIT.version,
            repository_opts=repository,
            namespace=args.namespace,
            values=values,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({})
