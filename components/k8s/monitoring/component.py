"""The Monitoring component: kube-prometheus-stack, the DCGM exporter, the kit's dashboards and alert rules.

The caller passes the cluster's Kubernetes provider in `opts` (``provider=cluster.k8s_provider``); every
child inherits it through ``parent=self``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.contract import ChartSource
from components.k8s.charts import chart_source
from components.k8s.crds import crd_release
from components.k8s.monitoring import assets, query_proxy
from components.k8s.monitoring.values import (
    DCGM_EXPORTER,
    DCGM_EXPORTER_RELEASE,
    KUBE_PROMETHEUS_STACK,
    KUBE_PROMETHEUS_STACK_RELEASE,
    MONITORING_NAMESPACE,
    PROMETHEUS_OPERATOR_CRDS,
    QUERY_PROXY_IMAGE_HOST,
    ROUTES,
    ReceiverKind,
    ReceiverSpec,
    RemoteWrite,
    alertmanager_config,
    dcgm_exporter_values,
    monitoring_values,
    operator_crds_values,
)
from components.settings.types import AlertmanagerSettings, PrometheusSettings

# Seconds Helm waits for a release's pods: Prometheus volumes are created on first schedule.
RELEASE_TIMEOUT_SECONDS = 900


@dataclass(frozen=True, kw_only=True)
class AlertReceiver:
    """Where one alert route (page: critical, ticket: warning) delivers."""

    kind: ReceiverKind
    secret: pulumi.Input[str]
    """The webhook URL, Slack incoming-webhook URL or PagerDuty routing key: made a Pulumi secret and stored in a
    Secret of its own in the monitoring namespace, never in Helm values."""
    slack_channel: str | None = None
    """Slack only: the channel, e.g. "#llm-oncall"; default: the webhook's own channel."""


@dataclass(frozen=True, kw_only=True)
class MonitoringArgs:
    """What the monitoring stack is built from: plain values the platform takes from the stack's settings
    (`components.platform.monitoring_args`)."""

    cluster_name: str
    """The cluster's name (`<project>-<stack>`), the `cluster` label of every series Prometheus stores."""
    prometheus: PrometheusSettings
    """Replicas, volume, retention and resources of Prometheus (monitoring.prometheus, given by the preset)."""
    alertmanager: AlertmanagerSettings
    """Replicas and volume of Alertmanager, and how often it sends a still-firing alert again
    (monitoring.alertmanager, given by the preset)."""
    charts: ChartSource = ChartSource.UPSTREAM
    """Where the charts come from (`deploy.charts`); default: their repositories."""
    runbook_base_url: str = assets.RUNBOOK_BASE_URL
    """URL the alerts' runbook_url annotations start with (the kit's docs/runbooks/ in your fork's web view);
    default: the upstream repository."""
    image_mirrors: pulumi.Input[Mapping[str, str]] = field(default_factory=lambda: MappingProxyType({}))
    """Registry host (values.IMAGE_HOSTS) -> the registry serving its images, for stacks without NAT: the ECR
    pull-through cache (components.aws.image_cache.mirrored) or, for nvcr.io, a hand-made ECR mirror.
    Default: pull from the upstream registries."""
    remote_write: RemoteWriteTarget | None = None
    """A cell writing to its deployment's metrics workspace (monitoring.remote_write); default: none."""
    receivers: Mapping[str, AlertReceiver] = field(default_factory=lambda: MappingProxyType({}))
    """Receivers by route ("page", "ticket"); a route without one delivers nowhere (alerts still show in
    Alertmanager and Grafana). Default: none."""


@dataclass(frozen=True, kw_only=True)
class RemoteWriteTarget:
    """The workspace a cell's Prometheus writes to and its Grafana reads: values.RemoteWrite with the URLs as the global
    stack's outputs."""

    url: pulumi.Input[str]
    """The workspace's remote-write URL (the global stack's `metrics_remote_write_url`)."""
    query_url: pulumi.Input[str]
    """The workspace's query URL (the global stack's `metrics_query_url`): its path is where Grafana's "deployment"
    data source asks the workspace query proxy (query_proxy.datasource_url)."""
    region: str
    cell: str
    cell_region: str
    kept_in_region: tuple[tuple[str, str], ...] = ()


