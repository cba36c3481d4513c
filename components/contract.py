"""The names the layers agree on: one definition, imported by every side that uses it.

The AWS layer (components/aws) creates nodes, roles and load balancers that the Kubernetes layer
(components/k8s) must select, bind or target by name; the cost engine and the policy rules read the same
names back from the plan. Each name lives here once, so a rename is one edit that reaches every reader
(a copied label string once priced a static GPU pool twice).

Only the standard library is imported here (tests/test_layers.py): the deploy runner's image build and every
layer load it without pulling Pulumi or a provider.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from enum import StrEnum
from types import MappingProxyType

# ---------------------------------------------------------------------------------------------------------
# Node labels and taints. Every node the kit creates carries POOL_LABEL: the system managed node group
# ("system"), Karpenter's GPU NodePools and the static GPU node groups (the pool's settings key).

POOL_LABEL = "modelyard.dev/pool"
SYSTEM_POOL = "system"
"""POOL_LABEL's value on the system node group, where every controller and the gateway run."""
GPU_LABEL = "modelyard.dev/gpu"
"""The GPU model of a GPU node (the catalog's name, "none" for a pool of GPU-less types)."""
TENANT_LABEL = "modelyard.dev/tenant"
"""Label and taint key of a pool dedicated to one tenant: only that tenant's pods may tolerate it."""
GPU_PRESENT_LABEL = "nvidia.com/gpu.present"
"""Where the NVIDIA device plugin's DaemonSet schedules (its chart's default node affinity)."""
GPU_TAINT_KEY = "nvidia.com/gpu"
"""Every GPU node is tainted NoSchedule with it: only pods that ask for GPUs land there."""
GPU_ROOT_VOLUME_GIB = 200
"""Root volume of every GPU node (GiB): vLLM images are about 10 GB and the kubelet keeps two generations."""
SYSTEM_ROOT_VOLUME_GIB = 50
"""Root volume of a system node (GiB): controllers' images and logs; the EKS default is 20."""


def system_node_selector() -> dict[str, str]:
    """The nodeSelector that pins a controller to the system nodes (a new dict: callers may extend it)."""
    return {POOL_LABEL: SYSTEM_POOL}


def pool_labels(pool: str, *, gpu_model: str, tenant: str | None) -> dict[str, str]:
    """The labels of a GPU pool's nodes, elastic (Karpenter's NodePool) or static (a managed node group)."""
    labels = {GPU_PRESENT_LABEL: "true", POOL_LABEL: pool, GPU_LABEL: gpu_model}
    if tenant:
        labels[TENANT_LABEL] = tenant
    return labels


def pool_taints(tenant: str | None) -> list[dict[str, str]]:
    """The taints of a GPU pool's nodes, in Kubernetes' spelling (EKS's API spells the effect NO_SCHEDULE)."""
    taints = [{"key": GPU_TAINT_KEY, "value": "true", "effect": "NoSchedule"}]
    if tenant:
        taints.append({"key": TENANT_LABEL, "value": tenant, "effect": "NoSchedule"})
    return taints


# ---------------------------------------------------------------------------------------------------------
# Namespaces and service accounts that IAM (Pod Identity associations, access entries) binds by name.

KARPENTER_NAMESPACE = "kube-system"
KARPENTER_SERVICE_ACCOUNT = "karpenter"
LOAD_BALANCER_CONTROLLER_NAMESPACE = "kube-system"
LOAD_BALANCER_CONTROLLER_SERVICE_ACCOUNT = "aws-load-balancer-controller"
MONITORING_NAMESPACE = "monitoring"
FLUENT_BIT_SERVICE_ACCOUNT = "aws-for-fluent-bit"
"""Fluent Bit's service account in MONITORING_NAMESPACE, bound to the container log group's write role."""
METRICS_QUERY_PROXY = "aps-query-proxy"
"""The SigV4 signing proxy in MONITORING_NAMESPACE through which a writing cell's Grafana queries the deployment's
metrics workspace: its Deployment, Service and service account, which the workspace's query role's Pod Identity
association names (components/k8s/monitoring/query_proxy.py, components/aws/metrics_workspace.py)."""
POD_IDENTITY_AGENT = "169.254.170.23/32"


