"""The workspace query proxy: how a writing cell's Grafana reads the deployment's metrics workspace without SigV4 of
its own (docs/regions.md, "The cross-region view").

The pinned Grafana (13.2.0, grafana chart 12.11.1 in kube-prometheus-stack 88.5.3) no longer signs requests of its core
Prometheus data source with SigV4: Grafana 13 moved that to the `grafana-amazonprometheus-datasource` plugin, which is
not in the image and installs from grafana.com or a local ZIP, out of reach of a cell without NAT. So the cell runs
AWS's own SigV4 signing proxy (awslabs/aws-sigv4-proxy) beside Grafana: Grafana's "deployment" data source is a plain
Prometheus one on the proxy's Service; the proxy signs every request for `aps` in the workspace's region with the
credentials EKS Pod Identity hands its pod (the workspace's query role, components/aws/metrics_workspace.py) and sends
it to the workspace's endpoint. Grafana itself holds no AWS identity.

Pure functions: the Monitoring component registers these objects, the tests validate the same dicts.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from components.contract import METRICS_QUERY_PROXY, MONITORING_NAMESPACE, POD_IDENTITY_AGENT, aps_workspaces_host
from components.k8s.monitoring.values import (
    GRAFANA_POD_LABELS,
    OFF_GPU_NODES,
    QUERY_PROXY_IMAGE_DIGEST,
    QUERY_PROXY_IMAGE_HOST,
    QUERY_PROXY_IMAGE_REPOSITORY,
    QUERY_PROXY_IMAGE_TAG,
)

PORT = 8005
"""The proxy's port (`--port :8005`), its Service's too."""
# The image has no user of its own (scratch): any non-root uid works; 65532 is the distroless "nonroot" convention.
RUN_AS = 65532
# The service AWS signs for: Amazon Managed Service for Prometheus (SigV4 service name `aps`).
SIGNING_NAME = "aps"

LABELS = {"app.kubernetes.io/name": METRICS_QUERY_PROXY, "app.kubernetes.io/part-of": "modelyard"}
SELECTOR = {"app.kubernetes.io/name": METRICS_QUERY_PROXY}


def service_url() -> str:
    """The proxy's Service inside the cluster: Grafana's data source starts with it."""
    return f"http://{METRICS_QUERY_PROXY}.{MONITORING_NAMESPACE}.svc:{PORT}"


def datasource_url(query_url: str, region: str) -> str:
    """Grafana's URL for the workspace: the proxy's Service and the workspace's path, from the workspace's query URL
    (the global stack's `metrics_query_url`, `https://aps-workspaces.<region>.amazonaws.com/workspaces/<id>`). Only the
    path crosses: the proxy sends every request to the workspace region's host it was started with, so a query URL of
    another region or host would be signed for the wrong one; refused."""
    parts = urlsplit(query_url)
    path = parts.path.rstrip("/")
    workspace = path.removeprefix("/workspaces/")
    if (
        parts.scheme != "https"
        or parts.netloc != aps_workspaces_host(region)
        or not path.startswith("/workspaces/")
        or not workspace
        or "/" in workspace
        or parts.query
        or parts.fragment
    ):
        raise ValueError(
            f"metrics_query_url {query_url!r} (the global stack's output) is not a workspace query URL of "
            f"monitoring.remote_write.region {region}: https://{aps_workspaces_host(region)}/workspaces/<id>"
        )
    return f"{service_url()}{path}"


def _meta(name: str) -> dict[str, Any]:
    return {"name": name, "namespace": MONITORING_NAMESPACE, "labels": dict(LABELS)}


def service_account() -> dict[str, Any]:
    """The proxy's own account: the query role's Pod Identity association names it. No API token: the proxy never
    calls the Kubernetes API; Pod Identity mounts its own token (a projected volume for pods.eks.amazonaws.com)."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _meta(METRICS_QUERY_PROXY),
        "automountServiceAccountToken": False,
    }


