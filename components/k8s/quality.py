"""Quality in production (docs/lifecycle.md#quality-in-production): eval sets through the gateway on a schedule.

One namespace, `quality` (Pod Security restricted), holds:

- the eval runner, a CronJob whose pod runs `python -m components.tools.quality` from an image the team builds
  (deploy/eval-runner/Dockerfile; `quality.image`, pinned by digest): every model's eval set (a ConfigMap) through
  the gateway with a gateway key (a Secret, mounted as a file), pass rates pushed to
- a Pushgateway (the official image, pinned by digest; kube-prometheus-stack has none), which Prometheus scrapes
  through a ServiceMonitor with honorLabels (the pushed `job` and `model` labels are kept);
- NetworkPolicies: nothing in or out but DNS, runner -> gateway, runner -> Pushgateway, Prometheus -> Pushgateway;
- the alert rules ModelQualityBelowThreshold, ModelQualityDropped, CanaryQualityWorse and ModelQualityRunFailing
  (a PrometheusRule), and the Grafana dashboard "modelyard / Quality" (a ConfigMap for Grafana's sidecar), both in the
  monitoring namespace.

A model with a canary is graded per revision, each server set alone by its `<model>@<revision>` name; every series
carries `model`, `revision`, `track` (stable or canary) and `set`.

Pure functions build every object (the tests validate the same dicts); ``Quality`` registers them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.contract import (
    GATEWAY_NAMESPACE,
    GATEWAY_POD_LABELS,
    GATEWAY_PORT,
    PUSHGATEWAY_NAME,
    PUSHGATEWAY_PORT,
    QUALITY_ITEMS,
    QUALITY_ITEMS_PASSED,
    QUALITY_LAST_SUCCESS,
    QUALITY_MAX_DROP,
    QUALITY_MIN_PASS_RATE,
    QUALITY_NAMESPACE,
    QUALITY_PASS_RATE,
    QUALITY_RUN_SUCCEEDED,
    QUALITY_RUNNER,
    QUALITY_TRACK_CANARY,
    QUALITY_TRACK_LABEL,
    QUALITY_TRACK_STABLE,
    REVISION_METRIC_LABEL,
    gateway_url,
    pushgateway_url,
    quality_targets,
    system_node_selector,
)
from components.evalsets import load_set, set_path
from components.k8s.monitoring.assets import RUNBOOK_BASE_URL
from components.k8s.monitoring.generate import dashboard, panel, query_variable
from components.k8s.monitoring.values import (
    DASHBOARD_LABEL,
    MONITORING_NAMESPACE,
    PROMETHEUS_POD_LABELS,
    SCRAPE_SELECTOR_LABELS,
)

PUSHGATEWAY_REGISTRY = "docker.io"
PUSHGATEWAY_IMAGE = "prom/pushgateway"
PUSHGATEWAY_TAG = "v1.11.3"
PUSHGATEWAY_DIGEST = "sha256:74fa117cef2d7e383112d25139ff1c2d2e309c35389a9e0554a47136a1482e48"
"""Not resolved here (no registry access): the same tag and digest are pinned in two public repositories, one of them
a table of "immutable references" (docs/lifecycle.md, "What was pinned and how"). Verify before the first apply:
`docker buildx imagetools inspect prom/pushgateway:v1.11.3`."""
PUSHGATEWAY_USER = 65534
"""nobody: the user the official image runs as (its Dockerfile's USER)."""
RUNNER_USER = 65532
"""The eval runner image's user (deploy/eval-runner/Dockerfile creates it)."""
CONFIG_DIR = "/etc/modelyard/quality"
KEY_DIR = "/var/run/modelyard/key"
KEY_SECRET = f"{QUALITY_RUNNER}-key"
KEY_FIELD = "key"
RUNNER_LABELS: Mapping[str, str] = MappingProxyType({"app.kubernetes.io/name": QUALITY_RUNNER})
PUSHGATEWAY_LABELS: Mapping[str, str] = MappingProxyType({"app.kubernetes.io/name": PUSHGATEWAY_NAME})
PART_OF = {"app.kubernetes.io/part-of": "modelyard"}
RULE_NAME = "modelyard-quality"
DASHBOARD_UID = "modelyard-quality"
DROP_WINDOW = "7d"
"""How far back ModelQualityDropped looks for a revision's best rate: 28 runs at the default schedule, and no longer
than the minimal preset's Prometheus keeps (7 days, docs/monitoring.md), so the window is the same in every preset."""
# What a run may take beyond its requests: pod start and the pushes.
RUN_SLACK_SECONDS = 60


@dataclass(frozen=True, kw_only=True)
class QualityModel:
    """One graded model."""

    set: str
    """The shipped eval set's name (components/tools/evalsets/<set>.jsonl)."""
    min_pass_rate: float
    """Below this share of passed items, ModelQualityBelowThreshold fires."""
    max_drop: float = 0.1
    """A fall of more than this below the revision's best of DROP_WINDOW: ModelQualityDropped; a canary this far below
    its stable revision: CanaryQualityWorse."""
    revision: str = "main"
    """The stable servers' revision (models.<m>.revision)."""
    canary_revision: str | None = None
    """The canary's revision (models.<m>.canary.revision): both are then graded alone, by `<model>@<revision>`."""

    def targets(self, model: str) -> list[tuple[str, str, str]]:
        """(name called at the gateway, revision, track) of each run of the set (components.contract)."""
        return quality_targets(model, self.revision, self.canary_revision)


@dataclass(frozen=True, kw_only=True)
class QualityArgs:
    """What the quality CronJob is built from (`components.platform.quality_args` takes it from `quality`)."""

    image: str
    """The eval runner's image, `<registry>/<repository>[:<tag>]@sha256:<digest>` (quality.image)."""
    key: pulumi.Input[str]
    """The gateway key the runner calls with: made a Pulumi secret and kept in a Secret of its own."""
    models: Mapping[str, QualityModel]
    """Graded models by name (the name clients call)."""
    schedule: str = "0 */6 * * *"
    """Cron schedule, UTC."""
    timeout_seconds: int = 120
    """Seconds one request may take."""
    kubernetes_version: str = "1.33"
    """The cluster's version, for the namespace's Pod Security labels."""
    runbook_base_url: str = RUNBOOK_BASE_URL
    """Where the alerts' runbook links point (monitoring.runbook_base_url)."""
    pushgateway_registry: pulumi.Input[str] = PUSHGATEWAY_REGISTRY
    """Where nodes pull the Pushgateway from: docker.io, or the ECR pull-through cache of a stack without NAT."""


def _meta(name: str, labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {"name": name, "namespace": QUALITY_NAMESPACE, "labels": {**PART_OF, **(labels or {})}}


def namespace_object(kubernetes_version: str) -> dict[str, Any]:
    labels = dict(PART_OF)
    for mode in ("enforce", "audit", "warn"):
        labels[f"pod-security.kubernetes.io/{mode}"] = "restricted"
        labels[f"pod-security.kubernetes.io/{mode}-version"] = f"v{kubernetes_version}"
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": QUALITY_NAMESPACE, "labels": labels}}


def service_accounts() -> list[dict[str, Any]]:
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(name), "automountServiceAccountToken": False}
        for name in (QUALITY_RUNNER, PUSHGATEWAY_NAME)
    ]


