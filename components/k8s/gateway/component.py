"""The Gateway component: the LiteLLM proxy in namespace `gateway`, configured from the stack's settings.

The caller passes the cluster's Kubernetes provider in `opts` (``provider=cluster.k8s_provider``) and makes
it depend on Monitoring (the ServiceMonitor is a CRD of kube-prometheus-stack). Manifests come from
`components.k8s.gateway.objects` (pure, tested); this module only registers them and fills the Secrets.

Secret values (tenant keys, master key, provider API keys) come from `modelyard:gateway`, which must then
be a Pulumi secret (`pulumi config set --secret --path ...`): each is wrapped as a Pulumi secret, so the
state, `pulumi preview` and the offline plan show it as [secret]; tenant keys are stored only as digests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pulumi.runtime.config import is_config_secret

from components.k8s.gateway.config import GatewayConfigError, key_digest
from components.k8s.gateway.objects import (
    IMAGE_REGISTRY,
    NAME,
    NAMESPACE,
    PORT,
    SecretSpec,
    deployment,
    manifests,
    metrics_token,
    namespace_object,
    secret_object,
    secret_specs,
)
from components.settings import Settings

CONFIG_KEY = "modelyard:gateway"


@dataclass(frozen=True, kw_only=True)
class GatewayArgs:
    settings: Settings
    """The stack's settings: models and their owners, tenants, keys, limits and fallbacks."""
    image_registry: Callable[[str], pulumi.Input[str]] | None = None
    """Upstream registry host -> where nodes pull it from (the ECR pull-through cache); default: ghcr.io."""


def secret_value(settings: Settings, spec: SecretSpec) -> str:
    """The plaintext a Secret holds (a tenant key's digest, never the key)."""
    kind, _, name = spec.source.partition(":")
    gateway = settings.gateway
    if kind == "tenant-key":
        return key_digest(gateway.keys[name])
    if kind == "master-key":
        assert gateway.master_key
        return gateway.master_key
    if kind == "metrics-token":
        assert gateway.master_key
        return metrics_token(gateway.master_key)
    if kind == "fallback-key":
        key = gateway.fallbacks[name].api_key
        assert key
        return key
    raise ValueError(f"unknown secret source {spec.source!r}")


def require_secret_config(settings: Settings) -> None:
    """Refuse secret values the stack file holds in plain text."""
    gateway = settings.gateway
    holds = bool(gateway.keys or gateway.master_key or any(f.api_key for f in gateway.fallbacks.values()))
    if holds and not is_config_secret(CONFIG_KEY):
        raise GatewayConfigError(
            "gateway",
            "holds keys in plain text: set them with `pulumi config set --secret --path "
            "'modelyard:gateway.keys.<tenant>' <key>` so the stack file keeps only ciphertext (docs/gateway.md)",
        )


class Gateway(pulumi.ComponentResource):
    """One OpenAI-compatible endpoint for every tenant: the LiteLLM proxy, its config, keys and policies."""

    service_url: pulumi.Output[str]

    def __init__(self, name: str, *, args: GatewayArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("modelyard:k8s:Gateway", name, None, opts)
        settings = args.settings
        try:
            require_secret_config(settings)
        except GatewayConfigError as exc:
            # One message without a Python traceback, as settings errors print.
            raise pulumi.RunError(f"modelyard:{exc}") from None
        child = pulumi.ResourceOptions(parent=self)
        namespace_obj = namespace_object(settings.cluster.version)
        namespace = k8s.core.v1.Namespace(f"{name}-namespace", metadata=namespace_obj["metadata"], opts=child)
        in_namespace = pulumi.ResourceOptions(parent=self, depends_on=[namespace])
        secrets = []
        for secret in secret_specs(settings):
            secrets.append(
                k8s.core.v1.Secret(
                    f"{name}-{secret.name}",
                    metadata=secret_object(secret, "")["metadata"],
                    type="Opaque",
                    string_data={secret.key: pulumi.Output.secret(secret_value(settings, secret))},
                    opts=in_namespace,
                )
            )
        after_secrets = pulumi.ResourceOptions(parent=self, depends_on=[namespace, *secrets])
        for obj in manifests(settings):
            spec: Any = obj.get("spec")
            if obj["kind"] == "Deployment" and args.image_registry is not None:
                # The account's pull-through cache: an Output, known once the account id is.
                spec = pulumi.Output.from_input(args.image_registry(IMAGE_REGISTRY)).apply(
                    lambda host: deployment(settings, image_registry=host)["spec"]
                )
            _register(f"{name}-{obj['kind'].lower()}-{obj['metadata']['name']}", obj, spec, after_secrets)
        self.service_url = pulumi.Output.from_input(f"http://{NAME}.{NAMESPACE}.svc.cluster.local:{PORT}")
        self.register_outputs({"service_url": self.service_url})


def _register(resource_name: str, obj: dict[str, Any], spec: Any, opts: pulumi.ResourceOptions) -> None:
    kind, metadata = obj["kind"], obj["metadata"]
    if kind == "ServiceAccount":
        k8s.core.v1.ServiceAccount(resource_name, metadata=metadata, automount_service_account_token=False, opts=opts)
    elif kind == "ConfigMap":
        k8s.core.v1.ConfigMap(resource_name, metadata=metadata, data=obj["data"], opts=opts)
    elif kind == "Deployment":
        k8s.apps.v1.Deployment(resource_name, metadata=metadata, spec=spec, opts=opts)
    elif kind == "Service":
        k8s.core.v1.Service(resource_name, metadata=metadata, spec=spec, opts=opts)
    elif kind == "PodDisruptionBudget":
        k8s.policy.v1.PodDisruptionBudget(resource_name, metadata=metadata, spec=spec, opts=opts)
    elif kind == "NetworkPolicy":
        k8s.networking.v1.NetworkPolicy(resource_name, metadata=metadata, spec=spec, opts=opts)
    elif kind == "ServiceMonitor":
        k8s.apiextensions.CustomResource(
            resource_name, api_version=obj["apiVersion"], kind=kind, metadata=metadata, spec=spec, opts=opts
        )
    else:
        raise ValueError(f"the gateway renders no {kind}")
