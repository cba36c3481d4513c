"""The gateway's Kubernetes objects as plain manifests: pure functions of GatewayArgs' plain fields.

Secrets are described here (`secret_specs`) but their values are never rendered by this module: the
Gateway component fills them from its args as Pulumi secrets; tests render them with placeholders.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml

from components.contract import (
    GATEWAY_DATABASE_PORT,
    GATEWAY_LIVENESS_PATH,
    GATEWAY_NAME,
    GATEWAY_NAMESPACE,
    GATEWAY_POD_LABELS,
    GATEWAY_PORT,
    GATEWAY_REDIS_PORT,
    POD_IDENTITY_AGENT,
    SERVER_PRE_STOP_SECONDS,
    system_node_selector,
    tenant_namespace,
)
from components.k8s.gateway.config import (
    AUTH_MODULE,
    AUTH_MODULE_FILE,
    CONFIG_DIR,
    DATABASE_URL_ENV,
    KEYS_DIR,
    MASTER_KEY_ENV,
    METRICS_TOKEN_ENV,
    PROXY_ENV,
    REDIS_HOST_ENV,
    REDIS_PASSWORD_ENV,
    REDIS_PORT_ENV,
    REQUEST_TIMEOUT_SECONDS,
    env_name,
    gateway_config,
    gateway_tenants,
)
from components.k8s.isolation import MODEL_SERVER_COMPONENT, PRIVATE_RANGES
from components.k8s.monitoring.values import SCRAPE_SELECTOR_LABELS
from components.settings.types import FallbackProvider, NatMode

if TYPE_CHECKING:
    # Only for annotations: the component's module imports the Pulumi SDKs, which this one does without.
    from components.k8s.gateway.component import GatewayArgs

# The AWS Load Balancer Controller's readiness gate: a pod counts as ready only once the load balancer
# finds it healthy, so a rollout never removes the last registered target (controller docs, "Pod readiness gate").
READINESS_GATE_LABEL = ("elbv2.k8s.aws/pod-readiness-gate-inject", "enabled")
TARGET_GROUP_BINDING = "litellm"
# LiteLLM's image, tag and digest (ghcr.io/berriai/litellm): the same version as the litellm[proxy] the tests
# run (uv.lock). Digest as recorded for this tag in a public deployment guide; `docker buildx imagetools
# inspect` on a connected machine confirms it (docs/gateway.md).
IMAGE_REGISTRY = "ghcr.io"
IMAGE_REPOSITORY = "berriai/litellm"
IMAGE_TAG = "v1.103.0"
IMAGE_DIGEST = "sha256:bd089afdcd35b894b14a93f9743cdc8b591f82da1a38dd43a010a7b0c9de5fd7"
# Non-root, like the model servers (charts/llm-serving): a uid outside any image's and the host's range.
RUN_AS = 10001
CONFIG_MAP = "litellm-config"
MASTER_KEY_SECRET = "gateway-master-key"
METRICS_TOKEN_SECRET = "gateway-metrics-token"
DATABASE_URL_SECRET = "gateway-database-url"
REDIS_PASSWORD_SECRET = "gateway-redis-password"
# Where the Deployment's REDIS_HOST points when rendered without the Gateway component (tests): a name that
# never resolves (RFC 6761 .invalid). The component renders the real endpoint from GatewayState.
REDIS_HOST_PLACEHOLDER = "redis.gateway.invalid"
LABELS = {**GATEWAY_POD_LABELS, "app.kubernetes.io/component": "gateway", "app.kubernetes.io/part-of": "modelyard"}


@dataclass(frozen=True, kw_only=True)
class SecretSpec:
    """One Secret holding one value: `source` says which setting it comes from."""

    name: str
    key: str
    source: str  # "api-key:<key name>", "master-key", "metrics-token", "fallback-key:<model>", "database-url",
    # "redis-password"


def api_key_secret(name: str) -> str:
    return f"gateway-key-{name}"


def fallback_key_secret(model: str) -> str:
    return f"gateway-fallback-{model}"[:253]


def secret_specs(args: GatewayArgs) -> list[SecretSpec]:
    gateway = args.gateway
    specs = [
        SecretSpec(name=api_key_secret(name), key="sha256", source=f"api-key:{name}") for name in sorted(gateway.keys)
    ]
    if gateway.master_key:
        specs.append(SecretSpec(name=MASTER_KEY_SECRET, key="key", source="master-key"))
        specs.append(SecretSpec(name=METRICS_TOKEN_SECRET, key="token", source="metrics-token"))
    for model in args.fallbacks_in_use:
        if gateway.fallbacks[model].api_key:
            specs.append(SecretSpec(name=fallback_key_secret(model), key="api_key", source=f"fallback-key:{model}"))
    if gateway.database is not None:
        specs.append(SecretSpec(name=DATABASE_URL_SECRET, key="url", source="database-url"))
    if gateway.redis is not None:
        specs.append(SecretSpec(name=REDIS_PASSWORD_SECRET, key="password", source="redis-password"))
    return specs


def metrics_token(master_key: str) -> str:
    """Prometheus's scrape token, derived from the master key (it reads /metrics and nothing else)."""
    return hmac.new(master_key.encode("utf-8"), b"modelyard-gateway-metrics", hashlib.sha256).hexdigest()


