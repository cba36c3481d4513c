"""Pins, scrape contract and Helm values for the monitoring stack (kube-prometheus-stack and DCGM exporter).

Everything here is plain data computed from the Monitoring component's args: the component installs it, the
plan shows it, tests check it. Versions are pinned on purpose; each pin names where it was read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from components.contract import (
    ALERT_ROUTES,
    GATEWAY_NAME,
    GATEWAY_NAMESPACE,
    GPU_PRESENT_LABEL,
    GPU_TAINT_KEY,
    MONITORING_NAMESPACE,
    POOL_LABEL,
    ROUTE_ALERT_SEVERITY,
)
from components.k8s.charts import CRD_ANNOTATIONS, UPSTREAM_CHARTS
from components.settings.types import AlertmanagerSettings, PrometheusSettings

if TYPE_CHECKING:
    # Only for annotations: the component's module imports the Pulumi SDKs, which this one does without.
    from components.k8s.monitoring.component import MonitoringArgs

# --- pins -------------------------------------------------------------------------------------------

# The charts' pins, and where each was read, are in components/k8s/charts.py (the one table of upstream charts).
KUBE_PROMETHEUS_STACK = UPSTREAM_CHARTS["kube-prometheus-stack"]
KUBE_PROMETHEUS_STACK_CHART = KUBE_PROMETHEUS_STACK.name
KUBE_PROMETHEUS_STACK_VERSION = KUBE_PROMETHEUS_STACK.version
KUBE_PROMETHEUS_STACK_REPO = KUBE_PROMETHEUS_STACK.repository
# The Prometheus Operator's CRDs (monitoring.coreos.com), a release of their own before the stack's
# (components/k8s/crds.py): the chart of the same operator version. kube-prometheus-stack's own answer, the
# CRD upgrade job (`crds.upgradeJob`), is not used: its values.yaml at 88.5.3 calls it "in preview, off by
# default and may change in the future"; it runs docker.io/busybox:latest (a moving tag) and
# registry.k8s.io/kubectl tagged from `.Capabilities.KubeVersion` (charts/crds/templates/upgrade/job.yaml), images
# the kit would have to pin by digest and mirror; and it applies the CRDs from a pre-install/pre-upgrade hook
# (kubectl apply --server-side --force-conflicts) that no release owns. The CRD chart needs no image and is
# bundled for the deploy runner like every chart of the table.
PROMETHEUS_OPERATOR_CRDS = UPSTREAM_CHARTS["prometheus-operator-crds"]

# The DCGM exporter's chart; its values.yaml defaults the image to the tag below (DCGM 4.5.3, exporter 4.8.2).
DCGM_EXPORTER = UPSTREAM_CHARTS["dcgm-exporter"]
DCGM_EXPORTER_CHART = DCGM_EXPORTER.name
DCGM_EXPORTER_VERSION = DCGM_EXPORTER.version
DCGM_EXPORTER_REPO = DCGM_EXPORTER.repository
DCGM_EXPORTER_IMAGE = "nvcr.io/nvidia/k8s/dcgm-exporter"
DCGM_EXPORTER_IMAGE_TAG = "4.5.3-4.8.2-distroless"

# The SigV4 signing proxy through which a writing cell's Grafana queries the deployment's metrics workspace
# (query_proxy.py): awslabs/aws-sigv4-proxy release v1.11.1 (tag of 2026-02-11) as AWS publishes it on ECR Public.
# The image is FROM scratch: one static Go binary (ENTRYPOINT `./aws-sigv4-proxy`) and CA certificates; aws-sdk-go
# v1.55.7 at that tag (go.mod; v1.55.8 came after it), whose default credential chain reads EKS Pod Identity's
# AWS_CONTAINER_CREDENTIALS_FULL_URI and AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE and admits the agent's 169.254.170.23
# (aws/defaults/defaults.go). The digest is the one recorded for this tag in a public repository (acourtiol/magelift),
# not read from the registry here (unverified offline): `docker buildx imagetools inspect
# public.ecr.aws/aws-observability/aws-sigv4-proxy:1.11.1` confirms it.
QUERY_PROXY_IMAGE_HOST = "public.ecr.aws"
QUERY_PROXY_IMAGE_REPOSITORY = "aws-observability/aws-sigv4-proxy"
QUERY_PROXY_IMAGE_TAG = "1.11.1"
QUERY_PROXY_IMAGE_DIGEST = "sha256:34bbec3cb98403d3e040ec1dadb53bb02285f70d2f0ead2d16435fd30980abaa"

# The vLLM release whose metric names the dashboards and rules use: the one charts/llm-serving pins
# (a test keeps them equal). metrics.yaml lists the names, read from vllm/v1/metrics/loggers.py of the
# PyPI wheel vllm==0.17.1. Names changed between releases: vllm:gpu_cache_usage_perc became
# vllm:kv_cache_usage_perc (renamed in 0.9, old name hidden in 0.11, absent in 0.17.1), and
# vllm:time_per_output_token_seconds became vllm:inter_token_latency_seconds (0.11; absent in 0.17.1).
VLLM_VERSION = "0.17.1"
VLLM_IMAGE = "vllm/vllm-openai"
VLLM_IMAGE_TAG = f"v{VLLM_VERSION}"

# --- the scrape contract other components follow ------------------------------------------------------

# Helm release names: the chart names its objects after them, and Prometheus selects ServiceMonitors,
# PodMonitors and PrometheusRules carrying `release: <this>` (kube-prometheus-stack's default selectors).
KUBE_PROMETHEUS_STACK_RELEASE = "kube-prometheus-stack"
DCGM_EXPORTER_RELEASE = "dcgm-exporter"

# Labels every ServiceMonitor, PodMonitor and PrometheusRule of the kit carries so that Prometheus selects
# it. ServiceMonitors may live in any namespace (the tenant's, the gateway's): Prometheus watches all.
SCRAPE_SELECTOR_LABELS: MappingProxyType[str, str] = MappingProxyType({"release": KUBE_PROMETHEUS_STACK_RELEASE})

# Where Prometheus answers queries inside the cluster (KEDA's prometheus trigger, the gateway): the chart
# names its Service <fullname>-prometheus, port 9090.
PROMETHEUS_URL = f"http://{KUBE_PROMETHEUS_STACK_RELEASE}-prometheus.{MONITORING_NAMESPACE}.svc:9090"

# Labels of the Prometheus pods (set by the Prometheus Operator), for NetworkPolicies that admit scrapes
# from MONITORING_NAMESPACE (the serving chart's default matches).
PROMETHEUS_POD_LABELS: MappingProxyType[str, str] = MappingProxyType({"app.kubernetes.io/name": "prometheus"})

# How the rules find model servers: the container serving vLLM's /metrics is named SERVING_CONTAINER
# (charts/llm-serving names it so), and the Prometheus Operator labels every target it scrapes through a
# ServiceMonitor with `container`, `namespace`, `service` and `pod`.
SERVING_CONTAINER = "vllm"
# A model's autoscaler is its KEDA ScaledObject named like its Service (KEDA names the HPA
# keda-hpa-<ScaledObject>, as charts/llm-serving does) or an HPA named like its Service: the "queue growing
# at max replicas" alert joins the HPA to the Service on that name.
# The gateway's ServiceMonitor carries SCRAPE_SELECTOR_LABELS like any other; the operator names its job after
# the gateway's Service: rules/gateway.yaml and the gateway dashboard select up{job=GATEWAY_JOB,
# namespace=GATEWAY_JOB_NAMESPACE} (a test keeps the files equal to these).
GATEWAY_JOB = GATEWAY_NAME
GATEWAY_JOB_NAMESPACE = GATEWAY_NAMESPACE
DCGM_JOB = DCGM_EXPORTER_RELEASE  # the operator names the job after the exporter's Service

# Node labels cost panels need, exported by kube-state-metrics as kube_node_labels: every node of the kit
# carries POOL_LABEL (GPU pools and the system node group alike).
NODE_LABELS_FOR_COST = (
    "node.kubernetes.io/instance-type",
    "karpenter.sh/nodepool",
    "topology.kubernetes.io/zone",
    POOL_LABEL,
)

# Prometheus's service account (the chart's <fullname>-prometheus): the cross-region workspace's writer role is
# associated with it through EKS Pod Identity (components/aws/metrics_workspace.py).
PROMETHEUS_SERVICE_ACCOUNT = f"{KUBE_PROMETHEUS_STACK_RELEASE}-prometheus"
# Labels of Grafana's pods as the grafana subchart (12.11.1) sets them: `grafana.selectorLabels` in its _helpers.tpl,
# app.kubernetes.io/name = the chart's name (kube-prometheus-stack sets no nameOverride), app.kubernetes.io/instance =
# the release. The workspace query proxy's NetworkPolicy admits these pods only (query_proxy.py).
GRAFANA_POD_LABELS: MappingProxyType[str, str] = MappingProxyType(
    {"app.kubernetes.io/name": "grafana", "app.kubernetes.io/instance": KUBE_PROMETHEUS_STACK_RELEASE}
)

# Grafana's data source over the deployment's metrics workspace (every cell's series): its name and uid, which the
# Cells dashboard (dashboards/cells.json) names.
DEPLOYMENT_DATASOURCE = "deployment"

# The label the gateway's series name a tenant by (the kit's auth module sets LiteLLM's `user` to the key's tenant).
GATEWAY_TENANT_LABEL = "user"


@dataclass(frozen=True, kw_only=True)
class RemoteWrite:
    """Where a cell's Prometheus copies its series (docs/regions.md, "Observability across regions")."""

    url: object
    """A str or a pulumi Output of one: the workspace's remote-write endpoint (https://aps-workspaces.<region>.amazonaws.com/workspaces/<id>/...)."""
    datasource_url: object
    """A str or a pulumi Output of one: the URL of Grafana's "deployment" data source, the workspace query proxy's
    Service and the workspace's path (query_proxy.datasource_url of the workspace's query URL,
    http://aps-query-proxy.monitoring.svc:8005/workspaces/<id>)."""
    region: str
    """The workspace's region: SigV4 signs for it (Prometheus's remote write, the query proxy)."""
    cell: str
    """The cell's name (its AWS layer's stack): the `cell` label every copied series carries."""
    cell_region: str
    """The cell's region: the `region` label."""
    kept_in_region: tuple[tuple[str, str], ...] = ()
    """(tenant, its namespace) of tenants pinned to regions without the workspace's: their series stay in the
    cell (dropped from remote write, kept by the cell's Prometheus)."""


