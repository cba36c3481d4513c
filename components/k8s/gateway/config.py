"""The gateway's configuration: LiteLLM's config.yaml and the tenants file, pure functions of GatewayArgs.

Nothing here holds a secret. Tenant keys reach the proxy as SHA-256 digests, each in a Secret of its own,
read by the kit's custom auth module (files/modelyard_auth.py); the master key and the fallback providers'
API keys reach it as environment variables from their own Secrets (`os.environ/...` in the config).

Routing, by model (a key of the stack's models):
  <model>          the self-hosted servers only: `openai/<model>` at the model's in-cluster Service. No
                   fallback is configured on this name, so a tenant whose data must stay in the VPC can
                   never be sent outside, whatever its request asks for.
  <model>@hybrid   the same servers, with a fallback to the proprietary model `gateway.fallbacks.<model>`
                   names. Only tenants with `data: external-allowed` get it: their key maps <model> to
                   <model>@hybrid (a LiteLLM key alias), so they call the same name as everyone else.
  fallback/<model> the proprietary model itself; no key lists it, so it is reached only as a fallback.

A model with a canary (`models.<m>.canary`): <model> (and <model>@hybrid) route to two deployments, the stable
servers and the canary's, weighted by the canary's weight; `<model>@<revision>` reaches one revision alone, for
the tenants that may call the model (`modelyard eval` compares them).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from components.contract import (
    CANARY_SUFFIX,
    GENERATION_TIMEOUT_SECONDS,
    HYBRID_SUFFIX,
    canary_release,
    revision_alias,
    serving_fullname,
    tenant_model_names,
    tenant_namespace,
)
from components.settings.types import FallbackProvider

if TYPE_CHECKING:
    # Only for annotations: the component's module imports the Pulumi SDKs, which this one does without.
    from components.k8s.gateway.component import GatewayArgs

# The serving chart's Service port (charts/llm-serving values: service.port).
SERVING_PORT = 8000
FALLBACK_PREFIX = "fallback/"
AUTH_MODULE = "modelyard_auth"
AUTH_MODULE_FILE = Path(__file__).resolve().parent / "files" / f"{AUTH_MODULE}.py"
# Where the ConfigMap and the key Secrets are mounted in the gateway's pod.
CONFIG_DIR = "/etc/litellm"
KEYS_DIR = "/etc/litellm-keys"
MASTER_KEY_ENV = "LITELLM_MASTER_KEY"
# Where the proxy finds its state (LiteLLM 1.103.0 reads DATABASE_URL at start; the coordination Redis block
# below names the REDIS_* variables, which LiteLLM's own Redis clients read too).
DATABASE_URL_ENV = "DATABASE_URL"
REDIS_HOST_ENV = "REDIS_HOST"
REDIS_PORT_ENV = "REDIS_PORT"
REDIS_PASSWORD_ENV = "REDIS_PASSWORD"
METRICS_TOKEN_ENV = "MODELYARD_METRICS_TOKEN"
# The proxy's environment besides secrets, in the pod and in the tests: offline at start (the bundled model
# cost map, no telemetry, no stray .env), and the admin UI copied to a writable folder rather than restructured
# inside the read-only image.
PROXY_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_TELEMETRY_DISABLED": "True",
    "LITELLM_MODE": "PRODUCTION",
    "LITELLM_UI_PATH": "/tmp/litellm-ui",
}
# The only routes a tenant's key may call (the custom auth returns them as the key's allowed_routes, so LiteLLM
# answers 403 on every other: health, model info with its internal addresses, every admin route). A route here
# also admits what lies under it (/v1/models/<id>). Embeddings and the rest of the OpenAI API are left out: the kit
# serves generative models with vLLM's chat and completions endpoints.
TENANT_ROUTES = (
    "/chat/completions",
    "/v1/chat/completions",
    "/completions",
    "/v1/completions",
    "/models",
    "/v1/models",
)
# The auth module's callback that blanks the response header naming the model server's address for tenants.
RESPONSE_HEADERS_CALLBACK = f"{AUTH_MODULE}.tenant_response_headers"
# Seconds a request may take end to end (long generations of a reasoning model run for minutes).
REQUEST_TIMEOUT_SECONDS = GENERATION_TIMEOUT_SECONDS
# Seconds LiteLLM waits before it routes to a deployment again after failures (allowed_fails per minute).
COOLDOWN_SECONDS = 30


def model_service_url(args: GatewayArgs, model: str, *, canary: bool = False) -> str:
    """The in-cluster URL (OpenAI API base) of a model's servers: the chart's fullname in its owner's namespace (the
    stable release is named after the model, its canary's `<model>-canary`: components.k8s.serving)."""
    owner = args.model_owners[model]
    service = serving_fullname(canary_release(model) if canary else model)
    return f"http://{service}.{tenant_namespace(owner)}.svc.cluster.local:{SERVING_PORT}/v1"