def _stack_values(args: MonitoringArgs) -> pulumi.Output[dict[str, Any]]:
    target = args.remote_write
    if target is None:
        return pulumi.Output.from_input(args.image_mirrors).apply(
            lambda mirrors: monitoring_values(args, image_mirrors=mirrors)
        )

    # The URLs stay Outputs inside the values: known to `pulumi up` (the global stack was applied), unknown to the
    # offline plan of a cell, which then shows every other value still.
    remote_write = RemoteWrite(
        url=target.url,
        # None where the global stack has no such output (the offline plan of a cell): shown as null, like `url`.
        datasource_url=pulumi.Output.from_input(target.query_url).apply(
            lambda url: None if url is None else query_proxy.datasource_url(url, target.region)
        ),
        region=target.region,
        cell=target.cell,
        cell_region=target.cell_region,
        kept_in_region=target.kept_in_region,
    )
    return pulumi.Output.from_input(args.image_mirrors).apply(
        lambda mirrors: monitoring_values(args, image_mirrors=mirrors, remote_write=remote_write)
    )


class Monitoring(pulumi.ComponentResource):
    """Prometheus, Alertmanager and Grafana (kube-prometheus-stack), the DCGM exporter on GPU nodes, the
    kit's Grafana dashboards (ConfigMaps) and alert and recording rules (PrometheusRule objects)."""

    namespace: pulumi.Output[str]

    def __init__(self, name: str, *, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("modelyard:k8s:Monitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        namespace = _apply(f"{name}-namespace", assets.namespace_object(), child)

        after_namespace = pulumi.ResourceOptions(parent=self, depends_on=[namespace])
        charts = args.charts
        # The Prometheus Operator's CRDs, before the stack, which leaves them out (crds.enabled false).
        operator_crds = crd_release(
            f"{name}-{PROMETHEUS_OPERATOR_CRDS.name}",
            chart=PROMETHEUS_OPERATOR_CRDS,
            source=charts,
            namespace=namespace.metadata["name"],
            values=operator_crds_values(),
            opts=after_namespace,
        )
        chart, repository = chart_source(charts, KUBE_PROMETHEUS_STACK)
        stack = k8s.helm.v3.Release(
            f"{name}-{KUBE_PROMETHEUS_STACK_RELEASE}",
            name=KUBE_PROMETHEUS_STACK_RELEASE,
            chart=chart,
            version=KUBE_PROMETHEUS_STACK.version,
            repository_opts=repository,
            namespace=namespace.metadata["name"],
            values=_stack_values(args),
            skip_crds=True,
            timeout=RELEASE_TIMEOUT_SECONDS,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[namespace, operator_crds]),
        )
        # The exporter's ServiceMonitor and the rules need the CRDs (installed before the stack) and the operator.
        after_stack = pulumi.ResourceOptions(parent=self, depends_on=[stack])
        chart, repository = chart_source(charts, DCGM_EXPORTER)
        k8s.helm.v3.Release(
            f"{name}-{DCGM_EXPORTER_RELEASE}",
            name=DCGM_EXPORTER_RELEASE,
            chart=chart,
            version=DCGM_EXPORTER.version,
            repository_opts=repository,
            namespace=namespace.metadata["name"],
            values=pulumi.Output.from_input(args.image_mirrors).apply(
                lambda mirrors: dcgm_exporter_values(image_mirrors=mirrors)
            ),
            timeout=RELEASE_TIMEOUT_SECONDS,
            opts=after_stack,
        )
        if args.remote_write is not None:
            self._query_proxy(name, args, args.remote_write.region, after_namespace)
        # The Cells dashboard reads the deployment's workspace: only where this cell writes there (Grafana reads it).
        for config_map in assets.dashboard_config_maps(deployment_view=args.remote_write is not None):
            _apply(f"{name}-{config_map['metadata']['name']}", config_map, after_namespace)
        for rule in assets.prometheus_rules(runbook_base_url=args.runbook_base_url):
            _apply(f"{name}-{rule['metadata']['name']}", rule, after_stack)

        self._alert_routing(name, args, after_stack)

        self.namespace = namespace.metadata["name"]
        self.register_outputs({"namespace": self.namespace})

    def _query_proxy(self, name: str, args: MonitoringArgs, region: str, opts: pulumi.ResourceOptions) -> None:
        """The SigV4 proxy Grafana queries the workspace through (query_proxy.py), image mirrored like the others."""
        registry = pulumi.Output.from_input(args.image_mirrors).apply(
            lambda mirrors: mirrors.get(QUERY_PROXY_IMAGE_HOST, QUERY_PROXY_IMAGE_HOST)
        )
        for obj in query_proxy.objects(region):
            resource_name = f"{name}-{obj['kind'].lower()}-{obj['metadata']['name']}"
            if obj["kind"] == "Deployment":
                # Only the image waits for the account (the pull-through cache's registry): the plan shows the rest.
                template = obj["spec"]["template"]
                (container,) = template["spec"]["containers"]
                container["image"] = registry.apply(query_proxy.image)
            _apply(resource_name, obj, opts)

    def _alert_routing(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions) -> None:
        """One Secret per receiver, and the AlertmanagerConfig that routes to them."""
        unknown = sorted(set(args.receivers) - set(ROUTES))
        if unknown:
            raise ValueError(f"unknown alert routes {unknown}; the routes are {', '.join(ROUTES)}")
        specs: dict[str, ReceiverSpec] = {}
        secrets = []
        for route, receiver in sorted(args.receivers.items()):
            spec = ReceiverSpec(
                kind=receiver.kind, secret_name=f"alertmanager-{route}", slack_channel=receiver.slack_channel
            )
            specs[route] = spec
            secrets.append(
                k8s.core.v1.Secret(
                    f"{name}-{spec.secret_name}",
                    metadata={
                        "name": spec.secret_name,
                        "namespace": MONITORING_NAMESPACE,
                        "labels": dict(assets.PART_OF),
                    },
                    type="Opaque",
                    string_data={spec.secret_key: pulumi.Output.secret(receiver.secret)},
                    opts=opts,
                )
            )
        routing = alertmanager_config(args.alertmanager.repeat_interval_hours, specs)
        _apply(
            f"{name}-alertmanager-config",
            routing,
            pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=secrets)),
        )


