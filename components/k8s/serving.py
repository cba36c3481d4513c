"""Serving: one release of the kit's `charts/llm-serving` per model of the stack.

Values come from the models' settings and sizing (`components.k8s.serving_values`). Each model's servers run
in its owner tenant's namespace (`ServingArgs.model_owners`), as the service account the Isolation component
binds to that tenant's storage role through EKS Pod Identity. The chart is deployed as a `helm.v4.Chart`: every
object becomes a Pulumi resource, so `pulumi preview --diff` shows object-level changes and the Deployment's
`pulumi.com/timeoutSeconds` annotation (image pull + weight copy + verification + model load) is the await.
"""

from __future__ import annotations

import dataclasses
import functools
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.contract import ChartSource, canary_release, system_node_selector
from components.k8s.charts import UPSTREAM_CHARTS, chart_source
from components.k8s.serving_values import CHART_DIR, FSX_CLAIM, nodes_per_replica, release_name, serving_values
from components.settings.types import ModelSettings, NatMode, PoolSettings
from components.sizing.cold_start import WeightsLoad

# KEDA (github.com/kedacore/charts, pinned in components/k8s/charts.py): scales model servers on vLLM's queue.
KEDA_CHART = UPSTREAM_CHARTS["keda"]
# The LeaderWorkerSet controller (kubernetes-sigs/lws, pinned in components/k8s/charts.py): runs the models whose
# replica spans several nodes. Installed only in stacks that have one: it costs a controller pod and a webhook
# every LWS object then depends on. Its CRDs come from the chart's crds/ (upstream has no CRD chart): Helm
# installs them with the release and never upgrades them (a bump applies the new chart's crds/ first,
# docs/upgrades.md).
LWS_CHART = UPSTREAM_CHARTS["lws"]
LWS_NAMESPACE = "lws-system"
# Its controller image, by registry (the chart's values pin registry.k8s.io/lws/lws at the chart's version).
LWS_IMAGE_REGISTRY = "registry.k8s.io"
LWS_IMAGE_REPOSITORY = "lws/lws"

# The chart as Pulumi reads it: relative to the project folder, where `pulumi up` runs the program.
CHART_PATH = f"./{CHART_DIR.relative_to(Path(__file__).resolve().parents[2]).as_posix()}"


# The FSx for Lustre CSI driver (the EKS add-on aws-fsx-csi-driver).
FSX_CSI_DRIVER = "fsx.csi.aws.com"


@dataclass(frozen=True, kw_only=True)
class FsxVolume:
    """The stack's FSx for Lustre file system as the servers mount it (the AWS layer's outputs, storage.fsx)."""

    file_system_id: pulumi.Input[str]
    dns_name: pulumi.Input[str]
    mount_name: pulumi.Input[str]
    capacity_gib: int
    """The file system's storage (the PersistentVolume's capacity: Kubernetes needs one, the driver ignores it)."""
    throughput_mb_per_second: float
    """Its baseline throughput, which the servers' cold start is estimated with."""


