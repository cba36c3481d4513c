"""Cluster: the EKS control plane, its system nodes and add-ons, and the one Kubernetes provider.

What a platform team expects on day one (docs/cluster.md):
  - secrets envelope-encrypted with a customer-managed KMS key (rotation on);
  - api, audit and authenticator logs to a log group with retention, created before the cluster so EKS
    never creates one without retention;
  - authentication mode API: access entries only (no aws-auth ConfigMap); the deploying principal is
    admin through bootstrap_cluster_creator_admin_permissions (settable only at creation), and every ARN
    of settings' admins gets AmazonEKSClusterAdminPolicy through an access entry;
  - the private endpoint always on; the public one only for the CIDRs settings allow;
  - a small on-demand managed node group for add-ons and controllers, whose desired size is left to
    whoever scaled it;
  - add-ons at the versions of components/aws/addons.py: VPC CNI with network policy enforcement and its
    own Pod Identity role, kube-proxy, the Pod Identity agent, EBS CSI (Pod Identity role), CoreDNS after
    the nodes exist, and the FSx for Lustre CSI driver where the stack has a file system (its role describes file
    systems only); node roles carry no CNI permissions (see `CNI_POLICY`);
  - Karpenter's AWS side (components/aws/karpenter.py), as children of the cluster.
Only AWS resources: the Kubernetes provider, the default StorageClass and Karpenter's chart belong to the
Kubernetes layer (components/k8s/cluster_services.py), which may run as a stack of its own (docs/deploy.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws import addons
from components.aws.iam import MANAGED_POLICY_PREFIX, NODE_POLICIES, POD_IDENTITY_TRUST, assume_role_policy
from components.aws.karpenter import karpenter_aws_side
from components.contract import CLUSTER_ADMIN_POLICY, SYSTEM_ROOT_VOLUME_GIB, system_node_selector
from components.options import cidr_part, digest, renamed_from
from components.settings.types import EndpointAccess, ExtraLogType

ALWAYS_ON_LOG_TYPES = ("api", "audit", "authenticator")
# The VPC CNI's permissions for an IPv4 cluster (IPv6 would need a policy of one's own), on aws-node's role.
CNI_POLICY = "AmazonEKS_CNI_Policy"
CNI_SERVICE_ACCOUNT = "aws-node"
AMI_TYPES = {"x86_64": "AL2023_x86_64_STANDARD", "arm64": "AL2023_ARM_64_STANDARD"}


@dataclass(frozen=True, kw_only=True)
class ClusterArgs:
    cluster_name: str
    """The EKS cluster's name (`<project>-<stack>`, also the Karpenter discovery tag's value)."""
    region: str
    """The cluster's region."""
    version: str
    """Kubernetes minor version, a key of addons.ADDON_VERSIONS."""
    private_subnet_ids: pulumi.Input[Sequence[str]]
    """Subnets of the control plane's network interfaces and of the system nodes."""
    endpoint: EndpointAccess
    """private, or public-and-private limited to public_cidrs."""
    public_cidrs: Sequence[str]
    """CIDRs admitted to the public endpoint (validated by settings)."""
    private_access_cidrs: Sequence[str] = ()
    """Private CIDRs admitted on 443 to the private endpoint (where `pulumi up` runs for a private cluster)."""
    admins: Sequence[str]
    """IAM role or user ARNs given cluster-admin through access entries."""
    log_retention_days: int
    """Retention of the control-plane log group."""
    extra_log_types: Sequence[ExtraLogType]
    """Control-plane logs beyond api, audit and authenticator."""
    system_instance_type: str
    system_architecture: str
    """x86_64 or arm64, from the catalog: picks the AL2023 AMI type."""
    system_min: int
    system_max: int
    system_desired: int
    tags: Mapping[str, str]
    """Tags for every taggable resource of the component."""
    fsx_csi: bool = False
    """Install the FSx for Lustre CSI driver add-on (the stack has a file system, storage.fsx); default: no."""


# The FSx CSI driver's controller, for static volumes only: it creates and deletes no file system (the kit's
# ModelFileSystem does), so its role may describe file systems and nothing else. The node plugin, which mounts,
# calls no AWS API. AWS's guide attaches AmazonFSxFullAccess, which is for dynamic provisioning.
FSX_CSI_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "DescribeOnly", "Effect": "Allow", "Action": "fsx:DescribeFileSystems", "Resource": "*"}],
    }
)
FSX_CSI_SERVICE_ACCOUNT = "fsx-csi-controller-sa"