def _split_rpm(rpm: int, weight: int) -> tuple[int, int]:
    """A model's per-deployment rpm split between its stable servers and its canary by the canary's weight, so the two
    together admit what the model's limit says (each at least 1)."""
    canary = max(1, round(rpm * weight / 100))
    return max(1, rpm - canary), canary


def _self_hosted(args: GatewayArgs, model: str, name: str) -> list[dict[str, Any]]:
    """The deployments LiteLLM routes `name` to: the model's servers, or with a canary both server sets, weighted
    (LiteLLM's simple-shuffle picks among deployments of one model_name by `litellm_params.weight` first)."""
    params: dict[str, Any] = {
        "model": f"openai/{model}",
        "api_base": model_service_url(args, model),
        # vLLM checks no key; LiteLLM's OpenAI client wants one.
        "api_key": "none",
        "timeout": REQUEST_TIMEOUT_SECONDS,
    }
    rpm = args.gateway.model_rpm.get(model)
    canary = args.canaries.get(model)
    if canary is None:
        if rpm is not None:
            params["rpm"] = rpm
        return [
            {
                "model_name": name,
                "litellm_params": params,
                "model_info": {"id": name, "modelyard_hosting": "self-hosted"},
            }
        ]
    stable_params = {**params, "weight": 100 - canary.weight}
    canary_params = {**params, "api_base": model_service_url(args, model, canary=True), "weight": canary.weight}
    if rpm is not None:
        stable_params["rpm"], canary_params["rpm"] = _split_rpm(rpm, canary.weight)
    return [
        {
            "model_name": name,
            "litellm_params": stable_params,
            "model_info": {
                "id": name,
                "modelyard_hosting": "self-hosted",
                "modelyard_revision": canary.stable_revision,
            },
        },
        {
            "model_name": name,
            "litellm_params": canary_params,
            "model_info": {
                "id": f"{name}{CANARY_SUFFIX}",
                "modelyard_hosting": "self-hosted",
                "modelyard_revision": canary.revision,
            },
        },
    ]


def _revision_routes(args: GatewayArgs, model: str) -> list[dict[str, Any]]:
    """`<model>@<revision>` for each server set of a model with a canary: one revision alone, no weight, no fallback
    (what `modelyard eval` compares)."""
    canary = args.canaries[model]
    routes = []
    for revision, is_canary in ((canary.stable_revision, False), (canary.revision, True)):
        name = revision_alias(model, revision)
        params = {
            "model": f"openai/{model}",
            "api_base": model_service_url(args, model, canary=is_canary),
            "api_key": "none",
            "timeout": REQUEST_TIMEOUT_SECONDS,
        }
        info = {"id": name, "modelyard_hosting": "self-hosted", "modelyard_revision": revision}
        routes.append({"model_name": name, "litellm_params": params, "model_info": info})
    return routes


def tenant_models(args: GatewayArgs, tenant: str) -> list[str]:
    """Every name a tenant's keys may call (components.contract.tenant_model_names, which the settings also check the
    quality runner's key against): its models, `<model>@hybrid` where it may fall back, and `<model>@<revision>` for
    its models with a canary."""
    spec = args.tenants[tenant]
    canaries = {m: (c.stable_revision, c.revision) for m, c in args.canaries.items()}
    return tenant_model_names(spec.models, fallback_models=spec.fallback_models, canaries=canaries)