def aps_workspaces_host(region: str) -> str:
    """The host of every Amazon Managed Service for Prometheus workspace of `region` (its user guide, endpoints):
    Prometheus writes there, the query proxy signs for it, and the metrics peering's private zone is named after it."""
    return f"aps-workspaces.{region}.amazonaws.com"


"""The EKS Pod Identity agent, link-local on every node, port 80: a pod holding an AWS role fetches its credentials
there, so its NetworkPolicy must admit it."""

GATEWAY_NAMESPACE = "gateway"
GATEWAY_NAME = "litellm"
"""The gateway's Deployment, Service and service account (its Bedrock role's Pod Identity association)."""
GATEWAY_PORT = 4000
"""The gateway's Service port, which the NLB's target group and the tenants' NetworkPolicies use."""
GATEWAY_LIVENESS_PATH = "/health/liveliness"
"""LiteLLM's liveness route (sic), which the NLB's health check asks too."""
GATEWAY_POD_LABELS: Mapping[str, str] = MappingProxyType({"app.kubernetes.io/name": GATEWAY_NAME})
"""The gateway pods' labels: its Deployment selects them, the tenants' NetworkPolicies admit them."""
GENERATION_TIMEOUT_SECONDS = 600
"""The longest a request may take end to end (long generations of a reasoning model run for minutes): the
gateway's request timeout, and what a stopping model server or gateway pod gets to finish the requests it holds."""
SERVER_PRE_STOP_SECONDS = 15
"""Seconds a stopping model server or gateway pod keeps serving (a preStop pause) while load balancers, Service
endpoints and clients stop sending it new requests."""
GATEWAY_DATABASE_PORT = 5432
"""The gateway's PostgreSQL (RDS): its security group admits it, the gateway's NetworkPolicy lets it out."""
GATEWAY_REDIS_PORT = 6379
"""The gateway's Valkey (ElastiCache), likewise."""

MODEL_SERVER_SERVICE_ACCOUNT = "model-server"
"""The model servers' service account in each tenant's namespace, bound to the tenant's read role."""
TENANT_NAMESPACE_PREFIX = "tenant-"


SERVING_CHART = "llm-serving"
"""The kit's serving chart (charts/llm-serving): one release per model, named after the model's settings key."""
VLLM_REQUESTS_RUNNING = "vllm:num_requests_running"
"""vLLM's gauge of the requests a server holds in its running batch (the pinned image's name: the monitoring
component's metrics.yaml lists it, with its source; a test keeps the two equal). The autoscaler reads it."""
VLLM_REQUESTS_WAITING = "vllm:num_requests_waiting"
"""vLLM's gauge of the requests a server holds waiting for a slot in the batch (likewise)."""


MAX_RELEASE_NAME = 53
"""Helm's limit on release names (they become label values and parts of object names)."""
CANARY_SUFFIX = "-canary"
REVISION_ALIAS_SEPARATOR = "@"
HYBRID_SUFFIX = "@hybrid"
"""`<model>@hybrid`: the gateway's name of a model's servers with a fallback to a proprietary API (tenants with
`data: external-allowed` call it through a key alias of `<model>`)."""
REVISION_LABEL = "modelyard.dev/revision"
"""The model revision a server runs: on its pods, and as the `revision` label of every series Prometheus scrapes
from it (the chart's ServiceMonitor), so dashboards, alerts and the autoscaler tell a canary from the stable set."""
REVISION_METRIC_LABEL = "revision"