def key_secret(value: str) -> dict[str, Any]:
    """The runner's gateway key, alone in its Secret (mounted as a file, never an environment variable)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(KEY_SECRET),
        "type": "Opaque",
        "stringData": {KEY_FIELD: value},
    }


def set_texts(args: QualityArgs) -> dict[str, str]:
    """Every set the runner grades with: name -> JSONL text."""
    names = sorted({m.set for m in args.models.values()})
    return {name: set_path(name).read_text(encoding="utf-8") for name in names}


def runner_config(args: QualityArgs) -> dict[str, Any]:
    """components.tools.quality's config (RunnerConfig)."""
    return {
        "endpoint": gateway_url(),
        "pushgateway": pushgateway_url(),
        "key_file": f"{KEY_DIR}/{KEY_FIELD}",
        "timeout_seconds": args.timeout_seconds,
        "models": {
            model: {
                "set": spec.set,
                "set_file": f"{CONFIG_DIR}/{spec.set}.jsonl",
                "min_pass_rate": spec.min_pass_rate,
                "max_drop": spec.max_drop,
                "targets": [
                    {"name": name, "revision": revision, "track": track}
                    for name, revision, track in spec.targets(model)
                ],
            }
            for model, spec in sorted(args.models.items())
        },
    }


def config_map(args: QualityArgs) -> dict[str, Any]:
    data = {"runner.json": json.dumps(runner_config(args), indent=2, sort_keys=True) + "\n"}
    data.update({f"{name}.jsonl": text for name, text in set_texts(args).items()})
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(QUALITY_RUNNER), "data": data}