def image(registry: str = QUERY_PROXY_IMAGE_HOST) -> str:
    """The pinned image from `registry` (public.ecr.aws, or the ECR pull-through cache's prefix serving it)."""
    return f"{registry}/{QUERY_PROXY_IMAGE_REPOSITORY}:{QUERY_PROXY_IMAGE_TAG}@{QUERY_PROXY_IMAGE_DIGEST}"


def args(region: str) -> list[str]:
    """The proxy's flags: sign for `aps` in the workspace's region, send everything to that region's workspace host
    (the path is Grafana's: /workspaces/<id>/api/v1/...), listen on PORT."""
    return ["--name", SIGNING_NAME, "--region", region, "--host", aps_workspaces_host(region), "--port", f":{PORT}"]


def deployment(region: str, *, registry: str = QUERY_PROXY_IMAGE_HOST) -> dict[str, Any]:
    """One replica (the view is for people, and Grafana retries), restricted pod security, off GPU nodes."""
    # tcpSocket: every HTTP path is proxied to the workspace (signed and billed as a query); a probe must not be.
    probe = {"tcpSocket": {"port": "http"}, "periodSeconds": 10, "timeoutSeconds": 2}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(METRICS_QUERY_PROXY),
        "spec": {
            "replicas": 1,
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": dict(SELECTOR)},
            "template": {
                "metadata": {"labels": dict(LABELS)},
                "spec": {
                    "serviceAccountName": METRICS_QUERY_PROXY,
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "affinity": OFF_GPU_NODES,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": RUN_AS,
                        "runAsGroup": RUN_AS,
                        # The Pod Identity token is a projected file: the group makes it readable to the user.
                        "fsGroup": RUN_AS,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "proxy",
                            "image": image(registry),
                            "imagePullPolicy": "IfNotPresent",
                            "args": args(region),
                            "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
                            # A CPU limit unlike the stack's pods (no scrapes to starve): a proxy of a few queries a
                            # minute, bounded so a runaway cannot take the node's CPU (checkov CKV_K8S_11).
                            "resources": {
                                "requests": {"cpu": "25m", "memory": "32Mi"},
                                "limits": {"cpu": "500m", "memory": "128Mi"},
                            },
                            "readinessProbe": probe,
                            "livenessProbe": {**probe, "failureThreshold": 6},
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
                        }
                    ],
                },
            },
        },
    }


def service() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(METRICS_QUERY_PROXY),
        "spec": {
            "type": "ClusterIP",
            "selector": dict(SELECTOR),
            "ports": [{"name": "http", "port": PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def network_policy() -> dict[str, Any]:
    """In: Grafana's pods only (the labels the grafana subchart gives them), on PORT. Out: DNS, the Pod Identity agent
    (the role's credentials) and HTTPS. HTTPS goes to any address: the workspace's endpoint is an interface endpoint in
    the cell's VPC, one across the peering (docs/regions.md), or a public address through NAT, and the proxy connects
    to nothing but the host it was started with."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(METRICS_QUERY_PROXY),
        "spec": {
            "podSelector": {"matchLabels": dict(SELECTOR)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                {
                    "from": [{"podSelector": {"matchLabels": dict(GRAFANA_POD_LABELS)}}],
                    "ports": [{"protocol": "TCP", "port": PORT}],
                }
            ],
            "egress": [
                {
                    "to": [
                        {
                            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                        }
                    ],
                    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                },
                {"to": [{"ipBlock": {"cidr": POD_IDENTITY_AGENT}}], "ports": [{"protocol": "TCP", "port": 80}]},
                {"ports": [{"protocol": "TCP", "port": 443}]},
            ],
        },
    }


def objects(region: str, *, registry: str = QUERY_PROXY_IMAGE_HOST) -> list[dict[str, Any]]:
    """Every object of the proxy, for the workspace of `region` (monitoring.remote_write.region)."""
    return [service_account(), deployment(region, registry=registry), service(), network_policy()]
