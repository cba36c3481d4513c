"""Serving: one release of the kit's `charts/llm-serving` per model of the stack.

Values come from the models' settings and sizing (`components.k8s.serving_values`). Each model's servers run
in its owner tenant's namespace (`ServingArgs.model_owners`), as the service account the Isolation component
binds to that tenant's storage role through EKS Pod Identity. The chart is deployed as a `helm.v4.Chart`: every
object becomes a Pulumi resource, so `pulumi preview --diff` shows object-level changes and the Deployment's
`pulumi.com/timeoutSeconds` annotation (image pull + weight copy + verification + model load) is the await.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import pulumi
import pulumi_kubernetes as k8s

from components.contract import ChartSource, system_node_selector
from components.k8s.charts import UPSTREAM_CHARTS, chart_source
from components.k8s.serving_values import CHART_DIR, nodes_per_replica, release_name, serving_values
from components.settings.types import ModelSettings, NatMode, PoolSettings

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
        for model_name in sorted(args.models):
            owner = args.model_owners[model_name]

            def values(resolved: list[str], model_name: str = model_name, owner: str = owner) -> dict[str, object]:
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
                )
                # Isolation creates the service account once per tenant namespace (several models may share it).
                chart_values["serviceAccount"]["create"] = False
                return chart_values

            chart_values = pulumi.Output.all(args.bucket, registry or "").apply(values)
            k8s.helm.v4.Chart(
                f"{name}-{model_name}",
                name=release_name(model_name),
                chart=CHART_PATH,
                namespace=args.namespace_of(owner),
                values=chart_values,
                # A LeaderWorkerSet needs the controller's CRD and webhook first.
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=[keda, lws] if lws is not None and model_name in multi_node else [keda]
                ),
            )
        self.register_outputs({})

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