def requests_per_run(args: QualityArgs) -> int:
    """Chat requests one run sends: every item of every graded model's set, once per graded revision."""
    return sum(len(load_set(set_path(spec.set))) * len(spec.targets(m)) for m, spec in args.models.items())


def run_deadline_seconds(args: QualityArgs) -> int:
    """activeDeadlineSeconds: every request at its timeout, one after another, plus the slack."""
    return requests_per_run(args) * args.timeout_seconds + RUN_SLACK_SECONDS


def _restricted(user: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(pod securityContext, container securityContext) of Pod Security restricted, as `user`."""
    pod = {
        "runAsNonRoot": True,
        "runAsUser": user,
        "runAsGroup": user,
        "fsGroup": user,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    container = {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": user,
        "runAsGroup": user,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    return pod, container


def cron_job(args: QualityArgs) -> dict[str, Any]:
    pod_security, container_security = _restricted(RUNNER_USER)
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": _meta(QUALITY_RUNNER, RUNNER_LABELS),
        "spec": {
            "schedule": args.schedule,
            "timeZone": "Etc/UTC",
            # A run still going when the next is due: skip the next (two runs would spend the tokens twice).
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 600,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "metadata": {"labels": {**PART_OF, **RUNNER_LABELS}},
                "spec": {
                    # No retry within a run: the next scheduled run is the retry, and a failure is pushed.
                    "backoffLimit": 0,
                    "activeDeadlineSeconds": run_deadline_seconds(args),
                    "ttlSecondsAfterFinished": 86400,
                    "template": {
                        "metadata": {"labels": {**PART_OF, **RUNNER_LABELS}},
                        "spec": {
                            "restartPolicy": "Never",
                            "serviceAccountName": QUALITY_RUNNER,
                            "automountServiceAccountToken": False,
                            "enableServiceLinks": False,
                            "nodeSelector": system_node_selector(),
                            "securityContext": pod_security,
                            "containers": [
                                {
                                    "name": QUALITY_RUNNER,
                                    "image": args.image,
                                    "imagePullPolicy": "IfNotPresent",
                                    "command": ["python", "-m", "components.tools.quality"],
                                    "args": ["--config", f"{CONFIG_DIR}/runner.json"],
                                    "resources": {
                                        "requests": {"cpu": "50m", "memory": "128Mi"},
                                        "limits": {"cpu": "500m", "memory": "256Mi"},
                                    },
                                    "securityContext": container_security,
                                    "volumeMounts": [
                                        {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
                                        {"name": "key", "mountPath": KEY_DIR, "readOnly": True},
                                        {"name": "tmp", "mountPath": "/tmp"},
                                    ],
                                }
                            ],
                            "volumes": [
                                {"name": "config", "configMap": {"name": QUALITY_RUNNER, "defaultMode": 0o444}},
                                {"name": "key", "secret": {"secretName": KEY_SECRET, "defaultMode": 0o440}},
                                {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
                            ],
                        },
                    },
                },
            },
        },
    }


def pushgateway_image(registry: str = PUSHGATEWAY_REGISTRY) -> str:
    return f"{registry}/{PUSHGATEWAY_IMAGE}:{PUSHGATEWAY_TAG}@{PUSHGATEWAY_DIGEST}"


def pushgateway_deployment(registry: str = PUSHGATEWAY_REGISTRY) -> dict[str, Any]:
    """One replica, in memory: a restart forgets the pushed groups until the next run pushes them again (the
    alerts then see no series, and stay silent rather than firing on stale values)."""
    pod_security, container_security = _restricted(PUSHGATEWAY_USER)

    def probe(path: str) -> dict[str, Any]:
        return {"httpGet": {"path": path, "port": "http", "scheme": "HTTP"}, "periodSeconds": 10, "timeoutSeconds": 3}

    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(PUSHGATEWAY_NAME, PUSHGATEWAY_LABELS),
        "spec": {
            "replicas": 1,
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": dict(PUSHGATEWAY_LABELS)},
            "template": {
                "metadata": {"labels": {**PART_OF, **PUSHGATEWAY_LABELS}},
                "spec": {
                    "serviceAccountName": PUSHGATEWAY_NAME,
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "nodeSelector": system_node_selector(),
                    "securityContext": pod_security,
                    "containers": [
                        {
                            "name": PUSHGATEWAY_NAME,
                            "image": pushgateway_image(registry),
                            "imagePullPolicy": "IfNotPresent",
                            "args": [f"--web.listen-address=:{PUSHGATEWAY_PORT}"],
                            "ports": [{"name": "http", "containerPort": PUSHGATEWAY_PORT, "protocol": "TCP"}],
                            "livenessProbe": probe("/-/healthy"),
                            "readinessProbe": probe("/-/ready"),
                            "resources": {
                                "requests": {"cpu": "10m", "memory": "32Mi"},
                                "limits": {"cpu": "200m", "memory": "128Mi"},
                            },
                            "securityContext": container_security,
                        }
                    ],
                },
            },
        },
    }


def pushgateway_service() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(PUSHGATEWAY_NAME, PUSHGATEWAY_LABELS),
        "spec": {
            "type": "ClusterIP",
            "selector": dict(PUSHGATEWAY_LABELS),
            "ports": [{"name": "http", "port": PUSHGATEWAY_PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def service_monitor() -> dict[str, Any]:
    """honorLabels: the pushed `job` and `model` labels win over the scrape's own (Prometheus' advice for a
    Pushgateway), so the series name the model, not the Pushgateway's pod."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {**_meta(PUSHGATEWAY_NAME, PUSHGATEWAY_LABELS), "labels": {**PART_OF, **SCRAPE_SELECTOR_LABELS}},
        "spec": {
            "selector": {"matchLabels": dict(PUSHGATEWAY_LABELS)},
            "namespaceSelector": {"matchNames": [QUALITY_NAMESPACE]},
            "endpoints": [{"port": "http", "path": "/metrics", "interval": "60s", "honorLabels": True}],
        },
    }


