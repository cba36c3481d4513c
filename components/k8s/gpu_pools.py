"""GpuPools: the GPU capacity models run on, one pool per entry of `modelyard:pools`.

- elastic pools: a Karpenter NodePool + EC2NodeClass. Karpenter adds nodes for pending GPU pods and
  removes empty ones, never past the pool's GPU limit (`max_gpus`, the budget ceiling).
- static pools: an EKS managed node group (AWS layer: components/aws/gpu_capacity.py), for on-demand
  capacity reservations and capacity blocks (each tied to one zone), or capacity that must always run.
Every GPU node is tainted `nvidia.com/gpu=true:NoSchedule` (only pods that ask for GPUs land there),
labelled `nvidia.com/gpu.present=true` (where the NVIDIA device plugin runs) and with the pool, GPU
model and, for dedicated pools, the tenant (whose taint keeps every other tenant off).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components import catalog
from components.contract import (
    GPU_PRESENT_LABEL,
    GPU_ROOT_VOLUME_GIB,
    GPU_TAINT_KEY,
    TENANT_LABEL,
    ChartSource,
    pool_labels,
    pool_taints,
)
from components.k8s.charts import UPSTREAM_CHARTS, chart_source
from components.settings.types import Interconnect, PoolKind, PoolSettings

# Amazon Linux 2023 EKS AMI release, by Karpenter alias (amazon-eks-ami release tag v20250915, the
# NVIDIA variant is chosen by Karpenter for GPU types). Bump deliberately: docs/gpu-pools.md.
AMI_ALIAS = "al2023@v20250915"
# NVIDIA device plugin chart (github.com/NVIDIA/k8s-device-plugin; pinned in components/k8s/charts.py).
# AL2023 NVIDIA AMIs ship the driver, not the device plugin; Bottlerocket would ship both.
DEVICE_PLUGIN_CHART = UPSTREAM_CHARTS["nvidia-device-plugin"]
# EFA device plugin chart (aws/eks-charts aws-efa-k8s-device-plugin).
EFA_PLUGIN_CHART = UPSTREAM_CHARTS["aws-efa-k8s-device-plugin"]


@dataclass(frozen=True, kw_only=True)
class GpuPoolsArgs:
    cluster_name: str
    """The EKS cluster's name (Karpenter's subnet discovery tag value)."""
    pools: Mapping[str, PoolSettings]
    """Pools by name, from settings (only elastic ones are Karpenter's)."""
    dedicated: Mapping[str, str]
    """Pool name -> the tenant it is dedicated to."""
    node_role_name: pulumi.Input[str]
    """The Karpenter node role (has the cluster's EC2_LINUX access entry)."""
    security_groups: pulumi.Input[Mapping[str, Sequence[str]]]
    """Security group ids by pool: the cluster's, plus the EFA group for EFA pools (GpuCapacity)."""
    tags: Mapping[str, str]
    """Tags Karpenter puts on instances, volumes and launch templates."""
    charts: ChartSource = ChartSource.UPSTREAM
    """Where the device plugins' charts come from (deploy.charts)."""


def gpu_model(pool: PoolSettings) -> str:
    """The GPU model a pool's nodes are labelled with (its first instance type's; "none" without a GPU)."""
    gpu = catalog.resolve_instance(pool.instance_types[0]).gpu
    return gpu.model if gpu else "none"


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
            "metadata": {"labels": pool_labels(name, gpu_model=gpu_model(pool), tenant=tenant)},
            "spec": {
                "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": node_class},
                "taints": pool_taints(tenant),
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
            # One node at a time, at any hour: the budget governs drift and emptiness only (expiry is forceful in
            # Karpenter 1.x), drift comes only from a change the operator applies, and a server on a drifted node
            # is replaced while its PDB allows. No business-hours window: docs/gpu-pools.md, "Disruption".
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
                    "volumeSize": f"{GPU_ROOT_VOLUME_GIB}Gi",
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
    """Karpenter pools for elastic GPU capacity, and the device plugins every GPU node needs.

    Static pools are managed node groups: AWS resources of the AWS layer (components/aws/gpu_capacity.py).
    """

    def __init__(self, name: str, *, args: GpuPoolsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("modelyard:k8s:GpuPools", name, None, opts)
        k8s_opts = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)
        for pool_name, pool in sorted(args.pools.items()):
            if pool.kind is PoolKind.ELASTIC:
                pool_tags = {**tags, "modelyard:pool": pool_name}
                self._elastic(name, pool_name, pool, args.dedicated.get(pool_name), args, pool_tags, k8s_opts)

        tolerations = [{"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}]
        if args.dedicated:
            tolerations.append({"key": TENANT_LABEL, "operator": "Exists", "effect": "NoSchedule"})
        chart, repository = chart_source(args.charts, DEVICE_PLUGIN_CHART)
        k8s.helm.v3.Release(
            f"{name}-nvidia-device-plugin",
            name="nvidia-device-plugin",
            chart=chart,
            version=DEVICE_PLUGIN_CHART.version,
            namespace="kube-system",
            repository_opts=repository,
            values={
                "nodeSelector": {GPU_PRESENT_LABEL: "true"},
                "tolerations": tolerations,
                "priorityClassName": "system-node-critical",
            },
            opts=k8s_opts,
        )
        if any(p.interconnect is Interconnect.EFA for p in args.pools.values()):
            chart, repository = chart_source(args.charts, EFA_PLUGIN_CHART)
            k8s.helm.v3.Release(
                f"{name}-efa-device-plugin",
                name="aws-efa-k8s-device-plugin",
                chart=chart,
                version=EFA_PLUGIN_CHART.version,
                namespace="kube-system",
                repository_opts=repository,
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
        tags: dict[str, str],
        k8s_opts: pulumi.ResourceOptions,
    ) -> None:
        node_class = f"gpu-{pool_name}"
        spec = pulumi.Output.all(args.node_role_name, args.security_groups).apply(
            lambda v: node_class_spec(
                cluster_name=args.cluster_name, role=v[0], security_group_ids=v[1][pool_name], tags=tags
            )
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
