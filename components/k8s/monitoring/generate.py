"""Generate the monitoring files that derive from code or the catalog; a test keeps them in step.

- ``rules/cost.yaml``: one price series per GPU instance type of the catalog (on-demand $/hr), and the
  cost rules built on them: $/hr per node, per pod and per model, and cost per million output tokens.
- ``dashboards/{serving,gateway,gpus,cost}.json``: the Grafana dashboards of a cell's own Prometheus, and
  ``dashboards/cells.json``: every cell side by side, from the deployment's metrics workspace (docs/regions.md).

Run ``python -m components.k8s.monitoring.generate`` after changing the catalog or this file.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import yaml

from components import catalog
from components.contract import ALERT_ROUTES, ROUTE_ALERT_SEVERITY
from components.contract import REVISION_METRIC_LABEL as REVISION
from components.k8s.monitoring.assets import DASHBOARDS_DIR, RULES_DIR
from components.k8s.monitoring.values import (
    DCGM_JOB,
    DEPLOYMENT_DATASOURCE,
    GATEWAY_JOB,
    GATEWAY_JOB_NAMESPACE,
    KUBE_PROMETHEUS_STACK_RELEASE,
    MONITORING_NAMESPACE,
    SERVING_CONTAINER,
    VLLM_VERSION,
)

PRICE_RECORD = "modelyard:instance_type_price_usd_per_hour"
COST_FILE = RULES_DIR / "cost.yaml"

# kube_node_labels with the allow-listed node labels (values.py NODE_LABELS_FOR_COST), renamed for joins.
_NODE_LABELS = (
    'label_replace(label_replace(kube_node_labels, "instance_type", "$1", '
    '"label_node_kubernetes_io_instance_type", "(.+)"), "nodepool", "$1", "label_karpenter_sh_nodepool", "(.*)")'
)
_GPU_CAPACITY = 'kube_node_status_capacity{resource="nvidia_com_gpu"}'

COST_RULES: tuple[tuple[str, str], ...] = (
    # What each node bills per hour, by its instance type (nodes of types the catalog does not price are absent).
    (
        "modelyard:node_price_usd_per_hour",
        f"max by (node, instance_type, nodepool) ({_NODE_LABELS})\n* on (instance_type) group_left () {PRICE_RECORD}",
    ),
    ("modelyard:gpu_cost_usd_per_hour", "sum (modelyard:node_price_usd_per_hour)"),
    ("modelyard:gpus", f"sum ({_GPU_CAPACITY})"),
    # A pod's share of its node: the GPUs it requests times the node's price per GPU.
    (
        "modelyard:pod_gpu_cost_usd_per_hour",
        'sum by (namespace, pod, node) (kube_pod_container_resource_requests{resource="nvidia_com_gpu"})\n'
        "* on (node) group_left (instance_type, nodepool)\n"
        f"(modelyard:node_price_usd_per_hour / on (node) group_left () sum by (node) ({_GPU_CAPACITY}))",
    ),
    (
        "modelyard:model_gpu_cost_usd_per_hour",
        "sum by (namespace, model_name) (\n"
        "  modelyard:pod_gpu_cost_usd_per_hour\n"
        "  * on (namespace, pod) group_left (model_name)\n"
        "  group by (namespace, pod, model_name) (vllm:num_requests_running)\n"
        ")",
    ),
    (
        "modelyard:model_output_tokens_per_second",
        "sum by (namespace, model_name) (rate(vllm:generation_tokens_total[5m]))",
    ),
    # $ per million output tokens = $/hr / (tokens/s * 3600) * 1e6; absent while a model generates nothing.
    (
        "modelyard:model_cost_per_million_output_tokens_usd",
        "modelyard:model_gpu_cost_usd_per_hour\n"
        "/ on (namespace, model_name) (modelyard:model_output_tokens_per_second * 3600 > 0)\n"
        "* 1e6",
    ),
    # The whole GPU bill over all output tokens: idle GPUs count, which is the point.
    (
        "modelyard:cost_per_million_output_tokens_usd",
        "modelyard:gpu_cost_usd_per_hour\n/ (sum (modelyard:model_output_tokens_per_second) * 3600 > 0)\n* 1e6",
    ),
)


def instance_prices() -> dict[str, Decimal]:
    """On-demand $/hr of every GPU instance type the catalog prices."""
    return {
        name: instance.on_demand_usd_per_hour
        for name, instance in sorted(catalog.instances().items())
        if instance.gpu is not None and instance.on_demand_usd_per_hour is not None
    }


class _Literal(str):
    """A multi-line string YAML writes as a block."""


def _literal(dumper: yaml.SafeDumper, value: _Literal) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


yaml.SafeDumper.add_representer(_Literal, _literal)


def cost_rule() -> dict[str, Any]:
    prices = [
        {"record": PRICE_RECORD, "expr": f"vector({price})", "labels": {"instance_type": name}}
        for name, price in instance_prices().items()
    ]
    derived = [{"record": record, "expr": _Literal(expr)} for record, expr in COST_RULES]
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "modelyard-cost",
            "namespace": MONITORING_NAMESPACE,
            "labels": {"release": KUBE_PROMETHEUS_STACK_RELEASE, "app.kubernetes.io/part-of": "modelyard"},
        },
        "spec": {
            "groups": [
                {"name": "modelyard.cost.prices", "rules": prices},
                {"name": "modelyard.cost", "rules": derived},
            ]
        },
    }


def render_cost_rules() -> str:
    header = (
        "# GENERATED by `python -m components.k8s.monitoring.generate` from components/catalog/instances.yaml\n"
        "# (on-demand us-east-1 prices, each with its source there). Do not edit: change the catalog and rerun.\n"
        "# Spot and reserved nodes are priced on demand here: an upper bound.\n"
    )
    return header + yaml.safe_dump(cost_rule(), sort_keys=False, width=120)


# --- dashboards ---------------------------------------------------------------------------------------

_DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def query_variable(
    name: str,
    label: str,
    query: str,
    *,
    include_all: bool = True,
    datasource: dict[str, str] = _DATASOURCE,
    all_by_default: bool = False,
) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": datasource,
        "definition": query,
        "query": {"query": query, "refId": name},
        "refresh": 2,
        "includeAll": include_all,
        "multi": include_all,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]} if all_by_default else {},
        "sort": 1,
    }


def _datasource_variable() -> dict[str, Any]:
    return {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus", "current": {}}


def panel(
    panel_id: int,
    title: str,
    targets: Sequence[tuple[str, str]],
    *,
    x: int,
    y: int,
    w: int = 12,
    h: int = 8,
    unit: str = "short",
    kind: str = "timeseries",
    description: str = "",
    instant: bool = False,
    datasource: dict[str, str] = _DATASOURCE,
) -> dict[str, Any]:
    return {
        "id": panel_id,
        "type": kind,
        "title": title,
        "description": description,
        "datasource": datasource,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {},
        "targets": [
            {
                "refId": chr(ord("A") + index),
                "datasource": datasource,
                "expr": expr,
                "legendFormat": legend,
                **({"instant": True, "range": False, "format": "table"} if instant else {}),
            }
            for index, (expr, legend) in enumerate(targets)
        ],
    }


def dashboard(
    uid: str,
    title: str,
    description: str,
    variables: list[dict[str, Any]],
    panels: list[dict[str, Any]],
    *,
    datasource_variable: bool = True,
):
    """A dashboard; with `datasource_variable`, its panels read the Prometheus data source chosen in a variable."""
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["modelyard"],
        "timezone": "utc",
        "editable": False,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "1m",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [*([_datasource_variable()] if datasource_variable else []), *variables]},
        "annotations": {"list": []},
        "panels": panels,
    }


def serving_dashboard() -> dict[str, Any]:
    # Every series of a model server carries its revision (the chart's ServiceMonitor copies the pod label
    # REVISION_LABEL): the traffic, error and latency panels split by it, so a canary shows beside its stable set.
    sel = f'namespace=~"$namespace", model_name=~"$model", {REVISION}=~"$revision"'
    rate = "[$__rate_interval]"
    by = f"model_name, {REVISION}"
    legend = f"{{{{model_name}}}} {{{{{REVISION}}}}}"

    def quantile(q: float, family: str) -> tuple[str, str]:
        expr = f"histogram_quantile({q}, sum by ({by}, le) (rate({family}_bucket{{{sel}}}{rate})))"
        return expr, f"{legend} p{int(q * 100)}"

    panels = [
        panel(
            1,
            "Requests per second (finished)",
            [
                (
                    f"sum by ({by}, finished_reason) (rate(vllm:request_success_total{{{sel}}}{rate}))",
                    f"{legend} {{{{finished_reason}}}}",
                )
            ],
            x=0,
            y=0,
            unit="reqps",
        ),
        panel(
            2,
            "Errors",
            [
                (
                    f"sum by ({by}, finished_reason) "
                    f'(rate(vllm:request_success_total{{{sel}, finished_reason=~"abort|error"}}{rate}))',
                    f"{legend} {{{{finished_reason}}}}",
                ),
                (
                    f'sum by (namespace, {REVISION}) (rate(http_requests_total{{container="{SERVING_CONTAINER}", '
                    f'namespace=~"$namespace", {REVISION}=~"$revision", status="5xx"}}{rate}))',
                    f"{{{{namespace}}}} {{{{{REVISION}}}}} HTTP 5xx",
                ),
            ],
            x=12,
            y=0,
            unit="reqps",
            description="Requests vLLM finished as abort or error, and HTTP 5xx answers of the model servers, by "
            "revision.",
        ),
        panel(
            3,
            "Time to first token",
            [quantile(0.5, "vllm:time_to_first_token_seconds"), quantile(0.95, "vllm:time_to_first_token_seconds")],
            x=0,
            y=8,
            unit="s",
            description="By revision. Objective: 99% of requests within 2.5 s (alerts TtftBudgetBurnFast/Slow; "
            "RevisionTtftWorse compares a model's revisions).",
        ),
        panel(
            4,
            "Inter-token latency",
            [quantile(0.5, "vllm:inter_token_latency_seconds"), quantile(0.95, "vllm:inter_token_latency_seconds")],
            x=12,
            y=8,
            unit="s",
        ),
        panel(
            5,
            "Output tokens per second",
            [
                (f"sum by ({by}) (rate(vllm:generation_tokens_total{{{sel}}}{rate}))", f"{legend} output"),
                (f"sum by ({by}) (rate(vllm:prompt_tokens_total{{{sel}}}{rate}))", f"{legend} prompt"),
            ],
            x=0,
            y=16,
        ),
        panel(
            6,
            "Requests waiting and running",
            [
                (f"sum by (model_name) (vllm:num_requests_waiting{{{sel}}})", "{{model_name}} waiting"),
                (f"sum by (model_name) (vllm:num_requests_running{{{sel}}})", "{{model_name}} running"),
            ],
            x=12,
            y=16,
        ),
        panel(
            7,
            "KV cache use",
            [(f"max by (model_name, pod) (vllm:kv_cache_usage_perc{{{sel}}})", "{{model_name}} {{pod}}")],
            x=0,
            y=24,
            unit="percentunit",
            description="Above 90% for 20 minutes raises KvCacheSaturated.",
        ),
        panel(
            8,
            "Preemptions per second",
            [(f"sum by (model_name) (rate(vllm:num_preemptions_total{{{sel}}}{rate}))", "{{model_name}}")],
            x=12,
            y=24,
        ),
        panel(
            9,
            "Share of requests over the TTFT objective (1h)",
            [("namespace_model_name:vllm_ttft_over_objective:ratio_rate1h{" + sel + "}", "{{model_name}}")],
            x=0,
            y=32,
            unit="percentunit",
        ),
        panel(
            10,
            "Model servers up",
            [(f'sum by (namespace) (up{{container="{SERVING_CONTAINER}", namespace=~"$namespace"}})', "{{namespace}}")],
            x=12,
            y=32,
        ),
    ]
    variables = [
        query_variable("namespace", "Namespace", "label_values(vllm:num_requests_running, namespace)"),
        query_variable(
            "model", "Model", 'label_values(vllm:num_requests_running{namespace=~"$namespace"}, model_name)'
        ),
        query_variable(
            REVISION,
            "Revision",
            f'label_values(vllm:num_requests_running{{namespace=~"$namespace", model_name=~"$model"}}, {REVISION})',
        ),
    ]
    return dashboard(
        "modelyard-serving",
        "modelyard / Serving",
        f"vLLM model servers (metric names as vLLM {VLLM_VERSION} exposes them).",
        variables,
        panels,
    )


def gateway_dashboard() -> dict[str, Any]:
    """The LiteLLM gateway: per tenant (`user`, set to the key's tenant) and model (`requested_model`).
    Its series exist only with gateway.master_key (the ServiceMonitor needs the scrape token)."""
    job = f'job="{GATEWAY_JOB}", namespace="{GATEWAY_JOB_NAMESPACE}"'
    sel = f'{job}, user=~"$tenant", requested_model=~"$model"'
    rate = "[$__rate_interval]"
    total = "litellm_proxy_total_requests_metric_total"
    failed = "litellm_proxy_failed_requests_metric_total"

    def quantile(q: float) -> tuple[str, str]:
        expr = (
            f"histogram_quantile({q}, sum by (requested_model, le) "
            f"(rate(litellm_request_total_latency_metric_bucket{{{sel}}}{rate})))"
        )
        return expr, f"{{{{requested_model}}}} p{int(q * 100)}"

    panels = [
        panel(
            1,
            "Requests per second by tenant and model",
            [(f"sum by (user, requested_model) (rate({total}{{{sel}}}{rate}))", "{{user}} {{requested_model}}")],
            x=0,
            y=0,
            unit="reqps",
        ),
        panel(
            2,
            "Failed requests by status",
            [
                (
                    f"sum by (user, requested_model, exception_status) (rate({failed}{{{sel}}}{rate}))",
                    "{{user}} {{requested_model}} {{exception_status}}",
                )
            ],
            x=12,
            y=0,
            unit="reqps",
            description="Requests the gateway answered with an error, by HTTP status (429: rate limited).",
        ),
        panel(
            3,
            "Share of requests failing (429 left out)",
            [
                (
                    f'sum (rate({failed}{{{job}, exception_status!="429"}}{rate}))'
                    f" / sum (rate({total}{{{job}}}{rate}))",
                    "all tenants",
                )
            ],
            x=0,
            y=8,
            unit="percentunit",
            description="Above 5% over 10 minutes, at over 0.1 requests a second, raises GatewayErrorRateHigh.",
        ),
        panel(
            4,
            "Rate limited (429) by tenant",
            [(f'sum by (user) (rate({failed}{{{sel}, exception_status="429"}}{rate}))', "{{user}}")],
            x=12,
            y=8,
            unit="reqps",
            description="Over 10% of a tenant's requests for 15 minutes raises GatewayTenantRateLimited.",
        ),
        panel(
            5,
            "Fallbacks to a provider",
            [
                (
                    "sum by (api_key_alias, requested_model, fallback_model) "
                    f"(increase(litellm_deployment_successful_fallbacks_total{{{job}}}{rate}))",
                    "{{api_key_alias}} {{requested_model}} -> {{fallback_model}}",
                ),
                (
                    "sum by (api_key_alias, requested_model, fallback_model) "
                    f"(increase(litellm_deployment_failed_fallbacks_total{{{job}}}{rate}))",
                    "{{api_key_alias}} {{requested_model}} -> {{fallback_model}} (failed)",
                ),
            ],
            x=0,
            y=16,
            description=(
                "Requests answered (or not) by the proprietary fallback after the self-hosted servers failed: "
                "prompts leaving the VPC (GatewayFallingBackToProvider). By key: the metric has no tenant label."
            ),
        ),
        panel(
            6,
            "End-to-end latency at the gateway",
            [quantile(0.5), quantile(0.95)],
            x=12,
            y=16,
            unit="s",
            description="From the request reaching the proxy to the end of its processing (auth, hooks, the model).",
        ),
        panel(
            7,
            "Gateway targets up",
            [(f"sum (up{{{job}}})", "up")],
            x=0,
            y=24,
            w=24,
            description="None up for 5 minutes raises GatewayDown.",
        ),
    ]
    variables = [
        query_variable("tenant", "Tenant", f"label_values({total}{{{job}}}, user)"),
        query_variable("model", "Model", f'label_values({total}{{{job}, user=~"$tenant"}}, requested_model)'),
    ]
    return dashboard(
        "modelyard-gateway",
        "modelyard / Gateway",
        "The LiteLLM gateway: requests, failures, rate limits and fallbacks per tenant and model "
        "(only with gateway.master_key).",
        variables,
        panels,
    )


def gpus_dashboard() -> dict[str, Any]:
    sel = 'node=~"$node"'
    panels = [
        panel(
            1, "GPU utilisation", [(f"DCGM_FI_DEV_GPU_UTIL{{{sel}}}", "{{node}} gpu{{gpu}}")], x=0, y=0, unit="percent"
        ),
        panel(
            2,
            "GPU memory used",
            [
                (
                    f"DCGM_FI_DEV_FB_USED{{{sel}}} / (DCGM_FI_DEV_FB_USED{{{sel}}} + DCGM_FI_DEV_FB_FREE{{{sel}}})",
                    "{{node}} gpu{{gpu}}",
                )
            ],
            x=12,
            y=0,
            unit="percentunit",
            description="vLLM reserves most GPU memory for its KV cache at start: high and flat is normal.",
        ),
        panel(
            3, "GPU temperature", [(f"DCGM_FI_DEV_GPU_TEMP{{{sel}}}", "{{node}} gpu{{gpu}}")], x=0, y=8, unit="celsius"
        ),
        panel(4, "Power draw", [(f"DCGM_FI_DEV_POWER_USAGE{{{sel}}}", "{{node}} gpu{{gpu}}")], x=12, y=8, unit="watt"),
        panel(
            5,
            "Last XID error (0: none)",
            [(f"DCGM_FI_DEV_XID_ERRORS{{{sel}}}", "{{node}} gpu{{gpu}}")],
            x=0,
            y=16,
            description="See docs/runbooks/GpuXidError.md for what each XID means.",
        ),
        panel(
            6,
            "Tensor core activity",
            [(f"DCGM_FI_PROF_PIPE_TENSOR_ACTIVE{{{sel}}}", "{{node}} gpu{{gpu}}")],
            x=12,
            y=16,
            unit="percentunit",
        ),
        panel(
            7,
            "GPUs per node: advertised vs reporting",
            [
                (f'sum by (node) (kube_node_status_capacity{{resource="nvidia_com_gpu", {sel}}})', "{{node}} capacity"),
                (f'count by (node) (DCGM_FI_DEV_GPU_TEMP{{job="{DCGM_JOB}", {sel}}})', "{{node}} reporting"),
            ],
            x=0,
            y=24,
            w=24,
        ),
    ]
    variables = [query_variable("node", "Node", "label_values(DCGM_FI_DEV_GPU_TEMP, node)")]
    return dashboard("modelyard-gpus", "modelyard / GPUs", "GPU health from the DCGM exporter.", variables, panels)


def cost_dashboard() -> dict[str, Any]:
    hours = "$__range_s / 3600"
    panels = [
        panel(
            1,
            "GPU spend now",
            [("modelyard:gpu_cost_usd_per_hour", "$/hr")],
            x=0,
            y=0,
            w=6,
            h=5,
            unit="currencyUSD",
            kind="stat",
            description="Every GPU node priced at its on-demand rate from the kit's catalog.",
        ),
        panel(2, "GPUs now", [("modelyard:gpus", "GPUs")], x=6, y=0, w=6, h=5, kind="stat"),
        panel(
            3,
            "GPU hours in range",
            [(f"avg_over_time(modelyard:gpus[$__range]) * {hours}", "GPU hours")],
            x=12,
            y=0,
            w=6,
            h=5,
            kind="stat",
        ),
        panel(
            4,
            "GPU spend in range",
            [(f"avg_over_time(modelyard:gpu_cost_usd_per_hour[$__range]) * {hours}", "$")],
            x=18,
            y=0,
            w=6,
            h=5,
            unit="currencyUSD",
            kind="stat",
        ),
        panel(
            5,
            "Cost per million output tokens (all GPUs)",
            [("modelyard:cost_per_million_output_tokens_usd", "all models")],
            x=0,
            y=5,
            unit="currencyUSD",
            description="GPU $/hr / (output tokens/s x 3600) x 1e6, idle GPUs included.",
        ),
        panel(
            6,
            "Cost per million output tokens by model",
            [
                (
                    'modelyard:model_cost_per_million_output_tokens_usd{namespace=~"$namespace"}',
                    "{{namespace}}/{{model_name}}",
                )
            ],
            x=12,
            y=5,
            unit="currencyUSD",
            description="The GPUs a model's pods request, priced per GPU of their node, over its output tokens.",
        ),
        panel(
            7,
            "$/hr by instance type",
            [("sum by (instance_type) (modelyard:node_price_usd_per_hour)", "{{instance_type}}")],
            x=0,
            y=13,
            unit="currencyUSD",
        ),
        panel(
            8,
            "$/hr by node pool",
            [("sum by (nodepool) (modelyard:node_price_usd_per_hour)", "{{nodepool}}")],
            x=12,
            y=13,
            unit="currencyUSD",
        ),
        panel(
            9,
            "$/hr on idle GPU nodes (no GPU above 5% now)",
            [
                (
                    "sum (modelyard:node_price_usd_per_hour"
                    " * on (node) group_left () (max by (node) (DCGM_FI_DEV_GPU_UTIL) < bool 5))",
                    "idle",
                )
            ],
            x=0,
            y=21,
            unit="currencyUSD",
        ),
        panel(
            10,
            "Catalog prices (on-demand $/hr)",
            [(PRICE_RECORD, "{{instance_type}}")],
            x=12,
            y=21,
            kind="table",
            unit="currencyUSD",
            instant=True,
        ),
    ]
    variables = [
        query_variable("namespace", "Namespace", "label_values(modelyard:model_gpu_cost_usd_per_hour, namespace)")
    ]
    return dashboard(
        "modelyard-cost",
        "modelyard / Cost",
        "GPU hours and $ per million tokens, priced from the kit's catalog.",
        variables,
        panels,
    )


# The Cells dashboard reads Grafana's "deployment" data source (values.deployment_datasource), never the cell's own.
_DEPLOYMENT = {"type": "prometheus", "uid": DEPLOYMENT_DATASOURCE}


def cells_dashboard() -> dict[str, Any]:
    """Every cell of the deployment side by side, from the metrics workspace its cells write to: every series there
    carries the external labels `cell` and `region` (values._with_remote_write). A pinned tenant's series are not
    there (dropped before they leave its cell)."""
    cells = 'cell=~"$cell", region=~"$region"'
    gateway = f'job="{GATEWAY_JOB}", namespace="{GATEWAY_JOB_NAMESPACE}", {cells}'
    rate = "[$__rate_interval]"
    total = "litellm_proxy_total_requests_metric_total"
    failed = "litellm_proxy_failed_requests_metric_total"
    severities = "|".join(ROUTE_ALERT_SEVERITY[route] for route in ALERT_ROUTES)

    def cell_panel(panel_id: int, title: str, targets: Sequence[tuple[str, str]], **kwargs: Any) -> dict[str, Any]:
        return panel(panel_id, title, targets, datasource=_DEPLOYMENT, **kwargs)

    panels = [
        cell_panel(
            1,
            "Gateway requests per second by cell",
            [(f"sum by (cell) (rate({total}{{{gateway}}}{rate}))", "{{cell}}")],
            x=0,
            y=0,
            unit="reqps",
            description="Requests the cell's LiteLLM gateway received (only with gateway.master_key).",
        ),
        cell_panel(
            2,
            "Gateway error rate by cell (429 left out)",
            [
                (
                    f'sum by (cell) (rate({failed}{{{gateway}, exception_status!="429"}}{rate}))'
                    f" / sum by (cell) (rate({total}{{{gateway}}}{rate}))",
                    "{{cell}}",
                )
            ],
            x=12,
            y=0,
            unit="percentunit",
            description="The share GatewayErrorRateHigh watches in each cell (above 5% over 10 minutes).",
        ),
        cell_panel(
            3,
            "Time to first token p95 by cell and model",
            [
                (
                    "histogram_quantile(0.95, sum by (cell, model_name, le) "
                    f"(rate(vllm:time_to_first_token_seconds_bucket{{{cells}}}{rate})))",
                    "{{cell}} {{model_name}}",
                )
            ],
            x=0,
            y=8,
            unit="s",
            description="All revisions of a model in a cell together (the Serving dashboard of a cell splits them).",
        ),
        cell_panel(
            4,
            "Requests running and waiting by cell and model",
            [
                (
                    f"sum by (cell, model_name) (vllm:num_requests_running{{{cells}}})",
                    "{{cell}} {{model_name}} running",
                ),
                (
                    f"sum by (cell, model_name) (vllm:num_requests_waiting{{{cells}}})",
                    "{{cell}} {{model_name}} waiting",
                ),
            ],
            x=12,
            y=8,
        ),
        cell_panel(
            5,
            "GPU utilisation by cell",
            [(f"avg by (cell) (DCGM_FI_DEV_GPU_UTIL{{{cells}}})", "{{cell}}")],
            x=0,
            y=16,
            unit="percent",
            description="The mean over every GPU the cell's DCGM exporter reports.",
        ),
        cell_panel(
            6,
            "Ready model server replicas by cell and model",
            [
                (
                    f'sum by (cell, model_name) (kube_pod_status_ready{{condition="true", {cells}}}'
                    " * on (cell, namespace, pod) group_left (model_name) "
                    f"group by (cell, namespace, pod, model_name) (vllm:num_requests_running{{{cells}}}))",
                    "{{cell}} {{model_name}}",
                )
            ],
            x=12,
            y=16,
            description="Pods ready by Kubernetes among those serving a model (a pod loading its model has no vLLM "
            "series yet and is not counted).",
        ),
        cell_panel(
            7,
            "Firing alerts by cell",
            [
                (
                    f'count by (cell, severity) (ALERTS{{alertstate="firing", severity=~"{severities}", {cells}}})',
                    "{{cell}} {{severity}}",
                )
            ],
            x=0,
            y=24,
            w=24,
            description="The kit's alerts (critical pages, warning opens a ticket) firing in each cell's Prometheus; "
            "each cell's Alertmanager routes its own.",
        ),
    ]
    variables = [
        query_variable("region", "Region", "label_values(up, region)", datasource=_DEPLOYMENT, all_by_default=True),
        query_variable(
            "cell", "Cell", 'label_values(up{region=~"$region"}, cell)', datasource=_DEPLOYMENT, all_by_default=True
        ),
    ]
    return dashboard(
        "modelyard-cells",
        "modelyard / Cells",
        'Every cell of the deployment side by side, from its metrics workspace (docs/regions.md, "Observability '
        'across regions"); a tenant pinned to regions without the workspace is not in it.',
        variables,
        panels,
        datasource_variable=False,
    )


DASHBOARDS = {
    "serving.json": serving_dashboard,
    "gateway.json": gateway_dashboard,
    "gpus.json": gpus_dashboard,
    "cost.json": cost_dashboard,
    "cells.json": cells_dashboard,
}


def render_dashboard(name: str) -> str:
    return json.dumps(DASHBOARDS[name](), indent=2, sort_keys=True) + "\n"


def generated_files() -> dict[str, str]:
    """Path relative to the monitoring package -> content."""
    files = {f"rules/{COST_FILE.name}": render_cost_rules()}
    files.update({f"dashboards/{name}": render_dashboard(name) for name in DASHBOARDS})
    return files


def main() -> int:
    base = RULES_DIR.parent
    for relative, text in generated_files().items():
        (base / relative).write_text(text)
        print(f"wrote {relative}")
    assert DASHBOARDS_DIR.is_dir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