def _peer(namespace: str, labels: Mapping[str, str]) -> dict[str, Any]:
    return {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
        "podSelector": {"matchLabels": dict(labels)},
    }


def network_policies() -> list[dict[str, Any]]:
    def policy(name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": _meta(name), "spec": spec}

    dns = {
        "to": [_peer("kube-system", {"k8s-app": "kube-dns"})],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    }
    return [
        policy("default-deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
        policy(
            f"{QUALITY_RUNNER}-egress",
            {
                "podSelector": {"matchLabels": dict(RUNNER_LABELS)},
                "policyTypes": ["Egress"],
                "egress": [
                    dns,
                    {
                        "to": [_peer(GATEWAY_NAMESPACE, GATEWAY_POD_LABELS)],
                        "ports": [{"protocol": "TCP", "port": GATEWAY_PORT}],
                    },
                    {
                        "to": [{"podSelector": {"matchLabels": dict(PUSHGATEWAY_LABELS)}}],
                        "ports": [{"protocol": "TCP", "port": PUSHGATEWAY_PORT}],
                    },
                ],
            },
        ),
        policy(
            f"{PUSHGATEWAY_NAME}-ingress",
            {
                "podSelector": {"matchLabels": dict(PUSHGATEWAY_LABELS)},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [
                            {"podSelector": {"matchLabels": dict(RUNNER_LABELS)}},
                            _peer(MONITORING_NAMESPACE, PROMETHEUS_POD_LABELS),
                        ],
                        "ports": [{"protocol": "TCP", "port": PUSHGATEWAY_PORT}],
                    }
                ],
            },
        ),
    ]