def secret_object(spec: SecretSpec, value: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": spec.name, "namespace": GATEWAY_NAMESPACE, "labels": dict(LABELS)},
        "type": "Opaque",
        "stringData": {spec.key: value},
    }


def _meta(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": GATEWAY_NAMESPACE, "labels": dict(LABELS), **extra}


def namespace_object(kubernetes_version: str, *, load_balanced: bool = False) -> dict[str, Any]:
    """The gateway's namespace; `load_balanced`: its pods sit behind the load balancer (readiness gate on)."""
    labels = {"app.kubernetes.io/part-of": "modelyard"}
    for mode in ("enforce", "audit", "warn"):
        labels[f"pod-security.kubernetes.io/{mode}"] = "restricted"
        labels[f"pod-security.kubernetes.io/{mode}-version"] = f"v{kubernetes_version}"
    if load_balanced:
        labels[READINESS_GATE_LABEL[0]] = READINESS_GATE_LABEL[1]
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": GATEWAY_NAMESPACE, "labels": labels}}


def config_map(args: GatewayArgs) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(CONFIG_MAP),
        "data": {
            "config.yaml": yaml.safe_dump(gateway_config(args), sort_keys=False),
            "tenants.json": json.dumps(gateway_tenants(args), indent=2, sort_keys=True),
            f"{AUTH_MODULE}.py": AUTH_MODULE_FILE.read_text(encoding="utf-8"),
        },
    }


def _secret_env(name: str, spec: SecretSpec) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": spec.name, "key": spec.key}}}