def remote_write_spec(remote_write: RemoteWrite) -> list[dict[str, Any]]:
    """prometheusSpec.remoteWrite (the Prometheus CRD's RemoteWriteSpec): SigV4 with the pod's own credentials (EKS
    Pod Identity; no roleArn: the associated role is the pod's), a pinned tenant's series dropped before they leave."""
    spec: dict[str, Any] = {"url": remote_write.url, "sigv4": {"region": remote_write.region}}
    if remote_write.kept_in_region:
        tenants = "|".join(sorted(t for t, _ in remote_write.kept_in_region))
        namespaces = "|".join(sorted(n for _, n in remote_write.kept_in_region))
        spec["writeRelabelConfigs"] = [
            # The tenant's model servers (and anything else in its namespace).
            {"sourceLabels": ["namespace"], "regex": namespaces, "action": "drop"},
            # The gateway's series of the tenant's requests.
            {"sourceLabels": [GATEWAY_TENANT_LABEL], "regex": tenants, "action": "drop"},
        ]
    return [spec]


# The external label naming a Prometheus replica, as the workspace's deduplication expects it.
WORKSPACE_REPLICA_LABEL = "__replica__"


def deployment_datasource(remote_write: RemoteWrite) -> dict[str, Any]:
    """Grafana's read-only data source over the workspace (Grafana's provisioning format, through
    kube-prometheus-stack's `grafana.additionalDataSources`): a plain Prometheus data source on the workspace query
    proxy, which signs with SigV4 (query_proxy.py). Grafana 13's core Prometheus data source signs no more, and the
    plugin that does is not in its image (docs/regions.md, "The cross-region view")."""
    return {
        "name": DEPLOYMENT_DATASOURCE,
        "uid": DEPLOYMENT_DATASOURCE,
        "type": "prometheus",
        "access": "proxy",
        "url": remote_write.datasource_url,
        "isDefault": False,
        "editable": False,
    }


