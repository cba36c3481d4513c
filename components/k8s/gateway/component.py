"""The Gateway component: the LiteLLM proxy in namespace `gateway`, configured from the stack's settings.

The caller passes the cluster's Kubernetes provider in `opts` (``provider=cluster.k8s_provider``) and makes
it depend on Monitoring (the ServiceMonitor is a CRD of kube-prometheus-stack). Manifests come from
`components.k8s.gateway.objects` (pure, tested); this module only registers them and fills the Secrets.

Secret values (API keys, master key, provider API keys) come from `modelyard:gateway`, which must then
be a Pulumi secret (`pulumi config set --secret --path ...`; the settings refuse them in plain text, wherever
they are given): each is wrapped as a Pulumi secret, so the
state, `pulumi preview` and the offline plan show it as [secret]; API keys are stored only as digests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.contract import GATEWAY_NAME, GATEWAY_NAMESPACE, GATEWAY_PORT
from components.k8s.gateway.config import key_digest
from components.k8s.gateway.objects import (
    IMAGE_REGISTRY,
    SecretSpec,
    deployment,
    manifests,
    metrics_token,
    namespace_object,
    secret_object,
    secret_specs,
    target_group_binding,
)
from components.settings import Settings


@dataclass(frozen=True, kw_only=True)
class RedisEndpoint:
    """Where the replicas share their counters: GatewayState's redis_host, redis_port, redis_password."""

    host: pulumi.Input[str]
    port: pulumi.Input[int]
    password: pulumi.Input[str]
    """A secret: it goes into a Secret of its own, never into the Deployment."""


@dataclass(frozen=True, kw_only=True)
class GatewayArgs:
    settings: Settings
    """The stack's settings: models and their owners, tenants, keys, limits and fallbacks."""
    image_registry: Callable[[str], pulumi.Input[str]] | None = None
    """Upstream registry host -> where nodes pull it from (the ECR pull-through cache); default: ghcr.io."""
    database_url: pulumi.Input[str] | None = None
    """GatewayState's database_url (a secret), with settings gateway.database; None: no database (static keys,
    no budgets)."""
    redis: RedisEndpoint | None = None
    """GatewayState's Redis endpoint, with settings gateway.redis; None: each replica counts its limits alone."""
    target_group_arn: pulumi.Input[str] | None = None
    """The target group of the gateway's NLB (GatewayExposure.target_group_arn, from the AWS layer); required
    when settings set gateway.hostname, which is when the AWS layer creates one. The TargetGroupBinding is a
    CRD of the AWS Load Balancer Controller: make the component depend on its release."""


def secret_value(settings: Settings, spec: SecretSpec) -> str:
    """The plaintext a Secret holds (an API key's digest, never the key)."""
    kind, _, name = spec.source.partition(":")
    gateway = settings.gateway
    if kind == "api-key":
        return key_digest(gateway.keys[name].key)
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


def check_wiring(settings: Settings, args: GatewayArgs) -> None:
    """Each AWS-layer output goes with the setting that creates it: a gateway configured for a database, Redis or
    a load balancer it was not given (or given one the settings do not ask for) is a wiring fault of the caller."""
    gateway = settings.gateway
    pairs = {
        "database_url": (gateway.database, args.database_url, "gateway.database", "GatewayState's database_url"),
        "redis": (gateway.redis, args.redis, "gateway.redis", "GatewayState's Redis endpoint"),
        "target_group_arn": (
            gateway.hostname,
            args.target_group_arn,
            "gateway.hostname",
            "GatewayExposure's target_group_arn",
        ),
    }
    for field, (setting, given, key, source) in pairs.items():
        if (setting is None) != (given is None):
            raise ValueError(f"GatewayArgs.{field} goes with settings {key}: pass {source} exactly when it is set")


def _secret_input(settings: Settings, spec: SecretSpec, args: GatewayArgs) -> pulumi.Output[str]:
    """A Secret's value as a Pulumi secret: from the settings, or from GatewayState's outputs."""
    if spec.source == "database-url":
        assert args.database_url is not None
        return pulumi.Output.secret(args.database_url)
    if spec.source == "redis-password":
        assert args.redis is not None
        return pulumi.Output.secret(args.redis.password)
    return pulumi.Output.secret(secret_value(settings, spec))


class Gateway(pulumi.ComponentResource):
    """One OpenAI-compatible endpoint for every tenant: the LiteLLM proxy, its config, keys and policies."""

    service_url: pulumi.Output[str]

    def __init__(self, name: str, *, args: GatewayArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("modelyard:k8s:Gateway", name, None, opts)
        settings = args.settings
        check_wiring(settings, args)
        child = pulumi.ResourceOptions(parent=self)
        namespace_obj = namespace_object(settings.cluster.version, load_balanced=args.target_group_arn is not None)
        namespace = k8s.core.v1.Namespace(f"{name}-namespace", metadata=namespace_obj["metadata"], opts=child)
        in_namespace = pulumi.ResourceOptions(parent=self, depends_on=[namespace])
        secrets = []
        for secret in secret_specs(settings):
            secrets.append(
                k8s.core.v1.Secret(
                    f"{name}-{secret.name}",
                    metadata=secret_object(secret, "")["metadata"],
                    type="Opaque",
                    string_data={secret.key: _secret_input(settings, secret, args)},
                    opts=in_namespace,
                )
            )
        after_secrets = pulumi.ResourceOptions(parent=self, depends_on=[namespace, *secrets])
        for obj in manifests(settings):
            spec: Any = obj.get("spec")
            if obj["kind"] == "Deployment" and (args.image_registry is not None or args.redis is not None):
                # The account's pull-through cache and the Redis endpoint: Outputs, known once AWS answers.
                registry = args.image_registry(IMAGE_REGISTRY) if args.image_registry is not None else IMAGE_REGISTRY
                redis_host, redis_port = (args.redis.host, args.redis.port) if args.redis else ("", 0)
                # A port read through a stack reference arrives as a float (JSON numbers): 6379.0 is no port.
                spec = pulumi.Output.all(registry, redis_host, redis_port).apply(
                    lambda a: deployment(
                        settings, image_registry=a[0], **({"redis_endpoint": (a[1], int(a[2]))} if args.redis else {})
                    )["spec"]
                )
            _register(f"{name}-{obj['kind'].lower()}-{obj['metadata']['name']}", obj, spec, after_secrets)
        if args.target_group_arn is not None:
            binding = target_group_binding("")
            k8s.apiextensions.CustomResource(
                f"{name}-targetgroupbinding-{binding['metadata']['name']}",
                api_version=binding["apiVersion"],
                kind=binding["kind"],
                metadata=binding["metadata"],
                # Only the ARN waits for the AWS layer: the rest of the spec shows in every preview.
                spec={**binding["spec"], "targetGroupARN": args.target_group_arn},
                opts=after_secrets,
            )
        self.service_url = pulumi.Output.from_input(
            f"http://{GATEWAY_NAME}.{GATEWAY_NAMESPACE}.svc.cluster.local:{GATEWAY_PORT}"
        )
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
