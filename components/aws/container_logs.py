"""ContainerLogGroup: where every container's logs go (where monitoring.container_log_retention_days is set): a
CloudWatch log group with retention and a Pod Identity role that may write only there, bound to Fluent Bit's service
account. Fluent Bit itself is the Kubernetes layer's (components/k8s/monitoring/logs.py).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import pulumi
import pulumi_aws as aws

from components.aws.iam import POD_IDENTITY_TRUST
from components.contract import FLUENT_BIT_SERVICE_ACCOUNT, MONITORING_NAMESPACE
from components.options import children_moved_from


def log_group_name(cluster_name: str) -> str:
    return f"/aws/eks/{cluster_name}/containers"


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
    """Days CloudWatch keeps the logs (monitoring.container_log_retention_days: one CloudWatch accepts)."""
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