def key_digest(key: str) -> str:
    """What the cluster keeps of a tenant's key: its SHA-256 digest in hex (as the custom auth computes it)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def env_name(kind: str, model: str) -> str:
    """The environment variable carrying one secret value, e.g. FALLBACK_API_KEY_LLAMA_8B."""
    return f"{kind}_{''.join(c if c.isalnum() else '_' for c in model).upper()}"


def _fallback_params(args: GatewayArgs, model: str) -> dict[str, Any]:
    fallback = args.gateway.fallbacks[model]
    if fallback.provider is FallbackProvider.BEDROCK:
        return {"model": f"bedrock/{fallback.model}", "aws_region_name": args.region}
    return {
        "model": f"{fallback.provider.value}/{fallback.model}",
        "api_key": f"os.environ/{env_name('FALLBACK_API_KEY', model)}",
    }


def gateway_config(args: GatewayArgs) -> dict[str, Any]:
    """LiteLLM's config.yaml for the stack (no secret in it)."""
    model_list: list[dict[str, Any]] = []
    fallbacks: list[dict[str, list[str]]] = []
    used_hybrid = set(args.fallbacks_in_use)
    for model in sorted(args.model_owners):
        model_list.extend(_self_hosted(args, model, model))
        if model in args.canaries:
            model_list.extend(_revision_routes(args, model))
        if model in used_hybrid:
            # The same servers under a second name (LiteLLM counts a per-deployment rpm per name).
            name = model + HYBRID_SUFFIX
            model_list.extend(_self_hosted(args, model, name))
            target = FALLBACK_PREFIX + model
            model_list.append(
                {
                    "model_name": target,
                    "litellm_params": {**_fallback_params(args, model), "timeout": REQUEST_TIMEOUT_SECONDS},
                    "model_info": {"id": target, "modelyard_hosting": "external"},
                }
            )
            fallbacks.append({name: [target]})
    router_settings: dict[str, Any] = {
        "routing_strategy": "simple-shuffle",
        "num_retries": 1,
        "allowed_fails": 3,
        "cooldown_time": COOLDOWN_SECONDS,
        "timeout": REQUEST_TIMEOUT_SECONDS,
        "fallbacks": fallbacks,
    }
    if args.gateway.model_rpm:
        router_settings["optional_pre_call_checks"] = ["enforce_model_rate_limits"]
    general_settings: dict[str, Any] = {
        "custom_auth": f"{AUTH_MODULE}.user_api_key_auth",
        # Per-key model lists and route checks apply to keys the custom auth returns.
        "custom_auth_run_common_checks": True,
        "disable_spend_logs": True,
        "disable_master_key_return": True,
        # /health (the master key's alone) lists each deployment's model and whether it answered, without its
        # address, parameters or the failure's traceback.
        "health_check_details": False,
    }
    if args.gateway.master_key:
        general_settings["master_key"] = f"os.environ/{MASTER_KEY_ENV}"
    if args.gateway.redis is not None:
        # The proxy's coordination Redis: the per-key rpm/tpm limiter, the router's per-model limits and
        # cooldowns, and spend counters, shared by every replica. An explicit block rather than LiteLLM's
        # REDIS_* fallback, which stays per-pod (with only a log line) when Redis misses its start-up ping.
        general_settings["coordination_redis"] = {
            "host": f"os.environ/{REDIS_HOST_ENV}",
            "port": f"os.environ/{REDIS_PORT_ENV}",
            "password": f"os.environ/{REDIS_PASSWORD_ENV}",
            "ssl": True,
        }
    return {
        "model_list": model_list,
        "router_settings": router_settings,
        "litellm_settings": {
            "enable_post_custom_auth_checks": True,
            "drop_params": True,
            "request_timeout": REQUEST_TIMEOUT_SECONDS,
            "telemetry": False,
            "callbacks": ["prometheus", RESPONSE_HEADERS_CALLBACK],
        },
        "general_settings": general_settings,
    }


def gateway_tenants(args: GatewayArgs) -> dict[str, Any]:
    """tenants.json for the custom auth: the routes a tenant's key may call; each key's tenant and own limits; each
    tenant, what it may call, its aliases and the limits all its keys share (every tenant, with a key or not yet, so
    the plan shows each one's limits)."""
    key_tenants = args.gateway.key_tenants()
    keys = {
        name: {"tenant": key_tenants[name], "rpm_limit": key.rpm_limit, "tpm_limit": key.tpm_limit}
        for name, key in sorted(args.gateway.keys.items())
    }
    tenants: dict[str, Any] = {}
    for tenant, spec in sorted(args.tenants.items()):
        tenants[tenant] = {
            "models": tenant_models(args, tenant),
            "aliases": {m: m + HYBRID_SUFFIX for m in spec.fallback_models},
            "rpm_limit": spec.rpm_limit,
            "tpm_limit": spec.tpm_limit,
        }
    return {"routes": list(TENANT_ROUTES), "keys": keys, "tenants": tenants}