def alert_rules(runbook_base_url: str = RUNBOOK_BASE_URL) -> list[dict[str, Any]]:
    """The quality alerts (promtool tests: tests/quality.test.yaml). Each is per model, revision and set; `track` is
    left out of the groupings (a promoted canary's revision moves from track canary to stable and keeps its history)
    except where CanaryQualityWorse needs it to tell the canary from the stable set."""
    key = f"model, {REVISION_METRIC_LABEL}, set"
    by = f"max by ({key})"
    track = QUALITY_TRACK_LABEL
    rules: list[dict[str, Any]] = [
        {
            "alert": "ModelQualityBelowThreshold",
            "expr": f"{by} ({QUALITY_PASS_RATE}) < {by} ({QUALITY_MIN_PASS_RATE})",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "{{ $labels.model }} ({{ $labels.revision }}) passed less of its eval set than its minimum",
                "description": (
                    "The last complete run of the eval set {{ $labels.set }} through the gateway passed "
                    "{{ $value | humanizePercentage }} of its items on revision {{ $labels.revision }}, below "
                    "quality.models.{{ $labels.model }}.min_pass_rate."
                ),
            },
        },
        {
            # The best of the window minus now, against the model's own margin (pushed beside the rate). Both sides
            # keep only model, revision and set, so the window spans a revision's move from canary to stable.
            "alert": "ModelQualityDropped",
            "expr": (
                f"({by} (max_over_time({QUALITY_PASS_RATE}[{DROP_WINDOW}])) - {by} ({QUALITY_PASS_RATE}))"
                f" > {by} ({QUALITY_MAX_DROP})"
            ),
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "{{ $labels.model }} ({{ $labels.revision }}) passes less of its eval set than it did",
                "description": (
                    f"Revision {{{{ $labels.revision }}}} now passes {{{{ $value | humanizePercentage }}}} fewer of "
                    f"the eval set {{{{ $labels.set }}}}'s items than at its best of the last {DROP_WINDOW}, more "
                    "than quality.models.{{ $labels.model }}.max_drop. Nobody changed the revision: look for what "
                    "changed under it (image, vLLM arguments, GPU type, files under the same revision)."
                ),
            },
        },
        {
            # stable - canary, with the canary's labels (group_right), against the canary's margin.
            "alert": "CanaryQualityWorse",
            "expr": (
                f'(max by (model, set) ({QUALITY_PASS_RATE}{{{track}="{QUALITY_TRACK_STABLE}"}})'
                f" - on (model, set) group_right"
                f' {by} ({QUALITY_PASS_RATE}{{{track}="{QUALITY_TRACK_CANARY}"}}))'
                f' > on ({key}) {by} ({QUALITY_MAX_DROP}{{{track}="{QUALITY_TRACK_CANARY}"}})'
            ),
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "The canary {{ $labels.revision }} of {{ $labels.model }} passes less than its stable set",
                "description": (
                    "The canary's revision {{ $labels.revision }} passed {{ $value | humanizePercentage }} fewer of "
                    "the eval set {{ $labels.set }}'s items than the stable revision in their last complete runs, "
                    "more than quality.models.{{ $labels.model }}.max_drop. Do not promote it; compare the two "
                    "with modelyard eval before raising its weight."
                ),
            },
        },
        {
            "alert": "ModelQualityRunFailing",
            "expr": f"{by} ({QUALITY_RUN_SUCCEEDED}) == 0",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "The eval runner could not grade {{ $labels.model }} ({{ $labels.revision }})",
                "description": (
                    "The last scheduled run of {{ $labels.set }} against {{ $labels.model }} revision "
                    "{{ $labels.revision }} stopped: the gateway refused or failed a request. The pass rate shown "
                    "is the last complete run's."
                ),
            },
        },
    ]
    for rule in rules:
        # docs/runbooks/<alert>.md, under the base the stack's monitoring.runbook_base_url gives.
        rule["annotations"]["runbook_url"] = f"{runbook_base_url}{rule['alert']}.md"
    return rules


