"""ContainerLogs: every container's logs to CloudWatch Logs through Fluent Bit, kept as long as
monitoring.container_log_retention_days says (no shipping when it is null).

AWS for Fluent Bit (the aws/eks-charts chart, pinned) runs on every node, GPU and dedicated-tenant nodes
included, and writes to one log group the component creates with its retention (Fluent Bit never creates
groups: an auto-created group would keep logs forever). Its service account gets write access to that
group only, through EKS Pod Identity (the cluster runs the Pod Identity agent add-on).

Two components, one per layer: ContainerLogGroup (AWS: the group, the role, the association;
components/aws/container_logs.py) and ContainerLogs (Kubernetes: the chart, here).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.contract import FLUENT_BIT_SERVICE_ACCOUNT, MONITORING_NAMESPACE, ChartSource
from components.k8s.charts import UPSTREAM_CHARTS, chart_source

# aws/eks-charts' aws-for-fluent-bit (pinned, with where the pin was read, in components/k8s/charts.py).
FLUENT_BIT = UPSTREAM_CHARTS["aws-for-fluent-bit"]
FLUENT_BIT_CHART = FLUENT_BIT.name
FLUENT_BIT_VERSION = FLUENT_BIT.version
FLUENT_BIT_REPO = FLUENT_BIT.repository
FLUENT_BIT_RELEASE = "aws-for-fluent-bit"


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