def ebs_csi_configuration(cluster_name: str, tags: Mapping[str, str]) -> dict[str, object]:
    """The EBS CSI driver add-on's configuration: the volumes it creates for PersistentVolumeClaims carry the stack's
    tags (`controller.extraVolumeTags`, the driver's `--extra-tags`) and `kubernetes.io/cluster/<cluster>: owned`
    (`controller.k8sTagClusterId`), so that Budgets and Cost Explorer count them to the stack and `modelyard orphans`
    finds them (docs/destroy.md). For every StorageClass, the kit's gp3 and any a team adds."""
    return {"controller": {"extraVolumeTags": dict(sorted(tags.items())), "k8sTagClusterId": cluster_name}}


def _oidc_issuer(identities: Sequence[aws.eks.outputs.ClusterIdentity] | None) -> str:
    for identity in identities or ():
        for oidc in identity.oidcs or ():
            if oidc.issuer:
                return oidc.issuer
    return ""


class Cluster(pulumi.ComponentResource):
    """EKS with KMS-encrypted secrets, audit logs, access entries, system nodes, pinned add-ons."""

    cluster_name: pulumi.Output[str]
    cluster_arn: pulumi.Output[str]
    kubernetes_version: pulumi.Output[str]
    """The control plane's version once EKS has it (node groups follow it)."""
    endpoint: pulumi.Output[str]
    cluster_security_group_id: pulumi.Output[str]
    oidc_issuer: pulumi.Output[str]
    certificate_authority: pulumi.Output[str]
    karpenter_node_role_name: pulumi.Output[str]
    system_node_role_name: pulumi.Output[str]
    karpenter_node_role_arn: pulumi.Output[str]
    karpenter_queue_name: pulumi.Output[str]

    def __init__(self, name: str, *, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("modelyard:aws:Cluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)
        versions = addons.addon_versions(args.version)

        def named(role: str) -> dict[str, str]:
            return {**tags, "Name": f"{args.cluster_name}-{role}"}

        role = aws.iam.Role(
            f"{name}-control-plane",
            assume_role_policy=assume_role_policy("eks.amazonaws.com", tag_session=True),
            tags=named("control-plane"),
            opts=child,
        )
        cluster_policy = aws.iam.RolePolicyAttachment(
            f"{name}-control-plane",
            role=role.name,
            policy_arn=f"{MANAGED_POLICY_PREFIX}AmazonEKSClusterPolicy",
            opts=child,
        )

        key = aws.kms.Key(
            f"{name}-secrets",
            description=f"Envelope encryption of Kubernetes secrets of EKS cluster {args.cluster_name}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            tags=named("secrets"),
            opts=child,
        )
        aws.kms.Alias(
            f"{name}-secrets", name=f"alias/{args.cluster_name}-eks-secrets", target_key_id=key.key_id, opts=child
        )

        # EKS writes to /aws/eks/<name>/cluster; created first, it keeps the kit's retention and tags.
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/aws/eks/{args.cluster_name}/cluster",
            retention_in_days=args.log_retention_days,
            tags=named("logs"),
            opts=child,
        )

        public = args.endpoint is EndpointAccess.PUBLIC_AND_PRIVATE
        cluster = aws.eks.Cluster(
            f"{name}-eks",
            name=args.cluster_name,
            version=args.version,
            role_arn=role.arn,
            vpc_config=aws.eks.ClusterVpcConfigArgs(
                subnet_ids=args.private_subnet_ids,
                endpoint_private_access=True,
                endpoint_public_access=public,
                public_access_cidrs=list(args.public_cidrs) if public else None,
            ),
            enabled_cluster_log_types=[*ALWAYS_ON_LOG_TYPES, *(t.value for t in args.extra_log_types)],
            encryption_config=aws.eks.ClusterEncryptionConfigArgs(
                resources=["secrets"],
                provider=aws.eks.ClusterEncryptionConfigProviderArgs(key_arn=key.arn),
            ),
            access_config=aws.eks.ClusterAccessConfigArgs(
                authentication_mode="API",
                # The deploying principal becomes admin; EKS accepts this only at creation.
                bootstrap_cluster_creator_admin_permissions=True,
            ),
            tags=named("eks"),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[log_group, cluster_policy]),
        )

        # Named by principal, so removing one admin leaves the others' entries alone. Earlier kits named them by
        # position (`admin-<index>`); the alias finds those on an upgrade that keeps the list (docs/upgrades.md).
        for index, principal in enumerate(args.admins):
            admin = f"admin-{digest(principal)}"
            was = [renamed_from(f"{name}-admin-{index}")]
            entry = aws.eks.AccessEntry(
                f"{name}-{admin}",
                cluster_name=cluster.name,
                principal_arn=principal,
                type="STANDARD",
                tags=named(admin),
                opts=pulumi.ResourceOptions(parent=self, aliases=was),
            )
            aws.eks.AccessPolicyAssociation(
                f"{name}-{admin}",
                cluster_name=cluster.name,
                principal_arn=principal,
                policy_arn=CLUSTER_ADMIN_POLICY,
                access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[entry], aliases=was),
            )

        def addon(
            addon_name: str,
            *,
            configuration: Mapping[str, object] | None = None,
            pod_identity: list[aws.eks.AddonPodIdentityAssociationArgs] | None = None,
            after: Sequence[pulumi.Resource] = (),
        ) -> aws.eks.Addon:
            return aws.eks.Addon(
                f"{name}-{addon_name}",
                cluster_name=cluster.name,
                addon_name=addon_name,
                addon_version=versions[addon_name],
                resolve_conflicts_on_create="OVERWRITE",
                resolve_conflicts_on_update="OVERWRITE",
                configuration_values=json.dumps(configuration, sort_keys=True) if configuration else None,
                pod_identity_associations=pod_identity,
                tags=named(addon_name),
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(after)),
            )

        addon(addons.KUBE_PROXY)
        pod_identity_agent = addon(addons.POD_IDENTITY_AGENT)
        # aws-node gets the CNI's permissions from its own role through Pod Identity, not from the node role.
        # Order (EKS user guide, "IAM roles for Amazon EKS add-ons"): the Pod Identity agent first; the add-on
        # then creates the association with itself, and EKS restarts the add-on's pods whenever its
        # associations change, so aws-node pods started before the association (a running stack's) are
        # replaced by pods with the role's credentials. The system nodes boot after the add-on (below).
        cni_role = aws.iam.Role(
            f"{name}-vpc-cni",
            assume_role_policy=POD_IDENTITY_TRUST,
            tags=named("vpc-cni"),
            opts=child,
        )
        cni_policy = aws.iam.RolePolicyAttachment(
            f"{name}-vpc-cni", role=cni_role.name, policy_arn=f"{MANAGED_POLICY_PREFIX}{CNI_POLICY}", opts=child
        )
        vpc_cni = addon(
            addons.VPC_CNI,
            # Network policy enforcement: without it NetworkPolicies are accepted and silently ignored.
            configuration={"enableNetworkPolicy": "true"},
            # EKS installs the VPC CNI in kube-system: its associations are for kube-system/aws-node.
            pod_identity=[
                aws.eks.AddonPodIdentityAssociationArgs(role_arn=cni_role.arn, service_account=CNI_SERVICE_ACCOUNT)
            ],
            after=[pod_identity_agent, cni_policy],
        )
        # Nodes boot once aws-node has its role and every node's agent can hand it credentials: their node
        # role has no CNI permissions to fall back on.
        node_group = self._system_nodes(name, cluster, args, named, after=[vpc_cni, pod_identity_agent])
        # Deployments: created once nodes exist, or the add-on waits degraded until Pulumi times out.
        addon(addons.COREDNS, after=[node_group])
        ebs_role = aws.iam.Role(
            f"{name}-ebs-csi",
            assume_role_policy=POD_IDENTITY_TRUST,
            tags=named("ebs-csi"),
            opts=child,
        )
        ebs_policy = aws.iam.RolePolicyAttachment(
            f"{name}-ebs-csi",
            role=ebs_role.name,
            policy_arn=f"{MANAGED_POLICY_PREFIX}service-role/AmazonEBSCSIDriverPolicy",
            opts=child,
        )
        ebs_csi = addon(
            addons.EBS_CSI,
            configuration=ebs_csi_configuration(args.cluster_name, tags),
            pod_identity=[
                aws.eks.AddonPodIdentityAssociationArgs(role_arn=ebs_role.arn, service_account="ebs-csi-controller-sa")
            ],
            after=[node_group, pod_identity_agent, ebs_policy],
        )

        ready: list[pulumi.Resource] = [node_group, ebs_csi]
        if args.fsx_csi:
            fsx_role = aws.iam.Role(
                f"{name}-fsx-csi",
                assume_role_policy=POD_IDENTITY_TRUST,
                tags=named("fsx-csi"),
                opts=child,
            )
            fsx_policy = aws.iam.RolePolicy(f"{name}-fsx-csi", role=fsx_role.id, policy=FSX_CSI_POLICY, opts=child)
            ready.append(
                addon(
                    addons.FSX_CSI,
                    pod_identity=[
                        aws.eks.AddonPodIdentityAssociationArgs(
                            role_arn=fsx_role.arn, service_account=FSX_CSI_SERVICE_ACCOUNT
                        )
                    ],
                    after=[node_group, pod_identity_agent, fsx_policy],
                )
            )

        karpenter_node_role, karpenter_queue = karpenter_aws_side(
            name,
            cluster,
            cluster_name=args.cluster_name,
            region=args.region,
            named=named,
            opts=pulumi.ResourceOptions(parent=self),
        )

        self.cluster_name = cluster.name
        self.cluster_arn = cluster.arn
        self.kubernetes_version = cluster.version
        self.endpoint = cluster.endpoint
        self.cluster_security_group_id = cluster.vpc_config.cluster_security_group_id
        # The private endpoint answers only what the cluster security group admits: the deploy runner's path.
        # Named by CIDR; aliased from the position earlier kits named them by, as the admins' entries above.
        for index, cidr in enumerate(args.private_access_cidrs):
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-api-from-{cidr_part(cidr)}",
                security_group_id=self.cluster_security_group_id,
                cidr_ipv4=cidr,
                ip_protocol="tcp",
                from_port=443,
                to_port=443,
                description="Kubernetes API (private endpoint) from the deploy runner's network",
                tags=named("api-access"),
                opts=pulumi.ResourceOptions(parent=self, aliases=[renamed_from(f"{name}-api-from-{index}")]),
            )
        self.oidc_issuer = cluster.identities.apply(_oidc_issuer)
        self.certificate_authority = cluster.certificate_authority.apply(lambda ca: ca.data or "")
        self.karpenter_queue_name = karpenter_queue.name
        # What the Kubernetes layer waits for in one stack: the add-ons its objects and charts need.
        self.ready = ready
        self.karpenter_node_role_name = karpenter_node_role.name
        # The static GPU pools' node groups take this ARN: carrying the VPC CNI add-on, it makes them boot only
        # once aws-node has its role (their nodes, like Karpenter's, have no CNI permissions of their own).
        self.karpenter_node_role_arn = pulumi.Output.all(karpenter_node_role.arn, vpc_cni.arn).apply(lambda v: v[0])
        self.register_outputs(
            {
                "cluster_name": self.cluster_name,
                "endpoint": self.endpoint,
                "cluster_security_group_id": self.cluster_security_group_id,
                "oidc_issuer": self.oidc_issuer,
            }
        )

    def _system_nodes(
        self,
        name: str,
        cluster: aws.eks.Cluster,
        args: ClusterArgs,
        named: Callable[[str], dict[str, str]],
        *,
        after: Sequence[pulumi.Resource],
    ) -> aws.eks.NodeGroup:
        child = pulumi.ResourceOptions(parent=self)
        role = aws.iam.Role(
            f"{name}-system-nodes",
            assume_role_policy=assume_role_policy("ec2.amazonaws.com"),
            tags=named("system-nodes"),
            opts=child,
        )
        attachments = [
            aws.iam.RolePolicyAttachment(
                f"{name}-system-nodes-{policy}",
                role=role.name,
                policy_arn=f"{MANAGED_POLICY_PREFIX}{policy}",
                opts=child,
            )
            for policy in NODE_POLICIES
        ]
        self.system_node_role_name = role.name
        # A launch template of the kit's: IMDSv2 with one hop (pods cannot use the node's credentials; an EKS
        # managed node group's default template allows two), an encrypted root volume, and the cost tags on
        # instances and volumes (a node group's own tags never reach them).
        template = aws.ec2.LaunchTemplate(
            f"{name}-system",
            description=f"System nodes of EKS cluster {args.cluster_name}: IMDSv2 one hop, encrypted root, cost tags",
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled", http_tokens="required", http_put_response_hop_limit=1
            ),
            block_device_mappings=[
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    device_name="/dev/xvda",
                    ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                        volume_size=SYSTEM_ROOT_VOLUME_GIB,
                        volume_type="gp3",
                        encrypted="true",
                        delete_on_termination="true",
                    ),
                )
            ],
            tag_specifications=[
                aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type=kind, tags=named("system"))
                for kind in ("instance", "volume", "network-interface")
            ],
            tags=named("system"),
            opts=child,
        )
        return aws.eks.NodeGroup(
            f"{name}-system",
            cluster_name=cluster.name,
            node_group_name="system",
            # The control plane's version: bumping cluster.version rolls these nodes onto it after the control
            # plane (EKS leaves a node group on its old minor otherwise).
            version=cluster.version,
            node_role_arn=role.arn,
            subnet_ids=args.private_subnet_ids,
            instance_types=[args.system_instance_type],
            ami_type=AMI_TYPES[args.system_architecture],
            capacity_type="ON_DEMAND",
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=template.id, version=template.latest_version.apply(str)
            ),
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=args.system_min, max_size=args.system_max, desired_size=args.system_desired
            ),
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
            labels=system_node_selector(),
            tags=named("system"),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[*attachments, *after],
                # Whoever scaled the group (an operator, an autoscaler) keeps their count across `up`.
                ignore_changes=["scalingConfig.desiredSize"],
            ),
        )