def prometheus_rule(runbook_base_url: str = RUNBOOK_BASE_URL) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": RULE_NAME,
            "namespace": MONITORING_NAMESPACE,
            "labels": {**PART_OF, **SCRAPE_SELECTOR_LABELS},
        },
        "spec": {"groups": [{"name": "modelyard.quality", "rules": alert_rules(runbook_base_url)}]},
    }


def quality_dashboard() -> dict[str, Any]:
    """ "modelyard / Quality": pass rates by model and revision, the fall below each revision's best of the drop
    window, the canary's difference to its stable set, and the runs' state (the names of components/contract.py)."""
    sel = 'model=~"$model"'
    by = f"model, {REVISION_METRIC_LABEL}"
    legend = f"{{{{model}}}} {{{{{REVISION_METRIC_LABEL}}}}}"
    track = QUALITY_TRACK_LABEL
    panels = [
        panel(
            1,
            "Pass rate by model and revision",
            [
                (f"max by ({by}, {track}) ({QUALITY_PASS_RATE}{{{sel}}})", f"{legend} ({{{{{track}}}}})"),
                (f"max by (model) ({QUALITY_MIN_PASS_RATE}{{{sel}}})", "{{model}} minimum"),
            ],
            x=0,
            y=0,
            w=24,
            unit="percentunit",
            description="Share of the eval set each revision passed in its last complete scheduled run "
            "(a canary and its stable set graded alone), and each model's quality.models.<m>.min_pass_rate.",
        ),
        panel(
            2,
            f"Fall below the best of {DROP_WINDOW}",
            [
                (
                    f"max by ({by}) (max_over_time({QUALITY_PASS_RATE}{{{sel}}}[{DROP_WINDOW}]))"
                    f" - max by ({by}) ({QUALITY_PASS_RATE}{{{sel}}})",
                    legend,
                ),
                (f"max by ({by}) ({QUALITY_MAX_DROP}{{{sel}}})", f"{legend} max_drop"),
            ],
            x=0,
            y=8,
            unit="percentunit",
            description="ModelQualityDropped fires where the fall exceeds the model's max_drop.",
        ),
        panel(
            3,
            "Canary minus stable",
            [
                (
                    f'max by ({by}) ({QUALITY_PASS_RATE}{{{sel}, {track}="{QUALITY_TRACK_CANARY}"}})'
                    " - on (model) group_left"
                    f' max by (model) ({QUALITY_PASS_RATE}{{{sel}, {track}="{QUALITY_TRACK_STABLE}"}})',
                    f"{legend} (canary)",
                ),
            ],
            x=12,
            y=8,
            unit="percentunit",
            description="Below minus max_drop, CanaryQualityWorse fires. Empty without a canary.",
        ),
        panel(
            4,
            "Last runs",
            [
                (f"max by ({by}, set) ({QUALITY_ITEMS_PASSED}{{{sel}}})", "passed"),
                (f"max by ({by}, set) ({QUALITY_ITEMS}{{{sel}}})", "items"),
                (f"max by ({by}, set) ({QUALITY_RUN_SUCCEEDED}{{{sel}}})", "last run succeeded"),
                (f"max by ({by}, set) ({QUALITY_LAST_SUCCESS}{{{sel}}}) * 1000", "last complete run"),
            ],
            x=0,
            y=16,
            w=24,
            kind="table",
            instant=True,
            description="Per revision: items passed of the set in the last complete run, whether the last run "
            "succeeded (0: ModelQualityRunFailing), and when the last complete run ended.",
        ),
    ]
    variables = [query_variable("model", "Model", f"label_values({QUALITY_PASS_RATE}, model)")]
    return dashboard(
        DASHBOARD_UID,
        "modelyard / Quality",
        "Scheduled eval runs through the gateway (modelyard:quality): pass rates by model and revision.",
        variables,
        panels,
    )


