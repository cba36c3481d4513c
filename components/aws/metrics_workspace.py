"""MetricsWorkspace: the cross-region view of a deployment's metrics (docs/regions.md, "Observability across regions").

One Amazon Managed Service for Prometheus workspace, created by the global stack in the region every cell names
(monitoring.remote_write.region), encrypted with a customer managed key of that region; per cell two roles that EKS
Pod Identity gives the cell's pods: its Prometheus's, allowed `aps:RemoteWrite` to this workspace and nothing else, and
its workspace query proxy's (the SigV4 signing proxy its Grafana queries through), allowed to query it and nothing
else. The cells' Kubernetes layers read `metrics_remote_write_url` and `metrics_query_url` from the global stack and
write and read there with SigV4.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws.iam import POD_IDENTITY_TRUST
from components.contract import aps_workspaces_host

# What a writer may do: RemoteWrite only (AWS's own AmazonPrometheusRemoteWriteAccess, scoped to one workspace).
REMOTE_WRITE_ACTIONS = ("aps:RemoteWrite",)
# What a reader may do: the actions of AWS's AmazonPrometheusQueryAccess (policy version v1: "aps:GetLabels",
# "aps:GetMetricMetadata", "aps:GetSeries", "aps:QueryMetrics" on "*"), scoped to one workspace.
QUERY_ACTIONS = ("aps:GetLabels", "aps:GetMetricMetadata", "aps:GetSeries", "aps:QueryMetrics")


def remote_write_url(region: str, workspace_id: str) -> str:
    """The workspace's remote-write endpoint (Amazon Managed Service for Prometheus user guide, "Ingest metrics")."""
    return f"https://{aps_workspaces_host(region)}/workspaces/{workspace_id}/api/v1/remote_write"


def query_url(region: str, workspace_id: str) -> str:
    """The workspace's Prometheus-compatible query endpoint, without `/api/v1/...` (a Grafana data source's URL; the
    Amazon Managed Service for Prometheus user guide, "Set up Grafana open source ... for use with Amazon Managed
    Service for Prometheus")."""
    return f"https://{aps_workspaces_host(region)}/workspaces/{workspace_id}"


def workspace_policy(sid: str, actions: tuple[str, ...], workspace_arn: str, *, any_principal: bool = False) -> str:
    """One statement allowing `actions` on the workspace alone: a role's policy, or (`any_principal`) an endpoint's."""
    statement: dict[str, object] = {"Sid": sid, "Effect": "Allow"}
    if any_principal:
        statement["Principal"] = "*"
    statement.update({"Action": list(actions), "Resource": workspace_arn})
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def remote_write_policy(workspace_arn: str) -> str:
    return workspace_policy("RemoteWriteToTheDeploymentsWorkspace", REMOTE_WRITE_ACTIONS, workspace_arn)


def query_policy(workspace_arn: str) -> str:
    return workspace_policy("QueryTheDeploymentsWorkspace", QUERY_ACTIONS, workspace_arn)


@dataclass(frozen=True, kw_only=True)
class MetricsWriter:
    """One cell whose Prometheus writes to the workspace and whose Grafana queries it (through its query proxy)."""

    cluster_name: str
    """The cell's EKS cluster (`<project>-<cell stack>`), whose Pod Identity agent hands out the role."""
    provider: aws.Provider
    """An AWS provider of the cell's region: the Pod Identity association is the cluster's (regional)."""
    namespace: str
    """Prometheus's namespace (components.contract.MONITORING_NAMESPACE)."""
    service_account: str
    """Prometheus's service account (values.PROMETHEUS_SERVICE_ACCOUNT): the writer role's."""
    reader_service_account: str
    """The workspace query proxy's service account (components.contract.METRICS_QUERY_PROXY), in the same namespace:
    the query role's. The proxy signs the queries of the cell's Grafana, which holds no AWS identity."""