# Quality in production (docs/lifecycle.md#quality-in-production): the eval runner's CronJob pushes one group of
# series per model to the Pushgateway; the alert rules and the dashboards read them by these names.
QUALITY_NAMESPACE = "quality"
QUALITY_RUNNER = "eval-runner"
"""The CronJob and its service account in QUALITY_NAMESPACE."""
PUSHGATEWAY_NAME = "pushgateway"
PUSHGATEWAY_PORT = 9091
QUALITY_JOB = "modelyard-quality"
"""The `job` label of every pushed series (the Pushgateway's grouping key, kept by the ServiceMonitor's honorLabels)."""
QUALITY_PASS_RATE = "modelyard_quality_pass_rate"
"""Gauge, labels model and set: passed / items of the model's last complete run (0-1)."""
QUALITY_MIN_PASS_RATE = "modelyard_quality_min_pass_rate"
"""Gauge: the model's quality.models.<m>.min_pass_rate, pushed beside the rate so the alert compares the two."""
QUALITY_ITEMS = "modelyard_quality_items"
"""Gauge: items in the set of the last complete run."""
QUALITY_ITEMS_PASSED = "modelyard_quality_items_passed"
"""Gauge: items the model passed in its last complete run."""
QUALITY_LAST_SUCCESS = "modelyard_quality_last_success_timestamp_seconds"
"""Gauge: Unix time the last complete run ended."""
QUALITY_RUN_SUCCEEDED = "modelyard_quality_last_run_succeeded"
"""Gauge: 1 when the model's last run graded every item, 0 when the gateway refused or failed a request (the last
complete run's rate stays as it was)."""
QUALITY_MAX_DROP = "modelyard_quality_max_drop"
"""Gauge: the model's quality.models.<m>.max_drop, pushed beside the rate: ModelQualityDropped fires when the rate
falls more than this below its best of the window, CanaryQualityWorse when a canary's is this far below its stable's."""
QUALITY_TRACK_LABEL = "track"
"""Label of every pushed series besides `model`, `revision` (REVISION_METRIC_LABEL) and `set`: which server set of
the model the revision is, QUALITY_TRACK_STABLE or QUALITY_TRACK_CANARY (a model without a canary: stable)."""
QUALITY_TRACK_STABLE = "stable"
QUALITY_TRACK_CANARY = "canary"
QUALITY_GROUPING_LABELS = ("model", REVISION_METRIC_LABEL)
"""The Pushgateway's grouping key of one graded revision, after `job`: /metrics/job/<job>/model/<m>/revision/<r>."""


def gateway_url() -> str:
    """The gateway's address inside the cluster (its Service)."""
    return f"http://{GATEWAY_NAME}.{GATEWAY_NAMESPACE}.svc.cluster.local:{GATEWAY_PORT}"


def pushgateway_url() -> str:
    """The Pushgateway's address inside the cluster (its Service in QUALITY_NAMESPACE)."""
    return f"http://{PUSHGATEWAY_NAME}.{QUALITY_NAMESPACE}.svc.cluster.local:{PUSHGATEWAY_PORT}"


def canary_release(model: str) -> str:
    """The Helm release of a model's canary (models.<m>.canary): beside the stable release `<model>`, same namespace."""
    return f"{model}{CANARY_SUFFIX}"


def revision_alias(model: str, revision: str) -> str:
    """The gateway's name for one revision of a model (`<model>@<revision>`): what `modelyard eval` addresses, so a
    canary and its stable servers can be compared through the gateway while clients keep calling `<model>`."""
    return f"{model}{REVISION_ALIAS_SEPARATOR}{revision}"


def revision_aliases(model: str, stable_revision: str, canary_revision: str) -> tuple[str, str]:
    """The gateway's names of a model with a canary, one per server set: (stable, canary)."""
    return revision_alias(model, stable_revision), revision_alias(model, canary_revision)


def tenant_model_names(
    models: Iterable[str], *, fallback_models: Iterable[str], canaries: Mapping[str, tuple[str, str]]
) -> list[str]:
    """Every model name a tenant's keys may call at the gateway: its models, `<model>@hybrid` for those it may fall
    back on, and for each of its models with a canary (`canaries`: model -> (stable revision, canary revision)) both
    `<model>@<revision>` names. The gateway's tenants file lists exactly these; the settings check the quality
    runner's key against them."""
    own = sorted(models)
    return (
        own
        + [m + HYBRID_SUFFIX for m in fallback_models]
        + [name for m in own if m in canaries for name in revision_aliases(m, *canaries[m])]
    )