def deployment(
    args: GatewayArgs,
    *,
    image_registry: str = IMAGE_REGISTRY,
    redis_endpoint: tuple[str, int] = (REDIS_HOST_PLACEHOLDER, GATEWAY_REDIS_PORT),
) -> dict[str, Any]:
    """The proxy's Deployment; `redis_endpoint` (host, port) is GatewayState's, used with gateway.redis."""
    specs = {s.source: s for s in secret_specs(args)}
    env: list[dict[str, Any]] = [
        *({"name": k, "value": v} for k, v in PROXY_ENV.items()),
        {"name": "HOME", "value": "/tmp"},
        {"name": "XDG_CACHE_HOME", "value": "/tmp/.cache"},
        {"name": "MODELYARD_TENANTS", "value": f"{CONFIG_DIR}/tenants.json"},
        {"name": "MODELYARD_KEYS_DIR", "value": KEYS_DIR},
    ]
    if "master-key" in specs:
        env.append(_secret_env(MASTER_KEY_ENV, specs["master-key"]))
        env.append(_secret_env(METRICS_TOKEN_ENV, specs["metrics-token"]))
    for model in args.fallbacks_in_use:
        if f"fallback-key:{model}" in specs:
            env.append(_secret_env(env_name("FALLBACK_API_KEY", model), specs[f"fallback-key:{model}"]))
    if "database-url" in specs:
        env.append(_secret_env(DATABASE_URL_ENV, specs["database-url"]))
    if "redis-password" in specs:
        host, port = redis_endpoint
        env += [
            {"name": REDIS_HOST_ENV, "value": host},
            {"name": REDIS_PORT_ENV, "value": str(port)},
            # LiteLLM's clients built from REDIS_* (besides the coordination block) then use TLS too.
            {"name": "REDIS_SSL", "value": "True"},
            _secret_env(REDIS_PASSWORD_ENV, specs["redis-password"]),
        ]
    key_sources = [
        {"secret": {"name": s.name, "items": [{"key": s.key, "path": s.source.split(":", 1)[1]}]}}
        for s in specs.values()
        if s.source.startswith("api-key:")
    ]
    config_text = json.dumps(config_map(args)["data"], sort_keys=True)
    probe = {"port": "http", "scheme": "HTTP"}
    pod_labels = dict(LABELS)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(GATEWAY_NAME),
        "spec": {
            "replicas": args.replicas,
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": dict(GATEWAY_POD_LABELS)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {
                    "labels": pod_labels,
                    # A new config rolls the pods (LiteLLM reads it at start); key files are re-read live.
                    "annotations": {"modelyard.dev/config-sha256": hashlib.sha256(config_text.encode()).hexdigest()},
                },
                "spec": {
                    "serviceAccountName": GATEWAY_NAME,
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "nodeSelector": system_node_selector(),
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": RUN_AS,
                        "runAsGroup": RUN_AS,
                        "fsGroup": RUN_AS,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "topologySpreadConstraints": [
                        {
                            "maxSkew": 1,
                            "topologyKey": key,
                            "whenUnsatisfiable": "ScheduleAnyway",
                            "labelSelector": {"matchLabels": dict(GATEWAY_POD_LABELS)},
                        }
                        for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")
                    ],
                    # A stopping pod keeps serving what it has: the preStop pause lets the load balancer and the
                    # Service endpoints stop sending it new requests first, then the proxy finishes the requests in
                    # flight (a long generation may take the whole request timeout) before it exits.
                    "terminationGracePeriodSeconds": SERVER_PRE_STOP_SECONDS + REQUEST_TIMEOUT_SECONDS,
                    "containers": [
                        {
                            "name": GATEWAY_NAME,
                            "image": f"{image_registry}/{IMAGE_REPOSITORY}:{IMAGE_TAG}@{IMAGE_DIGEST}",
                            "imagePullPolicy": "IfNotPresent",
                            "args": [
                                "--config",
                                f"{CONFIG_DIR}/config.yaml",
                                "--port",
                                str(GATEWAY_PORT),
                                "--num_workers",
                                "1",
                            ],
                            "ports": [{"name": "http", "containerPort": GATEWAY_PORT, "protocol": "TCP"}],
                            # The kubelet's own sleep (Kubernetes 1.30+, on by default): no binary in the image.
                            "lifecycle": {"preStop": {"sleep": {"seconds": SERVER_PRE_STOP_SECONDS}}},
                            "env": env,
                            "resources": {
                                "requests": {"cpu": "250m", "memory": "768Mi"},
                                "limits": {"cpu": "2", "memory": "2Gi"},
                            },
                            "startupProbe": {
                                "httpGet": {"path": GATEWAY_LIVENESS_PATH, **probe},
                                "periodSeconds": 5,
                                "failureThreshold": 36,
                            },
                            "livenessProbe": {
                                "httpGet": {"path": GATEWAY_LIVENESS_PATH, **probe},
                                "periodSeconds": 15,
                                "timeoutSeconds": 5,
                                "failureThreshold": 4,
                            },
                            "readinessProbe": {
                                "httpGet": {"path": "/health/readiness", **probe},
                                "periodSeconds": 10,
                                "timeoutSeconds": 5,
                                "failureThreshold": 3,
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "privileged": False,
                                "readOnlyRootFilesystem": True,
                                "runAsNonRoot": True,
                                "runAsUser": RUN_AS,
                                "runAsGroup": RUN_AS,
                                "capabilities": {"drop": ["ALL"]},
                                "seccompProfile": {"type": "RuntimeDefault"},
                            },
                            "volumeMounts": [
                                {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
                                {"name": "keys", "mountPath": KEYS_DIR, "readOnly": True},
                                {"name": "tmp", "mountPath": "/tmp"},
                            ],
                        }
                    ],
                    "volumes": [
                        {"name": "config", "configMap": {"name": CONFIG_MAP, "defaultMode": 0o444}},
                        {"name": "keys", "projected": {"defaultMode": 0o440, "sources": key_sources}},
                        {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
                    ],
                },
            },
        },
    }


def service_account() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _meta(GATEWAY_NAME),
        "automountServiceAccountToken": False,
    }


