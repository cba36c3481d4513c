"""The Gateway component: the LiteLLM proxy in namespace `gateway`, configured from GatewayArgs.

The caller passes the cluster's Kubernetes provider in `opts` (``provider=cluster.k8s_provider``) and makes
it depend on Monitoring (the ServiceMonitor is a CRD of kube-prometheus-stack). Manifests come from
`components.k8s.gateway.objects` (pure, tested); this module only registers them and fills the Secrets.
`components.platform.gateway_args` builds the args from the stack's settings and the AWS layer's outputs.

Secret values (API keys, master key, provider API keys) come from `modelyard:gateway`, which must then
be a Pulumi secret (`pulumi config set --secret --path ...`; the settings refuse them in plain text, wherever
they are given): each is wrapped as a Pulumi secret, so the
state, `pulumi preview` and the offline plan show it as [secret]; API keys are stored only as digests.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
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
from components.settings.types import GatewaySettings, NatMode


@dataclass(frozen=True, kw_only=True)
class RedisEndpoint:
    """Where the replicas share their counters: GatewayState's redis_host, redis_port, redis_password."""

    host: pulumi.Input[str]
    port: pulumi.Input[int]
    password: pulumi.Input[str]
    """A secret: it goes into a Secret of its own, never into the Deployment."""


@dataclass(frozen=True, kw_only=True)
class GatewayTenant:
    """What the gateway knows of one tenant: what its keys may call and the limits they share."""

    models: tuple[str, ...]
    """The models (keys of the stack's models) the tenant may call (`tenants.<name>.models`)."""
    fallback_models: tuple[str, ...] = ()
    """Its models that may fall back to a proprietary API (`gateway.fallbacks`), sorted; none unless the tenant has
    `data: external-allowed`. Default: none."""
    rpm_limit: int | None
    """Requests a minute all the tenant's keys together may send, per gateway replica (all replicas with Redis): the
    tenant's own, else its share of the GPUs (`TenantSettings.rate_limits`); None only for a tenant that is
    deliberately unlimited (`tenants.<name>.unlimited`)."""
    tpm_limit: int | None
    """Tokens (prompt + output) a minute, as rpm_limit."""


@dataclass(frozen=True, kw_only=True)
class GatewayCanary:
    """A model's canary as the gateway routes it (`models.<m>.canary`)."""

    stable_revision: str
    """The revision of the stable servers (`models.<m>.revision`)."""
    revision: str
    """The canary's revision."""
    weight: int
    """Percent of the model's requests sent to the canary (1-99); the stable servers get the rest."""


@dataclass(frozen=True, kw_only=True)
class GatewayArgs:
    """What the gateway is built from: the gateway's settings, facts the platform derives from the stack's settings
    (`components.platform.gateway_args`), and the AWS layer's outputs for the pieces the settings ask for."""

    gateway: GatewaySettings
    """The `gateway` settings: keys, master key, fallbacks, per-model limits, database, Redis, hostname and
    exposure (its `replicas` is read from `replicas` below, where the preset's default is filled in)."""
    replicas: int
    """Proxy replicas (`gateway.replicas`, else the preset's)."""
    region: str
    """The stack's AWS region: where Bedrock fallbacks are invoked."""
    kubernetes_version: str
    """The cluster's Kubernetes minor version (`cluster.version`, e.g. "1.33"): the Pod Security labels' version."""
    vpc_cidr: str
    """The VPC's IPv4 range (`network.cidr`): the proxy's egress to RDS, ElastiCache and the bedrock-runtime
    endpoint."""
    nat: NatMode
    """How the nodes reach the internet (`network.nat`); with none, no egress to public addresses."""
    bedrock_endpoint: bool = False
    """The VPC has a bedrock-runtime interface endpoint, whose private addresses answer for Bedrock. Default: no."""
    load_balancer_cidrs: tuple[str, ...] = ()
    """With `gateway.hostname`: the CIDRs of the subnets the NLB is attached to (private, or public with exposure
    public), admitted to the proxy's port; the NLB's targets see its private addresses, not the clients'.
    Default: none."""
    model_owners: Mapping[str, str]
    """Model -> the tenant whose namespace its servers run in: every model of the stack, routed by its name."""
    tenants: Mapping[str, GatewayTenant]
    """The stack's tenants by name: what each one's keys may call and the limits they share."""
    canaries: Mapping[str, GatewayCanary] = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    """Model -> its canary: the model's name is split between both server sets by weight, and each revision is also
    reachable alone as `<model>@<revision>` (for `modelyard eval`). Default: none."""
    fallbacks_in_use: tuple[str, ...] = ()
    """The models (keys of `gateway.fallbacks`) some tenant may fall back from, sorted: only these get a route to
    their provider, its key's Secret and the egress to it. Default: none."""
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


def secret_value(gateway: GatewaySettings, spec: SecretSpec) -> str:
    """The plaintext a Secret holds (an API key's digest, never the key)."""
    kind, _, name = spec.source.partition(":")
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


def check_wiring(args: GatewayArgs) -> None:
    """Each AWS-layer output goes with the setting that creates it: a gateway configured for a database, Redis or
    a load balancer it was not given (or given one the settings do not ask for) is a wiring fault of the caller."""
    gateway = args.gateway
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


def _secret_input(spec: SecretSpec, args: GatewayArgs) -> pulumi.Output[str]:
    """A Secret's value as a Pulumi secret: from the settings, or from GatewayState's outputs."""
    if spec.source == "database-url":
        assert args.database_url is not None
        return pulumi.Output.secret(args.database_url)
    if spec.source == "redis-password":
        assert args.redis is not None
        return pulumi.Output.secret(args.redis.password)
    return pulumi.Output.secret(secret_value(args.gateway, spec))


class Gateway(pulumi.ComponentResource):
    """One OpenAI-compatible endpoint for every tenant: the LiteLLM proxy, its config, keys and policies."""

    service_url: pulumi.Output[str]

    def __init__(self, name: str, *, args: GatewayArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("modelyard:k8s:Gateway", name, None, opts)
        check_wiring(args)
        child = pulumi.ResourceOptions(parent=self)
        namespace_obj = namespace_object(args.kubernetes_version, load_balanced=args.target_group_arn is not None)
        namespace = k8s.core.v1.Namespace(f"{name}-namespace", metadata=namespace_obj["metadata"], opts=child)
        in_namespace = pulumi.ResourceOptions(parent=self, depends_on=[namespace])
        secrets = []
        for secret in secret_specs(args):
            secrets.append(
                k8s.core.v1.Secret(
                    f"{name}-{secret.name}",
                    metadata=secret_object(secret, "")["metadata"],
                    type="Opaque",
                    string_data={secret.key: _secret_input(secret, args)},
                    opts=in_namespace,
                )
            )
        after_secrets = pulumi.ResourceOptions(parent=self, depends_on=[namespace, *secrets])
        for obj in manifests(args):
            spec: Any = obj.get("spec")
            if obj["kind"] == "Deployment" and (args.image_registry is not None or args.redis is not None):
                # The account's pull-through cache and the Redis endpoint: Outputs, known once AWS answers.
                registry = args.image_registry(IMAGE_REGISTRY) if args.image_registry is not None else IMAGE_REGISTRY
                redis_host, redis_port = (args.redis.host, args.redis.port) if args.redis else ("", 0)
                # A port read through a stack reference arrives as a float (JSON numbers): 6379.0 is no port.
                spec = pulumi.Output.all(registry, redis_host, redis_port).apply(
                    lambda a: deployment(
                        args, image_registry=a[0], **({"redis_endpoint": (a[1], int(a[2]))} if args.redis else {})
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