def _with_remote_write(values: dict[str, Any], remote_write: RemoteWrite) -> None:
    spec = values["prometheus"]["prometheusSpec"]
    spec["externalLabels"] = {**spec["externalLabels"], "cell": remote_write.cell, "region": remote_write.cell_region}
    spec["remoteWrite"] = remote_write_spec(remote_write)
    # The workspace keeps one copy of what a cell's Prometheus replicas both send: it deduplicates samples carrying
    # the same `cluster` and different `__replica__` labels, and drops `__replica__` (Amazon Managed Service for
    # Prometheus user guide, "Set up high availability data ... using the Prometheus Operator Helm chart"). With the
    # operator's default replica label (prometheus_replica) every series would be there once per replica, and the
    # Cells dashboard's sums twice what the cell serves.
    spec["replicaExternalLabelName"] = WORKSPACE_REPLICA_LABEL
    values["prometheus"]["serviceAccount"] = {"create": True, "name": PROMETHEUS_SERVICE_ACCOUNT}
    # Grafana holds no AWS identity: the query proxy signs (its own service account is the query role's).
    values["grafana"]["additionalDataSources"] = [deployment_datasource(remote_write)]


# Dashboards: ConfigMaps with this label are loaded by Grafana's sidecar (kube-prometheus-stack default).
DASHBOARD_LABEL = ("grafana_dashboard", "1")