@dataclass(frozen=True, kw_only=True)
class MetricsWorkspaceArgs:
    name: str
    """Names the workspace's alias and key alias: the global stack's `<project>-<stack>`."""
    region: str
    """The workspace's region (the provider in `opts` must be of this region)."""
    writers: Mapping[str, MetricsWriter]
    """The cells that write, by region."""
    tags: Mapping[str, str]


class MetricsWorkspace(pulumi.ComponentResource):
    """An Amazon Managed Service for Prometheus workspace (KMS-encrypted), and per cell a remote-write role (its
    Prometheus) and a query role (its workspace query proxy, which signs its Grafana's queries)."""

    workspace_arn: pulumi.Output[str]
    remote_write_url: pulumi.Output[str]
    query_url: pulumi.Output[str]
    writer_role_arns: dict[str, pulumi.Output[str]]
    reader_role_arns: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, *, args: MetricsWorkspaceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        if not args.writers:
            raise ValueError("MetricsWorkspace needs a cell that writes to it")
        super().__init__("modelyard:aws:MetricsWorkspace", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)
        key = aws.kms.Key(
            f"{name}-key",
            description=f"Encryption at rest of the metrics workspace {args.name} (Amazon Managed Prometheus)",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            tags={**tags, "Name": f"{name}-key"},
            # The workspace's data is readable only while the key exists.
            opts=pulumi.ResourceOptions(parent=self, protect=True, retain_on_delete=True),
        )
        aws.kms.Alias(f"{name}-key", name=f"alias/{args.name}-metrics", target_key_id=key.key_id, opts=child)
        workspace = aws.amp.Workspace(
            f"{name}-workspace",
            alias=f"{args.name}-metrics",
            kms_key_arn=key.arn,
            tags={**tags, "Name": f"{name}-workspace"},
            # Stateful (the deployment's metrics history): a destroy leaves it, like the model bucket.
            opts=pulumi.ResourceOptions(parent=self, protect=True, retain_on_delete=True),
        )
        policies = {
            "writer": workspace.arn.apply(remote_write_policy),
            "reader": workspace.arn.apply(query_policy),
        }
        self.writer_role_arns = {}
        self.reader_role_arns = {}
        for region, writer in sorted(args.writers.items()):
            roles = {
                # Prometheus copies the cell's series in.
                "writer": (writer.service_account, "Prometheus", "writing to"),
                # Grafana's "deployment" data source reads every cell's series back (the Cells dashboard) through the
                # query proxy, which signs with this role.
                "reader": (writer.reader_service_account, "Grafana's query proxy", "querying"),
            }
            for role_kind, (service_account, who, verb) in roles.items():
                role = aws.iam.Role(
                    f"{name}-{role_kind}-{region}",
                    description=f"{who} of {writer.cluster_name} {verb} {args.name}'s metrics workspace",
                    assume_role_policy=POD_IDENTITY_TRUST,
                    max_session_duration=3600,
                    tags=tags,
                    opts=child,
                )
                aws.iam.RolePolicy(f"{name}-{role_kind}-{region}", role=role.id, policy=policies[role_kind], opts=child)
                aws.eks.PodIdentityAssociation(
                    f"{name}-{role_kind}-{region}",
                    cluster_name=writer.cluster_name,
                    namespace=writer.namespace,
                    service_account=service_account,
                    role_arn=role.arn,
                    tags=tags,
                    opts=pulumi.ResourceOptions(parent=self, provider=writer.provider),
                )
                (self.writer_role_arns if role_kind == "writer" else self.reader_role_arns)[region] = role.arn
        self.workspace_arn = workspace.arn
        self.remote_write_url = workspace.id.apply(lambda ws: remote_write_url(args.region, ws))
        self.query_url = workspace.id.apply(lambda ws: query_url(args.region, ws))
        self.register_outputs(
            {
                "workspace_arn": self.workspace_arn,
                "remote_write_url": self.remote_write_url,
                "query_url": self.query_url,
            }
        )
