"""GpuCapacity: the AWS side of the GPU pools (the Kubernetes side is components/k8s/gpu_pools.py).

- the EFA security group of multi-node pools: all traffic between its members, nothing else;
- static pools: an EKS managed node group with its launch template, for on-demand capacity reservations
  and capacity blocks (each tied to one zone), or capacity that must always run. `desiredSize` is ignored
  on update so `pulumi up` never resets a group someone scaled. The template carries IMDSv2 with one hop,
  an encrypted root volume and the cost tags (a node group's own tags never reach its instances).
Elastic pools need no AWS resource of their own: Karpenter launches their nodes with the node role and
the security groups this component lists per pool.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components import catalog
from components.contract import GPU_ROOT_VOLUME_GIB, pool_labels, pool_taints
from components.options import children_moved_from
from components.settings.types import Capacity, Interconnect, PoolKind, PoolSettings


@dataclass(frozen=True, kw_only=True)
class GpuCapacityArgs:
    cluster_name: pulumi.Input[str]
    """The EKS cluster's name."""
    kubernetes_version: pulumi.Input[str]
    """The cluster's Kubernetes version (the control plane's output): static pools' node groups follow it."""
    pools: Mapping[str, PoolSettings]
    """Pools by name, from settings."""
    dedicated: Mapping[str, str]
    """Pool name -> the tenant it is dedicated to (label and taint of its nodes)."""
    zone_subnets: Mapping[str, pulumi.Input[str]]
    """Private subnet id by zone ID, for static pools pinned to one zone."""
    node_role_arn: pulumi.Input[str]
    """The GPU node role (Karpenter's node role, which has the cluster's EC2_LINUX access entry)."""
    cluster_security_group_id: pulumi.Input[str]
    """The EKS cluster security group, attached to every GPU node."""
    vpc_id: pulumi.Input[str]
    """The VPC, for the EFA security group."""
    tags: Mapping[str, str]
    """Tags for every AWS resource and, through launch templates, instances and volumes."""


class GpuCapacity(pulumi.ComponentResource):
    """EFA security group and managed node groups for static GPU pools."""

    security_groups: pulumi.Output[dict[str, list[str]]]
    """Security group ids by pool name (every pool): what its nodes are launched with."""

    def __init__(self, name: str, *, args: GpuCapacityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        # Until the layers split, the children were the GpuPools component (named "gpu-pools", as this one is)'s:
        # their aliases keep stacks deployed before from replacing them.
        super().__init__(
            "modelyard:aws:GpuCapacity",
            name,
            None,
            pulumi.ResourceOptions.merge(
                opts, children_moved_from("modelyard:aws:GpuCapacity", "modelyard:k8s:GpuPools", "gpu-pools")
            ),
        )
        aws_opts = pulumi.ResourceOptions(parent=self)
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

        by_pool: dict[str, list[pulumi.Input[str]]] = {}
        for pool_name, pool in sorted(args.pools.items()):
            groups: list[pulumi.Input[str]] = [args.cluster_security_group_id]
            if pool.interconnect is Interconnect.EFA and efa_sg is not None:
                groups.append(efa_sg.id)
            by_pool[pool_name] = groups
            if pool.kind is PoolKind.STATIC:
                pool_tags = {**tags, "modelyard:pool": pool_name}
                self._static(name, pool_name, pool, args.dedicated.get(pool_name), args, groups, pool_tags, aws_opts)
        names = sorted(by_pool)
        self.security_groups = pulumi.Output.all(*(pulumi.Output.all(*by_pool[n]) for n in names)).apply(
            lambda lists: {n: list(ids) for n, ids in zip(names, lists, strict=True)}
        )
        self.register_outputs({"security_groups": self.security_groups})

    def _static(
        self,
        name: str,
        pool_name: str,
        pool: PoolSettings,
        tenant: str | None,
        args: GpuCapacityArgs,
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
                        volume_size=GPU_ROOT_VOLUME_GIB,
                        volume_type="gp3",
                        encrypted="true",
                        delete_on_termination="true",
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
            version=args.kubernetes_version,
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
            labels=pool_labels(pool_name, gpu_model=instance.gpu.model if instance.gpu else "none", tenant=tenant),
            taints=[
                aws.eks.NodeGroupTaintArgs(key=t["key"], value=t["value"], effect="NO_SCHEDULE")
                for t in pool_taints(tenant)
            ],
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
            tags=tags,
            opts=pulumi.ResourceOptions.merge(
                aws_opts, pulumi.ResourceOptions(ignore_changes=["scalingConfig.desiredSize"])
            ),
        )