def fsx_volume_specs(
    namespace: str, *, file_system_id: str, dns_name: str, mount_name: str, capacity_gib: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The static PersistentVolume and its claim in one namespace: read-only, bound to each other by name (the claim
    names the volume, the volume reserves the claim), so no other claim in any namespace can take the volume.

    One volume per namespace (a volume binds one claim), all naming the same file system; each has a volume handle of
    its own (`<fs id>::<namespace>`): kubelet keys a CSI mount by driver and handle, and the driver mounts by
    dnsname and mountname alone (aws-fsx-csi-driver pkg/driver/node.go)."""
    volume_name = f"{FSX_CLAIM}-{namespace}"
    volume: dict[str, Any] = {
        "capacity": {"storage": f"{capacity_gib}Gi"},
        "volumeMode": "Filesystem",
        "accessModes": ["ReadOnlyMany"],
        # Deleting the claim leaves the file system alone (it belongs to the AWS layer).
        "persistentVolumeReclaimPolicy": "Retain",
        "storageClassName": "",
        "claimRef": {"namespace": namespace, "name": FSX_CLAIM},
        "mountOptions": ["ro", "noatime"],
        "csi": {
            "driver": FSX_CSI_DRIVER,
            "volumeHandle": f"{file_system_id}::{namespace}",
            "readOnly": True,
            "volumeAttributes": {"dnsname": dns_name, "mountname": mount_name},
        },
    }
    claim: dict[str, Any] = {
        "accessModes": ["ReadOnlyMany"],
        "storageClassName": "",
        "volumeName": volume_name,
        "resources": {"requests": {"storage": f"{capacity_gib}Gi"}},
    }
    return volume, claim


def _specs_of(ids: list[str], *, namespace: str, capacity_gib: int) -> tuple[dict[str, Any], dict[str, Any]]:
    file_system_id, dns_name, mount_name = ids
    return fsx_volume_specs(
        namespace, file_system_id=file_system_id, dns_name=dns_name, mount_name=mount_name, capacity_gib=capacity_gib
    )


@dataclass(frozen=True, kw_only=True)
class ServingArgs:
    """What the model servers are built from: the models and pools as the settings give them, facts the platform
    derives from the settings (`components.platform.serving_args`), and the other components' names."""

    models: Mapping[str, ModelSettings]
    """The models to serve, by name (settings `models`): one release each, named after its key."""
    pools: Mapping[str, PoolSettings]
    """The GPU pools by name (settings `pools`): a model's replicas are sized on its pool's instance types."""
    model_owners: Mapping[str, str]
    """Model -> the tenant whose namespace, GPU quota and storage role its servers use (its `owner`, else the only
    tenant listing it): one entry per key of `models`."""
    dedicated_pools: Mapping[str, str] = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    """Pool -> the tenant it is dedicated to (`tenants.<name>.dedicated_pool`): the servers of a model on that
    pool tolerate its taint. Default: none."""
    region: str
    """The AWS region of the model bucket."""
    zone_ids: tuple[str, ...]
    """The network's availability-zone IDs (`network.zone_ids`): a pool that names no zones of its own spans them all,
    and replicas of a model whose pool spans two or more are spread over them as a requirement (serving_values)."""
    nat: NatMode
    """How the nodes reach the internet (`network.nat`); with none, `image_registry` is required."""
    deployment: str
    """The stack that names the deployment (the AWS layer's): every object's `modelyard.dev/stack` label."""
    bucket: pulumi.Input[str]
    """The model bucket (ModelStorage)."""
    namespace_of: Callable[[str], str]
    """Tenant -> its namespace (Isolation)."""
    service_account: str
    """The service account, in each tenant namespace, bound to the tenant's storage role (Isolation)."""
    prometheus_release: str
    """The `release` label Prometheus selects ServiceMonitors by (Monitoring)."""
    prometheus_pod_labels: Mapping[str, str]
    """Labels of the Prometheus pods the model servers' NetworkPolicy admits."""
    prometheus_url: str
    """Prometheus's in-cluster URL, where KEDA reads vLLM's queue."""
    image_registry: Callable[[str], pulumi.Input[str]] | None = None
    """Upstream registry host -> where nodes pull it from (the ECR pull-through cache); default None: every image
    from its upstream registry."""
    charts: ChartSource = ChartSource.UPSTREAM
    """Where the KEDA and LeaderWorkerSet charts come from (`deploy.charts`); default: their repositories."""
    fsx: FsxVolume | None = None
    """The stack's FSx for Lustre file system (storage.fsx); default None: no model may load from it."""


class Serving(pulumi.ComponentResource):
    """The vLLM servers of every model of a stack, each a release of charts/llm-serving."""

    def __init__(self, name: str, *, args: ServingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("modelyard:k8s:Serving", name, None, opts)
        # KEDA (pinned) turns each model's ScaledObject into an HPA; installed once, before any model.
        chart, repository = chart_source(args.charts, KEDA_CHART)
        keda = k8s.helm.v3.Release(
            f"{name}-keda",
            name="keda",
            chart=chart,
            version=KEDA_CHART.version,
            namespace="keda",
            create_namespace=True,
            repository_opts=repository,
            values={
                "nodeSelector": system_node_selector(),
                "resources": {
                    "operator": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
                    "metricServer": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
                },
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
        registry = args.image_registry("docker.io") if args.image_registry is not None else None
        multi_node = {m for m in args.models if nodes_per_replica(args, m) > 1}
        lws: k8s.helm.v3.Release | None = None
        if multi_node:
            lws = self._lws(name, args)
        claims = self._fsx_claims(name, args)
        for model_name in sorted(args.models):
            owner = args.model_owners[model_name]
            claim = (
                claims.get(args.namespace_of(owner))
                if args.models[model_name].weights.load is WeightsLoad.FSX
                else None
            )

            def values(
                resolved: list[str], model_name: str = model_name, owner: str = owner, canary: bool = False
            ) -> dict[str, object]:
                chart_values = serving_values(
                    args,
                    model_name,
                    bucket=resolved[0],
                    image_registry=resolved[1] or None,
                    tenant=owner,
                    service_account=args.service_account,
                    prometheus_release=args.prometheus_release,
                    prometheus_pod_labels=args.prometheus_pod_labels,
                    await_rollout=args.models[model_name].await_ready,
                    prometheus_url=args.prometheus_url,
                    canary=canary,
                )
                # Isolation creates the service account once per tenant namespace (several models may share it).
                chart_values["serviceAccount"]["create"] = False
                return chart_values

            # A LeaderWorkerSet needs the controller's CRD and webhook first.
            depends_on: list[pulumi.Resource] = [
                keda,
                *([lws] if lws is not None and model_name in multi_node else []),
                *([claim] if claim else []),
            ]
            k8s.helm.v4.Chart(
                f"{name}-{model_name}",
                name=release_name(model_name),
                chart=CHART_PATH,
                namespace=args.namespace_of(owner),
                values=pulumi.Output.all(args.bucket, registry or "").apply(values),
                opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on),
            )
            if args.models[model_name].canary is not None:
                # The canary: a release of its own beside the stable one (its revision, its replicas, the same served
                # name); the gateway splits the model's traffic between the two by the canary's weight.
                k8s.helm.v4.Chart(
                    f"{name}-{canary_release(model_name)}",
                    name=canary_release(model_name),
                    chart=CHART_PATH,
                    namespace=args.namespace_of(owner),
                    values=pulumi.Output.all(args.bucket, registry or "").apply(functools.partial(values, canary=True)),
                    opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on),
                )
        self.register_outputs({})

    def _fsx_claims(self, name: str, args: ServingArgs) -> dict[str, k8s.core.v1.PersistentVolumeClaim]:
        """A read-only volume of the file system and its claim in each namespace whose servers load from it."""
        users = sorted(
            {
                args.namespace_of(args.model_owners[m])
                for m, spec in args.models.items()
                if spec.weights.load is WeightsLoad.FSX
            }
        )
        if not users:
            return {}
        fsx = args.fsx
        assert fsx is not None, "settings rule storage_fsx: weights.load fsx needs storage.fsx"
        claims: dict[str, k8s.core.v1.PersistentVolumeClaim] = {}
        for namespace in users:
            specs: pulumi.Output[Any] = pulumi.Output.all(fsx.file_system_id, fsx.dns_name, fsx.mount_name).apply(
                functools.partial(_specs_of, namespace=namespace, capacity_gib=fsx.capacity_gib)
            )
            labels = {"app.kubernetes.io/managed-by": "modelyard", "app.kubernetes.io/component": "model-files"}
            volume = k8s.core.v1.PersistentVolume(
                f"{name}-{FSX_CLAIM}-{namespace}",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{FSX_CLAIM}-{namespace}", labels=labels),
                spec=specs.apply(operator.itemgetter(0)),
                opts=pulumi.ResourceOptions(parent=self),
            )
            claims[namespace] = k8s.core.v1.PersistentVolumeClaim(
                f"{name}-{FSX_CLAIM}-{namespace}-claim",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=FSX_CLAIM, namespace=namespace, labels=labels),
                spec=specs.apply(operator.itemgetter(1)),
                # Bound at once to its volume: Pulumi need not wait for a consumer.
                opts=pulumi.ResourceOptions(parent=self, depends_on=[volume]),
            )
        return claims

    def _lws(self, name: str, args: ServingArgs) -> k8s.helm.v3.Release:
        """The LeaderWorkerSet controller on the system nodes, its image through the pull-through cache where
        nodes have no NAT."""
        chart, repository = chart_source(args.charts, LWS_CHART)
        image = args.image_registry(LWS_IMAGE_REGISTRY) if args.image_registry is not None else LWS_IMAGE_REGISTRY
        return k8s.helm.v3.Release(
            f"{name}-lws",
            name="lws",
            chart=chart,
            version=LWS_CHART.version,
            namespace=LWS_NAMESPACE,
            create_namespace=True,
            repository_opts=repository,
            values={
                "image": {
                    "manager": {
                        "repository": pulumi.Output.concat(image, "/", LWS_IMAGE_REPOSITORY),
                        "tag": LWS_CHART.app_version,
                        "pullPolicy": "IfNotPresent",
                    }
                },
                "nodeSelector": system_node_selector(),
                "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
