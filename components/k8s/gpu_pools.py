"""GpuPools: the GPU capacity models run on, one pool per entry of `modelyard:pools`.

- elastic pools: a Karpenter NodePool + EC2NodeClass. Karpenter adds nodes for pending GPU pods and
  removes empty ones, never past the pool's GPU limit (`max_gpus`, the budget ceiling).
- static pools: an EKS managed node group, for on-demand capacity reservations and capacity blocks
  (each tied to one zone), or capacity that must always run. `desiredSize` is ignored on update so
  `pulumi up` never resets a group someone scaled.
Every GPU node is tainted `nvidia.com/gpu=true:NoSchedule` (only pods that ask for GPUs land there),
labelled `nvidia.com/gpu.present=true` (where the NVIDIA device plugin runs) and with the pool, GPU
model and, for dedicated pools, the tenant (whose taint keeps every other tenant off).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components import catalog
from components.settings.model import Capacity, Interconnect, PoolKind, PoolSettings

POOL_LABEL = "modelyard.dev/pool"
GPU_LABEL = "modelyard.dev/gpu"
TENANT_LABEL = "modelyard.dev/tenant"
GPU_PRESENT_LABEL = "nvidia.com/gpu.present"
GPU_TAINT_KEY = "nvidia.com/gpu"

# Amazon Linux 2023 EKS AMI release, by Karpenter alias (amazon-eks-ami release tag v20250915, the
# NVIDIA variant is chosen by Karpenter for GPU types). Bump deliberately: docs/gpu-pools.md.
AMI_ALIAS = "al2023@v20250915"
# NVIDIA device plugin chart (github.com/NVIDIA/k8s-device-plugin; 0.18.0 is the version NVIDIA's
# install guide pins). AL2023 NVIDIA AMIs ship the driver, not the device plugin; Bottlerocket would ship both.
DEVICE_PLUGIN_CHART = ("nvidia-device-plugin", "0.18.0", "https://nvidia.github.io/k8s-device-plugin")
# EFA device plugin chart (aws/eks-charts aws-efa-k8s-device-plugin 0.5.10).
EFA_PLUGIN_CHART = ("aws-efa-k8s-device-plugin", "0.5.10", "https://aws.github.io/eks-charts")
# Root volume of GPU nodes: vLLM images are about 10 GB and the kubelet keeps two generations.
ROOT_VOLUME_GIB = 200


@dataclass(frozen=True, kw_only=True)
class GpuPoolsArgs:
    cluster_name: str
    """The EKS cluster's name (Karpenter's subnet discovery tag value)."""
    pools: Mapping[str, PoolSettings]
    """Pools by name, from settings."""
    dedicated: Mapping[str, str]
    """Pool name -> the tenant it is dedicated to."""
    zone_subnets: Mapping[str, pulumi.Input[str]]
    """Private subnet id by zone ID, for static pools pinned to one zone."""
    node_role_name: pulumi.Input[str]
    """The Karpenter node role (has the cluster's EC2_LINUX access entry)."""
    node_role_arn: pulumi.Input[str]
    """The same role's ARN, for managed node groups."""
    cluster_security_group_id: pulumi.Input[str]
    """The EKS cluster security group, attached to every GPU node."""
    vpc_id: pulumi.Input[str]
    """The VPC, for the EFA security group."""
    tags: Mapping[str, str]
    """Tags for AWS resources and, through Karpenter and launch templates, instances and volumes."""


def _taints(pool: str, tenant: str | None) -> list[dict[str, str]]:
    taints = [{"key": GPU_TAINT_KEY, "value": "true", "effect": "NoSchedule"}]
    if tenant:
        taints.append({"key": TENANT_LABEL, "value": tenant, "effect": "NoSchedule"})
    return taints


def _labels(pool: str, settings: PoolSettings, tenant: str | None) -> dict[str, str]:
    gpu = catalog.resolve_instance(settings.instance_types[0]).gpu
    labels = {GPU_PRESENT_LABEL: "true", POOL_LABEL: pool, GPU_LABEL: gpu.model if gpu else "none"}
    if tenant:
        labels[TENANT_LABEL] = tenant
    return labels


def node_pool_spec(
    name: str, pool: PoolSettings, *, tenant: str | None, node_class: str, zone_ids: Sequence[str]
) -> dict[str, object]:
    """The Karpenter NodePool spec of an elastic pool (karpenter.sh/v1)."""
    requirements: list[dict[str, object]] = [
        {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": sorted(pool.instance_types)},
        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": [pool.capacity.value]},
    ]
    if zone_ids:
        requirements.append({"key": "topology.k8s.aws/zone-id", "operator": "In", "values": sorted(zone_ids)})
    return {
        "template": {
            "metadata": {"labels": _labels(name, pool, tenant)},
            "spec": {
                "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": node_class},
                "taints": _taints(name, tenant),
                "requirements": requirements,
                # Replace nodes monthly so AMI and driver updates arrive without a manual roll.
                "expireAfter": "720h",
            },
        },
        # The budget ceiling: Karpenter never runs more GPUs than this in the pool.
        "limits": {"nvidia.com/gpu": str(pool.max_gpus)},
        "disruption": {
            # Only empty nodes are removed: consolidating a busy GPU node would evict a model server
            # that takes minutes to load.
            "consolidationPolicy": "WhenEmpty",
            "consolidateAfter": "10m",
            "budgets": [{"nodes": "1"}],
        },
    }


def node_class_spec(
    *,
    cluster_name: str,
    role: str,
    security_group_ids: Sequence[str],
    tags: Mapping[str, str],
) -> dict[str, object]:
    """The EC2NodeClass spec of an elastic pool (karpenter.k8s.aws/v1)."""
    return {
        "amiSelectorTerms": [{"alias": AMI_ALIAS}],
        "role": role,
        "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": cluster_name}}],
        "securityGroupSelectorTerms": [{"id": sg} for sg in security_group_ids],
        # IMDSv2 only, one hop: pods cannot reach the node's credentials through the metadata service.
        "metadataOptions": {
            "httpEndpoint": "enabled",
            "httpTokens": "required",
            "httpPutResponseHopLimit": 1,
            "httpProtocolIPv6": "disabled",
        },
        "blockDeviceMappings": [
            {
                "deviceName": "/dev/xvda",
                "ebs": {
                    "volumeSize": f"{ROOT_VOLUME_GIB}Gi",
                    "volumeType": "gp3",
                    "encrypted": True,
                    "deleteOnTermination": True,
                },
            }
        ],
        # Local NVMe as one RAID0 volume under the kubelet and containerd: the model cache lives there.
        "instanceStorePolicy": "RAID0",
        # Karpenter puts these on instances, volumes and launch templates: cost allocation works.
        "tags": dict(tags),
    }