# The default StorageClass the cluster creates (components/aws/cluster.py): encrypted gp3.
STORAGE_CLASS = "gp3"

# Every image the pinned kube-prometheus-stack runs with these values, by values path, with its upstream
# registry (read from the values.yaml of kube-prometheus-stack 88.5.3 and its subcharts kube-state-metrics
# 8.4.0, prometheus-node-exporter 4.56.1, grafana 12.11.1). Stacks without NAT pull them through the ECR
# pull-through cache: `image_mirrors` maps a registry host to the registry that serves its images.
KUBE_PROMETHEUS_STACK_IMAGES: tuple[tuple[str, str], ...] = (
    ("prometheusOperator.image", "quay.io"),
    ("prometheusOperator.prometheusConfigReloader.image", "quay.io"),
    ("prometheusOperator.admissionWebhooks.patch.image", "ghcr.io"),
    ("prometheus.prometheusSpec.image", "quay.io"),
    ("alertmanager.alertmanagerSpec.image", "quay.io"),
    ("grafana.image", "docker.io"),
    ("grafana.sidecar.image", "quay.io"),
    ("kube-state-metrics.image", "registry.k8s.io"),
    ("prometheus-node-exporter.image", "quay.io"),
)
# nvcr.io is not an upstream the ECR pull-through cache supports: without NAT, mirror the DCGM image into
# ECR by hand and map "nvcr.io" to that registry. public.ecr.aws serves the workspace query proxy of writing cells.
IMAGE_HOSTS = tuple(sorted({host for _, host in KUBE_PROMETHEUS_STACK_IMAGES} | {"nvcr.io", QUERY_PROXY_IMAGE_HOST}))


def _set_path(values: dict[str, Any], dotted: str, key: str, value: Any) -> None:
    node = values
    for part in dotted.split("."):
        node = node.setdefault(part, {})
    node[key] = value