def _apply(resource_name: str, obj: dict[str, Any], opts: pulumi.ResourceOptions) -> Any:
    """Register one Kubernetes object given as a manifest (the same dict the tests validate)."""
    kind = obj["kind"]
    if kind == "Namespace":
        return k8s.core.v1.Namespace(resource_name, metadata=obj["metadata"], opts=opts)
    if kind == "ConfigMap":
        return k8s.core.v1.ConfigMap(resource_name, metadata=obj["metadata"], data=obj["data"], opts=opts)
    if kind == "ServiceAccount":
        return k8s.core.v1.ServiceAccount(
            resource_name,
            metadata=obj["metadata"],
            automount_service_account_token=obj["automountServiceAccountToken"],
            opts=opts,
        )
    if kind == "Deployment":
        return k8s.apps.v1.Deployment(resource_name, metadata=obj["metadata"], spec=obj["spec"], opts=opts)
    if kind == "Service":
        return k8s.core.v1.Service(resource_name, metadata=obj["metadata"], spec=obj["spec"], opts=opts)
    if kind == "NetworkPolicy":
        return k8s.networking.v1.NetworkPolicy(resource_name, metadata=obj["metadata"], spec=obj["spec"], opts=opts)
    return k8s.apiextensions.CustomResource(
        resource_name,
        api_version=obj["apiVersion"],
        kind=kind,
        metadata=obj["metadata"],
        spec=obj["spec"],
        opts=opts,
    )