class GpuPools(pulumi.ComponentResource):
    """Karpenter pools and managed node groups for GPUs, and the device plugins they need."""

    def __init__(
        self,
        name: str,
        *,
        args: GpuPoolsArgs,
        aws_provider: aws.Provider,
        k8s_provider: k8s.Provider,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("modelyard:k8s:GpuPools", name, None, opts)
        aws_opts = pulumi.ResourceOptions(parent=self, provider=aws_provider)
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=k8s_provider)
        tags = dict(args.tags)

        efa_sg: aws.ec2.SecurityGroup | None = None
        if any(p.interconnect is Interconnect.EFA for p in args.pools.values()):
            # EFA traffic flows between the nodes of one group only: open to itself, nothing else.
            efa_sg = aws.ec2.SecurityGroup(
                f"{name}-efa",
                vpc_id=args.vpc_id,
                description="EFA between GPU nodes of multi-node pools: all traffic within this group only",
                tags={**tags, "Name": f"{name}-efa"},
                opts=aws_opts,
            )
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-efa-in",
                security_group_id=efa_sg.id,
                referenced_security_group_id=efa_sg.id,
                ip_protocol="-1",
                description="EFA: from members of this group",
                tags=tags,
                opts=aws_opts,
            )
            aws.vpc.SecurityGroupEgressRule(
                f"{name}-efa-out",
                security_group_id=efa_sg.id,
                referenced_security_group_id=efa_sg.id,
                ip_protocol="-1",
                description="EFA: to members of this group",
                tags=tags,
                opts=aws_opts,
            )

        for pool_name, pool in sorted(args.pools.items()):
            tenant = args.dedicated.get(pool_name)
            pool_tags = {**tags, "modelyard:pool": pool_name}
            groups: list[pulumi.Input[str]] = [args.cluster_security_group_id]
            if pool.interconnect is Interconnect.EFA and efa_sg is not None:
                groups.append(efa_sg.id)
            if pool.kind is PoolKind.ELASTIC:
                self._elastic(name, pool_name, pool, tenant, args, groups, pool_tags, k8s_opts)
            else:
                self._static(name, pool_name, pool, tenant, args, groups, pool_tags, aws_opts)

        tolerations = [{"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}]
        if args.dedicated:
            tolerations.append({"key": TENANT_LABEL, "operator": "Exists", "effect": "NoSchedule"})
        chart, version, repo = DEVICE_PLUGIN_CHART
        k8s.helm.v3.Release(
            f"{name}-nvidia-device-plugin",
            name="nvidia-device-plugin",
            chart=chart,
            version=version,
            namespace="kube-system",
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=repo),
            values={
                "nodeSelector": {GPU_PRESENT_LABEL: "true"},
                "tolerations": tolerations,
                "priorityClassName": "system-node-critical",
            },
            opts=k8s_opts,
        )
        if efa_sg is not None:
            chart, version, repo = EFA_PLUGIN_CHART
            k8s.helm.v3.Release(
                f"{name}-efa-device-plugin",
                name="aws-efa-k8s-device-plugin",
                chart=chart,
                version=version,
                namespace="kube-system",
                repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=repo),
                values={"nodeSelector": {GPU_PRESENT_LABEL: "true"}, "tolerations": tolerations},
                opts=k8s_opts,
            )
        self.register_outputs({})

    def _elastic(
        self,
        name: str,
        pool_name: str,
        pool: PoolSettings,
        tenant: str | None,
        args: GpuPoolsArgs,
        groups: list[pulumi.Input[str]],
        tags: dict[str, str],
        k8s_opts: pulumi.ResourceOptions,
    ) -> None:
        node_class = f"gpu-{pool_name}"
        spec = pulumi.Output.all(args.node_role_name, *groups).apply(
            lambda v: node_class_spec(cluster_name=args.cluster_name, role=v[0], security_group_ids=v[1:], tags=tags)
        )
        ec2_node_class = k8s.apiextensions.CustomResource(
            f"{name}-{pool_name}-class",
            api_version="karpenter.k8s.aws/v1",
            kind="EC2NodeClass",
            metadata={"name": node_class},
            spec=spec,
            opts=k8s_opts,
        )
        k8s.apiextensions.CustomResource(
            f"{name}-{pool_name}",
            api_version="karpenter.sh/v1",
            kind="NodePool",
            metadata={"name": f"gpu-{pool_name}"},
            spec=node_pool_spec(pool_name, pool, tenant=tenant, node_class=node_class, zone_ids=pool.zone_ids),
            opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(depends_on=[ec2_node_class])),
        )

    def _static(
        self,
        name: str,
        pool_name: str,
        pool: PoolSettings,
        tenant: str | None,
        args: GpuPoolsArgs,
        groups: list[pulumi.Input[str]],
        tags: dict[str, str],
        aws_opts: pulumi.ResourceOptions,
    ) -> None:
        instance = catalog.resolve_instance(pool.instance_types[0])
        reservation = None
        market = None
        if pool.capacity in (Capacity.RESERVATION, Capacity.CAPACITY_BLOCK):
            reservation = aws.ec2.LaunchTemplateCapacityReservationSpecificationArgs(
                capacity_reservation_target=aws.ec2.LaunchTemplateCapacityReservationSpecificationCapacityReservationTargetArgs(
                    capacity_reservation_id=pool.reservation_id
                )
            )
        if pool.capacity is Capacity.CAPACITY_BLOCK:
            market = aws.ec2.LaunchTemplateInstanceMarketOptionsArgs(market_type="capacity-block")
        template = aws.ec2.LaunchTemplate(
            f"{name}-{pool_name}",
            description=f"GPU pool {pool_name}: IMDSv2 with one hop, encrypted root volume, cost tags",
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled", http_tokens="required", http_put_response_hop_limit=1
            ),
            block_device_mappings=[
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    device_name="/dev/xvda",
                    ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                        volume_size=ROOT_VOLUME_GIB, volume_type="gp3", encrypted="true", delete_on_termination="true"
                    ),
                )
            ],
            vpc_security_group_ids=groups,
            capacity_reservation_specification=reservation,
            instance_market_options=market,
            # A node group's own tags never reach its instances or volumes: the template's do.
            tag_specifications=[
                aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type=kind, tags=tags)
                for kind in ("instance", "volume", "network-interface")
            ],
            tags=tags,
            opts=aws_opts,
        )
        zones = pool.zone_ids or tuple(args.zone_subnets)
        max_nodes = max(1, pool.max_gpus // instance.gpu_count)
        aws.eks.NodeGroup(
            f"{name}-{pool_name}",
            cluster_name=args.cluster_name,
            node_group_name=f"gpu-{pool_name}",
            node_role_arn=args.node_role_arn,
            subnet_ids=[args.zone_subnets[z] for z in zones],
            instance_types=[instance.name],
            ami_type="AL2023_x86_64_NVIDIA",
            capacity_type="CAPACITY_BLOCK" if pool.capacity is Capacity.CAPACITY_BLOCK else "ON_DEMAND",
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=template.id, version=template.latest_version.apply(str)
            ),
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=pool.min_nodes, max_size=max(max_nodes, pool.min_nodes), desired_size=pool.min_nodes
            ),
            labels=_labels(pool_name, pool, tenant),
            taints=[
                aws.eks.NodeGroupTaintArgs(key=t["key"], value=t["value"], effect="NO_SCHEDULE")
                for t in _taints(pool_name, tenant)
            ],
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
            tags=tags,
            opts=pulumi.ResourceOptions.merge(
                aws_opts, pulumi.ResourceOptions(ignore_changes=["scalingConfig.desiredSize"])
            ),
        )
