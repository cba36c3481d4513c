"""ClusterServices: the Kubernetes layer's foundation, what every other Kubernetes object stands on.

- the one Kubernetes provider of the kit, built from the cluster's name, endpoint and CA bundle (in one
  stack from the Cluster component's outputs, in a split deployment from the AWS layer's stack outputs);
  its token comes from `aws eks get-token` at use, so nothing secret is stored;
- an encrypted gp3 StorageClass as the default (EKS ships none);
- Karpenter's CRDs (the pinned karpenter-crd chart, a release of its own: components/k8s/crds.py), then its
  controller (pinned chart, skipping its crds/) on the system nodes, bound by the AWS layer's Pod Identity
  association to its controller role.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.contract import KARPENTER_NAMESPACE, KARPENTER_SERVICE_ACCOUNT, ChartSource, system_node_selector
from components.k8s.charts import CRD_ANNOTATIONS, UPSTREAM_CHARTS, chart_source
from components.k8s.crds import crd_release
from components.options import children_moved_from

# Karpenter's chart (oci://public.ecr.aws/karpenter/karpenter; the pin is in components/k8s/charts.py).
# It runs on the system node group, which Karpenter does not manage.
KARPENTER_CHART = UPSTREAM_CHARTS["karpenter"]
# Its CRDs (NodePool, NodeClaim, EC2NodeClass, NodeOverlay), same version: karpenter-crd's only value is
# `additionalAnnotations` (charts/karpenter-crd/values.yaml at tag v1.7.3).
KARPENTER_CRD_CHART = UPSTREAM_CHARTS["karpenter-crd"]


def kubeconfig(*, cluster_name: str, region: str, endpoint: str, ca_data: str) -> str:
    """A kubeconfig whose credentials come from `aws eks get-token` at use: nothing secret is stored."""
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": cluster_name, "cluster": {"server": endpoint, "certificate-authority-data": ca_data}}
            ],
            "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name}}],
            "current-context": cluster_name,
            "users": [
                {
                    "name": cluster_name,
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "aws",
                            "args": ["eks", "get-token", "--cluster-name", cluster_name, "--region", region],
                            "interactiveMode": "Never",
                        }
                    },
                }
            ],
        },
        sort_keys=True,
    )


@dataclass(frozen=True, kw_only=True)
class ClusterServicesArgs:
    cluster_name: str
    """The EKS cluster's name (settings.name)."""
    region: str
    """The cluster's region: the kubeconfig's token command, and Karpenter's (pods cannot ask IMDS)."""
    endpoint: pulumi.Input[str]
    """The API server's URL."""
    certificate_authority: pulumi.Input[str]
    """The cluster's CA bundle, base64 as EKS returns it."""
    karpenter_queue_name: pulumi.Input[str]
    """The SQS queue Karpenter reads interruption events from."""
    image_registry: Callable[[str], pulumi.Input[str]] = lambda host: host
    """Maps an upstream registry host to where nodes pull it from (the pull-through cache, or itself)."""
    charts: ChartSource = ChartSource.UPSTREAM
    """Where Karpenter's chart comes from (deploy.charts)."""


class ClusterServices(pulumi.ComponentResource):
    """The Kubernetes provider, the default StorageClass, Karpenter's CRDs and its controller."""

    provider: k8s.Provider
    karpenter_crds: k8s.helm.v3.Release
    karpenter: k8s.helm.v3.Release

    def __init__(self, name: str, *, args: ClusterServicesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        # Until the layers split, the children were the Cluster component (named "cluster", as this one is)'s:
        # their aliases keep stacks deployed before from replacing them.
        super().__init__(
            "modelyard:k8s:ClusterServices",
            name,
            None,
            pulumi.ResourceOptions.merge(
                opts, children_moved_from("modelyard:k8s:ClusterServices", "modelyard:aws:Cluster", "cluster")
            ),
        )
        provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=pulumi.Output.all(args.endpoint, args.certificate_authority).apply(
                lambda v: kubeconfig(cluster_name=args.cluster_name, region=args.region, endpoint=v[0], ca_data=v[1])
            ),
            # Never fall back to the operator's kubeconfig context or namespace.
            namespace="default",
            opts=pulumi.ResourceOptions(parent=self),
        )
        on_cluster = pulumi.ResourceOptions(parent=self, provider=provider)
        # EKS ships no default StorageClass: this one encrypts every volume and waits for the pod's zone.
        k8s.storage.v1.StorageClass(
            f"{name}-gp3",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="gp3",
                annotations={"storageclass.kubernetes.io/is-default-class": "true"},
            ),
            provisioner="ebs.csi.aws.com",
            parameters={"type": "gp3", "encrypted": "true"},
            volume_binding_mode="WaitForFirstConsumer",
            allow_volume_expansion=True,
            reclaim_policy="Delete",
            opts=on_cluster,
        )
        # In Karpenter's namespace, as its upgrade guide installs it.
        self.karpenter_crds = crd_release(
            f"{name}-karpenter-crd",
            chart=KARPENTER_CRD_CHART,
            source=args.charts,
            namespace=KARPENTER_NAMESPACE,
            values={"additionalAnnotations": dict(CRD_ANNOTATIONS)},
            opts=on_cluster,
        )
        chart, repository = chart_source(args.charts, KARPENTER_CHART)
        self.karpenter = k8s.helm.v3.Release(
            f"{name}-karpenter",
            name="karpenter",
            chart=chart,
            version=KARPENTER_CHART.version,
            repository_opts=repository,
            namespace=KARPENTER_NAMESPACE,
            # The CRDs are karpenter-crd's: this release never installs its crds/ copy, even on a new cluster.
            skip_crds=True,
            values={
                "settings": {"clusterName": args.cluster_name, "interruptionQueue": args.karpenter_queue_name},
                "controller": {
                    "image": {
                        "repository": pulumi.Output.concat(
                            args.image_registry("public.ecr.aws"), "/karpenter/controller"
                        )
                    },
                    "resources": {
                        "requests": {"cpu": "250m", "memory": "512Mi"},
                        "limits": {"memory": "512Mi"},
                    },
                    # Karpenter reads its region from the instance metadata service unless AWS_REGION is set, and
                    # the system nodes allow pods no IMDS hop: without it the controller panics at start
                    # ("ec2imds: GetRegion ... context deadline exceeded", aws/karpenter-provider-aws#8219).
                    # EKS Pod Identity injects credentials, not a region.
                    "env": [{"name": "AWS_REGION", "value": args.region}],
                },
                # The Pod Identity association binds this service account to the controller role.
                "serviceAccount": {"name": KARPENTER_SERVICE_ACCOUNT},
                "replicas": 2,
                "nodeSelector": system_node_selector(),
            },
            opts=pulumi.ResourceOptions.merge(on_cluster, pulumi.ResourceOptions(depends_on=[self.karpenter_crds])),
        )
        self.provider = provider
        self.register_outputs({})