# --- sizes ------------------------------------------------------------------------------------------


def _retention_size(storage_gib: int) -> str:
    """Prometheus deletes the oldest blocks above 85% of its volume, before the disk fills."""
    return f"{int(storage_gib * 0.85)}GiB"


def _resources(cpu: str, memory: str) -> dict[str, Any]:
    """Requests as given; a memory limit equal to the request (no CPU limit: throttling hurts scrapes)."""
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory}}


# Keep the stack off GPU nodes even if a GPU node were ever left untainted: GPUs cost 10-100x a CPU node.
OFF_GPU_NODES: dict[str, Any] = {
    "nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": GPU_PRESENT_LABEL, "operator": "DoesNotExist"}]}]
        }
    }
}

_GPU_TOLERATION = {"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}


def _pvc(size_gib: int) -> dict[str, Any]:
    return {
        "volumeClaimTemplate": {
            "spec": {
                "storageClassName": STORAGE_CLASS,
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": f"{size_gib}Gi"}},
            }
        }
    }


class ReceiverKind(StrEnum):
    """Where Alertmanager sends a route's alerts; the secret is the URL or the key."""

    WEBHOOK = "webhook"  # secret: the URL Alertmanager POSTs to
    SLACK = "slack"  # secret: the incoming-webhook URL
    PAGERDUTY = "pagerduty"  # secret: the Events API v2 routing key


@dataclass(frozen=True, kw_only=True)
class ReceiverSpec:
    """A receiver of one route (page or ticket). Its secret lives in the Kubernetes Secret `secret_name`,
    key `secret_key`; the Monitoring component creates that Secret from the value it is given."""

    kind: ReceiverKind
    secret_name: str
    secret_key: str = "secret"
    slack_channel: str | None = None  # Slack only: the channel, e.g. "#llm-oncall"


# Routes of the kit's alerts: `critical` pages, `warning` opens a ticket.
ROUTES = ALERT_ROUTES
ALERTMANAGER_CONFIG_NAME = "modelyard"


def _receiver(name: str, spec: ReceiverSpec | None) -> dict[str, Any]:
    if spec is None:
        return {"name": name}
    ref = {"name": spec.secret_name, "key": spec.secret_key}
    if spec.kind is ReceiverKind.PAGERDUTY:
        return {"name": name, "pagerdutyConfigs": [{"routingKey": ref, "sendResolved": True}]}
    if spec.kind is ReceiverKind.SLACK:
        slack: dict[str, Any] = {"apiURL": ref, "sendResolved": True}
        if spec.slack_channel:
            slack["channel"] = spec.slack_channel
        return {"name": name, "slackConfigs": [slack]}
    return {"name": name, "webhookConfigs": [{"urlSecret": ref, "sendResolved": True}]}


def _equals(label: str, value: str) -> dict[str, str]:
    return {"name": label, "value": value, "matchType": "="}


def alertmanager_config(
    repeat_interval_hours: int, receivers: Mapping[str, ReceiverSpec] | None = None
) -> dict[str, Any]:
    """Alertmanager routing as an AlertmanagerConfig object (monitoring.coreos.com/v1alpha1), which the
    Alertmanager uses as its whole configuration (`alertmanagerSpec.alertmanagerConfiguration`).

    `critical` alerts go to the receiver `page`, `warning` to `ticket`, the always-firing Watchdog to
    `null`. A route without a receiver in `receivers` (keys of ROUTES) delivers nowhere: alerts still show in
    Alertmanager and Grafana. Receivers' URLs and keys are read from Secrets, never written here. A firing
    alert is sent again every `repeat_interval_hours` (monitoring.alertmanager.repeat_interval_hours).
    """
    receivers = receivers or {}
    unknown = set(receivers) - set(ROUTES)
    if unknown:
        raise ValueError(f"unknown alert routes {sorted(unknown)}; the routes are {', '.join(ROUTES)}")
    return {
        "apiVersion": "monitoring.coreos.com/v1alpha1",
        "kind": "AlertmanagerConfig",
        "metadata": {
            "name": ALERTMANAGER_CONFIG_NAME,
            "namespace": MONITORING_NAMESPACE,
            "labels": {"app.kubernetes.io/part-of": "modelyard"},
        },
        "spec": {
            "route": {
                "receiver": "null",
                "groupBy": ["alertname", "namespace", "model_name", "node"],
                "groupWait": "30s",
                "groupInterval": "5m",
                "repeatInterval": f"{repeat_interval_hours}h",
                "routes": [
                    {"receiver": "null", "matchers": [_equals("alertname", "Watchdog")]},
                    *(
                        {"receiver": route, "matchers": [_equals("severity", ROUTE_ALERT_SEVERITY[route])]}
                        for route in ROUTES
                    ),
                ],
            },
            "receivers": [{"name": "null"}, *(_receiver(name, receivers.get(name)) for name in ROUTES)],
            # A critical alert silences the warnings about the same namespace, node and model.
            "inhibitRules": [
                {
                    "sourceMatch": [_equals("severity", "critical")],
                    "targetMatch": [_equals("severity", "warning")],
                    "equal": ["namespace", "node", "model_name"],
                }
            ],
        },
    }


def monitoring_values(
    args: MonitoringArgs,
    *,
    image_mirrors: Mapping[str, str] | None = None,
    remote_write: RemoteWrite | None = None,
) -> dict[str, Any]:
    """Helm values for kube-prometheus-stack, sized by `args.prometheus` and `args.alertmanager`, its series
    labelled with `args.cluster_name` (the rest of `args` is the component's wiring).

    image_mirrors: registry host -> the registry serving its images (the ECR pull-through cache,
    `<account>.dkr.ecr.<region>.amazonaws.com/<prefix>`); hosts not in it are pulled directly.
    """
    values = _stack_values(args.prometheus, args.alertmanager, cluster_name=args.cluster_name)
    if remote_write is not None:
        _with_remote_write(values, remote_write)
    for path, host in KUBE_PROMETHEUS_STACK_IMAGES:
        if image_mirrors and host in image_mirrors:
            _set_path(values, path, "registry", image_mirrors[host])
    return values


def _stack_values(
    prometheus: PrometheusSettings, alertmanager: AlertmanagerSettings, *, cluster_name: str
) -> dict[str, Any]:
    small = _resources("50m", "64Mi")
    return {
        "fullnameOverride": KUBE_PROMETHEUS_STACK_RELEASE,
        # The CRDs are prometheus-operator-crds' (PROMETHEUS_OPERATOR_CRDS): the `crds` subchart (its crds/
        # folder and its upgrade job) stays out of this release.
        "crds": {"enabled": False},
        # EKS runs the control plane: scheduler, controller manager and etcd cannot be scraped, and
        # kube-proxy binds its metrics to localhost. Their targets would only ever be down.
        "kubeScheduler": {"enabled": False},
        "kubeControllerManager": {"enabled": False},
        "kubeEtcd": {"enabled": False},
        "kubeProxy": {"enabled": False},
        "defaultRules": {
            "create": True,
            "rules": {
                "etcd": False,
                "kubeSchedulerAlerting": False,
                "kubeSchedulerRecording": False,
                "kubeControllerManager": False,
                "kubeProxy": False,
                "windows": False,
            },
            # The kit's own rules (rules/cluster.yaml) cover these with GPU-node-aware thresholds and runbooks.
            "disabled": {"KubePodCrashLooping": True, "KubeNodeNotReady": True},
        },
        "windowsMonitoring": {"enabled": False},
        "prometheusOperator": {
            "resources": _resources("100m", "256Mi"),
            "affinity": OFF_GPU_NODES,
            "admissionWebhooks": {"patch": {"resources": small, "affinity": OFF_GPU_NODES}},
            "prometheusConfigReloader": {"resources": small},
        },
        "prometheus": {
            "prometheusSpec": {
                "replicas": prometheus.replicas,
                "retention": f"{prometheus.retention_days}d",
                "retentionSize": _retention_size(prometheus.storage_gib),
                "storageSpec": _pvc(prometheus.storage_gib),
                "resources": _resources(prometheus.cpu, prometheus.memory),
                "affinity": OFF_GPU_NODES,
                "externalLabels": {"cluster": cluster_name},
                # Select ServiceMonitors, PodMonitors and rules by SCRAPE_SELECTOR_LABELS in every namespace.
                "serviceMonitorSelectorNilUsesHelmValues": True,
                "podMonitorSelectorNilUsesHelmValues": True,
                "ruleSelectorNilUsesHelmValues": True,
            }
        },
        "alertmanager": {
            "enabled": True,
            "alertmanagerSpec": {
                # The kit's AlertmanagerConfig (alertmanager_config) is the whole configuration.
                "alertmanagerConfiguration": {"name": ALERTMANAGER_CONFIG_NAME},
                "replicas": alertmanager.replicas,
                "storage": _pvc(alertmanager.storage_gib),
                "resources": _resources("50m", "128Mi"),
                "affinity": OFF_GPU_NODES,
            },
        },
        "grafana": {
            "enabled": True,
            "defaultDashboardsTimezone": "utc",
            "resources": _resources("100m", "256Mi"),
            "affinity": OFF_GPU_NODES,
            # Dashboards are code: loaded from ConfigMaps by the sidecar, not edited in the UI.
            "sidecar": {
                "resources": small,
                "dashboards": {
                    "enabled": True,
                    "label": DASHBOARD_LABEL[0],
                    "labelValue": DASHBOARD_LABEL[1],
                    "searchNamespace": "ALL",
                    "provider": {"allowUiUpdates": False},
                },
            },
        },
        "kube-state-metrics": {
            "resources": _resources("50m", "256Mi"),
            "affinity": OFF_GPU_NODES,
            # Node labels the cost panels group by (instance type for the price, pool, zone).
            "metricLabelsAllowlist": [f"nodes=[{','.join(NODE_LABELS_FOR_COST)}]"],
        },
        "prometheus-node-exporter": {
            "resources": _resources("50m", "64Mi"),
            # node-exporter belongs on every node, GPU nodes included.
            "tolerations": [_GPU_TOLERATION, {"operator": "Exists", "effect": "NoSchedule"}],
        },
    }


def operator_crds_values() -> dict[str, Any]:
    """Helm values for prometheus-operator-crds: every CRD (its default), kept if the release goes (CRD_ANNOTATIONS)."""
    return {"crds": {"annotations": dict(CRD_ANNOTATIONS)}}


def dcgm_exporter_values(*, image_mirrors: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Helm values for the DCGM exporter: GPU nodes only, scraped through a ServiceMonitor."""
    host, _, path = DCGM_EXPORTER_IMAGE.partition("/")
    repository = f"{image_mirrors[host]}/{path}" if image_mirrors and host in image_mirrors else DCGM_EXPORTER_IMAGE
    return {
        "fullnameOverride": DCGM_EXPORTER_RELEASE,
        "image": {"repository": repository, "tag": DCGM_EXPORTER_IMAGE_TAG},
        "nodeSelector": {GPU_PRESENT_LABEL: "true"},
        "tolerations": [_GPU_TOLERATION],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
        "serviceMonitor": {
            "enabled": True,
            "interval": "15s",
            "additionalLabels": dict(SCRAPE_SELECTOR_LABELS),
            # The exporter's own pod/namespace labels name the GPU's workload; `node` names where it is,
            # which the "GPU missing" alert and the cost rules join on.
            "relabelings": [
                {
                    "sourceLabels": ["__meta_kubernetes_pod_node_name"],
                    "targetLabel": "node",
                    "action": "replace",
                }
            ],
        },
    }