def dashboard_config_map() -> dict[str, Any]:
    """The quality dashboard for Grafana's sidecar, beside the kit's others (only in a stack with quality on)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": f"dashboard-{DASHBOARD_UID}",
            "namespace": MONITORING_NAMESPACE,
            "labels": {DASHBOARD_LABEL[0]: DASHBOARD_LABEL[1], **PART_OF},
        },
        "data": {"quality.json": json.dumps(quality_dashboard(), indent=2, sort_keys=True) + "\n"},
    }


def manifests(args: QualityArgs, *, key: str, registry: str = PUSHGATEWAY_REGISTRY) -> list[dict[str, Any]]:
    """Every object, namespace first (`key` in place of the secret key: the component passes an Output)."""
    return [
        namespace_object(args.kubernetes_version),
        *service_accounts(),
        key_secret(key),
        config_map(args),
        cron_job(args),
        pushgateway_deployment(registry),
        pushgateway_service(),
        service_monitor(),
        *network_policies(),
        prometheus_rule(args.runbook_base_url),
        dashboard_config_map(),
    ]


class Quality(pulumi.ComponentResource):
    """The eval runner's CronJob, its Pushgateway and their NetworkPolicies, and the quality alerts. The caller passes
    the cluster's Kubernetes provider in `opts`; the gateway and the monitoring stack (its CRDs) come first."""

    def __init__(self, name: str, *, args: QualityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("modelyard:k8s:Quality", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        objects = manifests(args, key="")
        namespace = k8s.core.v1.Namespace(f"{name}-namespace", metadata=objects[0]["metadata"], opts=child)
        inside = pulumi.ResourceOptions(parent=self, depends_on=[namespace])
        registered: dict[str, pulumi.Resource] = {}
        for obj in objects[1:]:
            kind, metadata = obj["kind"], obj["metadata"]
            resource_name = f"{name}-{kind.lower()}-{metadata['name']}"
            resource: pulumi.Resource
            if kind == "ServiceAccount":
                resource = k8s.core.v1.ServiceAccount(
                    resource_name, metadata=metadata, automount_service_account_token=False, opts=inside
                )
            elif kind == "Secret":
                resource = k8s.core.v1.Secret(
                    resource_name,
                    metadata=metadata,
                    type="Opaque",
                    string_data={KEY_FIELD: pulumi.Output.secret(args.key)},
                    opts=inside,
                )
            elif kind == "ConfigMap":
                resource = k8s.core.v1.ConfigMap(resource_name, metadata=metadata, data=obj["data"], opts=inside)
            elif kind == "CronJob":
                waits = [registered[k] for k in ("Secret", "ConfigMap", "ServiceAccount")]
                resource = k8s.batch.v1.CronJob(
                    resource_name,
                    metadata=metadata,
                    spec=obj["spec"],
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[namespace, *waits]),
                )
            elif kind == "Deployment":
                spec: Any = obj["spec"]
                if not isinstance(args.pushgateway_registry, str) or args.pushgateway_registry != PUSHGATEWAY_REGISTRY:
                    spec = pulumi.Output.from_input(args.pushgateway_registry).apply(
                        lambda registry: pushgateway_deployment(registry)["spec"]
                    )
                resource = k8s.apps.v1.Deployment(resource_name, metadata=metadata, spec=spec, opts=inside)
            elif kind == "Service":
                resource = k8s.core.v1.Service(resource_name, metadata=metadata, spec=obj["spec"], opts=inside)
            elif kind == "NetworkPolicy":
                resource = k8s.networking.v1.NetworkPolicy(
                    resource_name, metadata=metadata, spec=obj["spec"], opts=inside
                )
            elif kind in ("ServiceMonitor", "PrometheusRule"):
                resource = k8s.apiextensions.CustomResource(
                    resource_name,
                    api_version=obj["apiVersion"],
                    kind=kind,
                    metadata=metadata,
                    spec=obj["spec"],
                    opts=inside,
                )
            else:
                raise ValueError(f"the quality component renders no {kind}")
            registered.setdefault(kind, resource)
        self.register_outputs({})
