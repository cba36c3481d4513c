"""TenantIdentities: the AWS side of tenant isolation (the namespaces are components/k8s/isolation.py).

- each tenant's service account `model-server` in `tenant-<name>` bound by a Pod Identity association to
  the tenant's model-bucket read role (ModelStorage.tenant_role_arns: its models' prefixes and
  tenants/<name>/ only); EKS accepts the association before the namespace exists;
- the team's principals get AmazonEKSViewPolicy scoped to the tenant's namespaces through access entries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.contract import MODEL_SERVER_SERVICE_ACCOUNT, TENANT_LABEL, VIEW_POLICY, tenant_namespace
from components.options import children_moved_from, digest, renamed_from


@dataclass(frozen=True, kw_only=True)
class TenantIdentity:
    principals: Sequence[str]
    """IAM ARNs of the team: view access to the tenant's namespace."""
    read_role_arn: pulumi.Input[str]
    """The tenant's model-bucket read role (ModelStorage.tenant_role_arns)."""


@dataclass(frozen=True, kw_only=True)
class TenantIdentitiesArgs:
    cluster_name: pulumi.Input[str]
    tenants: Mapping[str, TenantIdentity]
    cluster_admins: Sequence[str]
    """Principals that have a cluster-admin access entry already (no second entry for them)."""
    tags: Mapping[str, str]


class TenantIdentities(pulumi.ComponentResource):
    """Pod Identity for each tenant's model servers, and view access entries for its team."""

    def __init__(self, name: str, *, args: TenantIdentitiesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(
            "modelyard:aws:TenantIdentities",
            name,
            None,
            pulumi.ResourceOptions.merge(
                opts, children_moved_from("modelyard:aws:TenantIdentities", "modelyard:k8s:Isolation", "isolation")
            ),
        )
        # These were children of Isolation (named "isolation", as this one is in the platform) until the
        # layers split: aliases keep their identity in stacks deployed before.
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)
        for tenant, spec in sorted(args.tenants.items()):
            aws.eks.PodIdentityAssociation(
                f"{name}-{tenant}-model-server",
                cluster_name=args.cluster_name,
                namespace=tenant_namespace(tenant),
                service_account=MODEL_SERVER_SERVICE_ACCOUNT,
                role_arn=spec.read_role_arn,
                tags={**tags, TENANT_LABEL: tenant},
                opts=child,
            )
        # One access entry per principal, one view association listing every namespace it belongs to
        # (EKS keys associations by principal and policy: two would collide).
        by_principal: dict[str, list[str]] = {}
        for tenant, spec in sorted(args.tenants.items()):
            for principal in spec.principals:
                by_principal.setdefault(principal, []).append(tenant_namespace(tenant))
        # Named by principal, so a principal added or removed leaves the others' entries alone. Earlier kits named
        # them by position among all principals, admins included (`team-<index>`); the alias finds those on an
        # upgrade that keeps the principals (docs/upgrades.md).
        for index, (principal, namespaces) in enumerate(sorted(by_principal.items())):
            if principal in args.cluster_admins:
                continue  # cluster admin already: its entry exists, and view adds nothing
            was = [renamed_from(f"{name}-team-{index}")]
            entry = aws.eks.AccessEntry(
                f"{name}-team-{digest(principal)}",
                cluster_name=args.cluster_name,
                principal_arn=principal,
                type="STANDARD",
                tags=tags,
                opts=pulumi.ResourceOptions(parent=self, aliases=was),
            )
            aws.eks.AccessPolicyAssociation(
                f"{name}-team-{digest(principal)}",
                cluster_name=args.cluster_name,
                principal_arn=principal,
                policy_arn=VIEW_POLICY,
                access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(
                    type="namespace", namespaces=sorted(namespaces)
                ),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[entry], aliases=was),
            )

        self.register_outputs({})