def service() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(GATEWAY_NAME),
        "spec": {
            "type": "ClusterIP",
            "selector": dict(GATEWAY_POD_LABELS),
            "ports": [{"name": "http", "port": GATEWAY_PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def pod_disruption_budget() -> dict[str, Any]:
    # maxUnavailable 1: a drain takes one replica at a time and never blocks on a single-replica gateway.
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta(GATEWAY_NAME),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": dict(GATEWAY_POD_LABELS)}},
    }


def target_group_binding(target_group_arn: str) -> dict[str, Any]:
    """Binds the Service's pods, by IP, to the target group of the NLB the AWS layer created
    (elbv2.k8s.aws/v1beta1; the AWS Load Balancer Controller registers and deregisters them)."""
    return {
        "apiVersion": "elbv2.k8s.aws/v1beta1",
        "kind": "TargetGroupBinding",
        "metadata": _meta(TARGET_GROUP_BINDING),
        "spec": {
            "serviceRef": {"name": GATEWAY_NAME, "port": GATEWAY_PORT},
            "targetGroupARN": target_group_arn,
            "targetType": "ip",
            "ipAddressType": "ipv4",
        },
    }


def network_policies(args: GatewayArgs) -> list[dict[str, Any]]:
    gateway = args.gateway
    pods = {"matchLabels": dict(GATEWAY_POD_LABELS)}
    owners = sorted({tenant_namespace(owner) for owner in args.model_owners.values()})
    egress: list[dict[str, Any]] = [
        {
            "to": [
                {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                }
            ],
            "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
        }
    ]
    if owners:
        egress.append(
            {
                "to": [
                    {
                        "namespaceSelector": {
                            "matchExpressions": [
                                {"key": "kubernetes.io/metadata.name", "operator": "In", "values": owners}
                            ]
                        },
                        "podSelector": {"matchLabels": dict([MODEL_SERVER_COMPONENT])},
                    }
                ],
                "ports": [{"protocol": "TCP", "port": 8000}],
            }
        )
    providers = {gateway.fallbacks[m].provider for m in args.fallbacks_in_use}
    bedrock_endpoint = FallbackProvider.BEDROCK in providers and args.bedrock_endpoint
    # Proprietary APIs answer on public addresses, reached through NAT: every public address on 443, nothing
    # private beyond the model servers above. Bedrock is among them unless the VPC has its bedrock-runtime
    # endpoint, whose private DNS then answers for it. Without NAT no public address is reachable, so no such
    # rule: the settings admit only Bedrock fallbacks there (components.settings.cross_checks), through the endpoint.
    public = providers - {FallbackProvider.BEDROCK} if bedrock_endpoint else providers
    if public and args.nat is not NatMode.NONE:
        egress.append(
            {
                "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": list(PRIVATE_RANGES)}}],
                "ports": [{"protocol": "TCP", "port": 443}],
            }
        )
    if bedrock_endpoint:
        # The bedrock-runtime interface endpoint answers on its network interfaces' private addresses, in the
        # VPC's private subnets (its security group admits 443 from the VPC's range).
        egress.append({"to": [{"ipBlock": {"cidr": args.vpc_cidr}}], "ports": [{"protocol": "TCP", "port": 443}]})
    state_ports = [
        port
        for port, on in ((GATEWAY_DATABASE_PORT, gateway.database), (GATEWAY_REDIS_PORT, gateway.redis))
        if on is not None
    ]
    if state_ports:
        # RDS and ElastiCache answer on private addresses in the VPC; their security groups admit the
        # cluster's security group only.
        egress.append(
            {
                "to": [{"ipBlock": {"cidr": args.vpc_cidr}}],
                "ports": [{"protocol": "TCP", "port": port} for port in state_ports],
            }
        )
    if FallbackProvider.BEDROCK in providers:
        # The Pod Identity agent, which hands the pod its role's credentials.
        egress.append({"to": [{"ipBlock": {"cidr": POD_IDENTITY_AGENT}}], "ports": [{"protocol": "TCP", "port": 80}]})
    return [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": _meta("litellm-ingress"),
            # Clients in the cluster's pods (tenants' applications, Prometheus's scrapes) and, with a hostname,
            # the load balancer: its target group does not preserve client IPs, so pods see the NLB's private
            # addresses, which live in the subnets it is attached to.
            "spec": {
                "podSelector": pods,
                "policyTypes": ["Ingress"],
                "ingress": [
                    {"from": [{"namespaceSelector": {}}], "ports": [{"protocol": "TCP", "port": GATEWAY_PORT}]},
                    *(
                        [
                            {
                                "from": [{"ipBlock": {"cidr": cidr}} for cidr in args.load_balancer_cidrs],
                                "ports": [{"protocol": "TCP", "port": GATEWAY_PORT}],
                            }
                        ]
                        if gateway.hostname
                        else []
                    ),
                ],
            },
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": _meta("litellm-egress"),
            "spec": {"podSelector": pods, "policyTypes": ["Egress"], "egress": egress},
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": _meta("default-deny"),
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        },
    ]


def service_monitor() -> dict[str, Any]:
    """Prometheus scrapes /metrics (LiteLLM puts it behind auth) with the scrape token's Secret."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {**_meta(GATEWAY_NAME), "labels": {**LABELS, **SCRAPE_SELECTOR_LABELS}},
        "spec": {
            "selector": {"matchLabels": dict(GATEWAY_POD_LABELS)},
            "namespaceSelector": {"matchNames": [GATEWAY_NAMESPACE]},
            "endpoints": [
                {
                    "port": "http",
                    "path": "/metrics/",
                    "interval": "30s",
                    "authorization": {"type": "Bearer", "credentials": {"name": METRICS_TOKEN_SECRET, "key": "token"}},
                }
            ],
        },
    }


def manifests(args: GatewayArgs, *, image_registry: str = IMAGE_REGISTRY) -> list[dict[str, Any]]:
    """Every object but the Namespace and the Secrets, in apply order."""
    objects = [
        service_account(),
        config_map(args),
        deployment(args, image_registry=image_registry),
        service(),
        pod_disruption_budget(),
        *network_policies(args),
    ]
    if args.gateway.master_key:
        objects.append(service_monitor())
    return objects