def quality_targets(model: str, stable_revision: str, canary_revision: str | None) -> list[tuple[str, str, str]]:
    """What the quality runner grades for one model, as (the name it calls at the gateway, revision, track): the
    model's name alone without a canary; with one, each server set alone by its `<model>@<revision>` name, so neither
    rate is the traffic-weighted mix of the two. The settings check the runner's key may call every name."""
    if canary_revision is None:
        return [(model, stable_revision, QUALITY_TRACK_STABLE)]
    stable, canary = revision_aliases(model, stable_revision, canary_revision)
    return [(stable, stable_revision, QUALITY_TRACK_STABLE), (canary, canary_revision, QUALITY_TRACK_CANARY)]


def serving_fullname(release: str) -> str:
    """The name of a serving release's objects (Deployment, Service, ...), as the chart's `llm-serving.fullname`
    gives it: the release alone when it holds the chart's name, else `<release>-llm-serving`, within 63."""
    name = release if SERVING_CHART in release else f"{release}-{SERVING_CHART}"
    return name[:63].rstrip("-")


def tenant_namespace(tenant: str) -> str:
    """A tenant's namespace: its servers, quota and NetworkPolicies live there."""
    return f"{TENANT_NAMESPACE_PREFIX}{tenant}"


def subnet_layout(cidr: str, zones: int) -> tuple[list[str], list[str]]:
    """(private CIDRs, public CIDRs), one per zone, for a VPC of /N over Z zones (Z = 2 or 3), fixed so that
    adding nothing moves nothing:
      - the VPC is cut in four blocks of /N+2; block i (i < 3) is the private subnet of zone i: nodes, pods
        (VPC CNI gives every pod a VPC address, so this is where the space goes) and internal load balancers;
      - block 3 is cut in four /N+4; the i-th is zone i's public subnet (NAT gateways, internet-facing load
        balancers).
    The Network creates the subnets; the gateway's NetworkPolicy admits its load balancer's subnets by them."""
    vpc = ipaddress.IPv4Network(cidr)
    blocks = list(vpc.subnets(prefixlen_diff=2))
    public = list(blocks[3].subnets(prefixlen_diff=2))
    return [str(b) for b in blocks[:zones]], [str(b) for b in public[:zones]]


# EKS access policies granted through access entries.
CLUSTER_ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
VIEW_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"

# Alert routes, by the severity of what is sent: Alertmanager sends the kit's `critical` alerts to PAGE_ROUTE and
# its `warning` alerts to TICKET_ROUTE (Kubernetes layer); the GuardDuty findings forwarder sends high and critical
# findings to PAGE_ROUTE, the rest to TICKET_ROUTE (AWS layer). monitoring.receivers is keyed by these.
PAGE_ROUTE = "page"
TICKET_ROUTE = "ticket"
ALERT_ROUTES = (PAGE_ROUTE, TICKET_ROUTE)
ROUTE_ALERT_SEVERITY: Mapping[str, str] = MappingProxyType({PAGE_ROUTE: "critical", TICKET_ROUTE: "warning"})
"""The `severity` label of the alerts each route carries (what a receiver sees in Alertmanager's payload)."""

PUBLIC_LB_MARK = ("modelyard.dev/exposure", "public-load-balancer")
"""The tag (key, value) on a load balancer meant to face the internet: the policy rules let only it be public."""


class ChartSource(StrEnum):
    """Where the Kubernetes provider takes upstream charts from (deploy.charts)."""

    UPSTREAM = "upstream"  # their repositories, at preview and up: whoever runs Pulumi needs a way out
    BUNDLED = "bundled"  # the .tgz files baked into the deploy runner's image (components/k8s/charts.py)


# ---------------------------------------------------------------------------------------------------------
# What the offline plan prints in place of a value: the engine writes them, the diff and the rules read them.

UNKNOWN = "(known after apply)"
"""An output known only after `pulumi up` (a rule treats it as undecided, never as a violation)."""
SECRET = "[secret]"
"""A secret input or a Secret's data: never printed."""
