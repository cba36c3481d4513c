"""modelyard's static-key auth for the LiteLLM proxy (general_settings.custom_auth).

Shipped beside config.yaml in the gateway's ConfigMap; LiteLLM imports it from the config's folder.
It holds no secret: each API key arrives as the SHA-256 hex digest of the key, one file per key
(MODELYARD_KEYS_DIR/<key name>, mounted from that key's own Secret); which tenant a key calls for, what the
tenant may call and both sets of limits come from MODELYARD_TENANTS (tenants.json in the ConfigMap). A key
matching no digest, or no key, is refused with 401. The master key (LITELLM_MASTER_KEY, its own Secret) is
accepted as the proxy admin. /metrics (which LiteLLM puts behind auth) accepts only Prometheus's scrape
token (MODELYARD_METRICS_TOKEN, its own Secret), and that token nothing else.

Routes: a tenant's key may call the routes tenants.json lists ("routes": the OpenAI chat, completions and
model-list API) and nothing else. They are the key's allowed_routes, which LiteLLM checks before any handler
runs, so /health (live calls to every model server), /model/info (their internal addresses) and every admin route
answer 403. The master key is the proxy admin and reaches everything.

Limits: a key's own rpm_limit and tpm_limit, and its tenant's, which all the tenant's keys share (LiteLLM's
user limits: the tenant is the key's user). The proxy enforces both per replica, or across replicas when the
gateway shares its counters through Redis (gateway.redis).

Answers: LiteLLM names the model server that answered in a response header (x-litellm-model-api-base, an
in-cluster URL). `tenant_response_headers`, a callback in config.yaml's litellm_settings, blanks it for every key
but the master key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from pathlib import Path
from typing import Any

from fastapi import Request
from litellm.integrations.custom_logger import CustomLogger
from litellm.proxy._types import LitellmUserRoles, ProxyErrorTypes, ProxyException, UserAPIKeyAuth

TENANTS_FILE = os.environ.get("MODELYARD_TENANTS", "/etc/litellm/tenants.json")
KEYS_DIR = os.environ.get("MODELYARD_KEYS_DIR", "/etc/litellm/keys")
# Seconds between re-reads of the tenants and key files (a rotated Secret reaches the pod's files in
# about a minute; nothing restarts).
RELOAD_SECONDS = 30.0

_cache: dict[str, Any] = {"at": -RELOAD_SECONDS, "tenants": {}, "digests": {}}


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _load() -> tuple[dict[str, Any], dict[str, str]]:
    """tenants.json ({"keys": ..., "tenants": ...}) and the digests by key name, re-read every RELOAD_SECONDS."""
    now = time.monotonic()
    if now - _cache["at"] >= RELOAD_SECONDS:
        tenants = json.loads(Path(TENANTS_FILE).read_text(encoding="utf-8"))
        digests = {}
        for name in tenants["keys"]:
            path = Path(KEYS_DIR) / name
            if path.is_file():
                digest = path.read_text(encoding="utf-8").strip().lower()
                if len(digest) == 64:
                    digests[name] = digest
        _cache.update(at=now, tenants=tenants, digests=digests)
    return _cache["tenants"], _cache["digests"]


def _refuse(message: str) -> ProxyException:
    return ProxyException(message=message, type=ProxyErrorTypes.auth_error, param="api_key", code=401)


async def user_api_key_auth(request: Request, api_key: str) -> UserAPIKeyAuth:
    if not api_key:
        raise _refuse("missing API key: send Authorization: Bearer <your tenant's key>")
    if api_key.lower().startswith("bearer "):
        api_key = api_key[7:].strip()
    offered = _digest(api_key)
    if request.url.path.rstrip("/") == "/metrics":
        token = os.environ.get("MODELYARD_METRICS_TOKEN")
        if token and hmac.compare_digest(offered, _digest(token)):
            return UserAPIKeyAuth(api_key=offered, user_role=LitellmUserRoles.PROXY_ADMIN, key_alias="metrics")
        raise _refuse("/metrics takes the scrape token only")
    token = os.environ.get("MODELYARD_METRICS_TOKEN")
    if token and hmac.compare_digest(offered, _digest(token)):
        raise _refuse("the scrape token reads /metrics only")
    master = os.environ.get("LITELLM_MASTER_KEY")
    if master and hmac.compare_digest(offered, _digest(master)):
        return UserAPIKeyAuth(api_key=offered, user_role=LitellmUserRoles.PROXY_ADMIN, key_alias="master")
    access, digests = _load()
    match = None
    for name, digest in digests.items():
        # Compare every digest (no early exit): timing says nothing about which key is near.
        if hmac.compare_digest(offered, digest):
            match = name
    if match is None:
        raise _refuse("invalid API key")
    key = access["keys"][match]
    tenant_name = key["tenant"]
    tenant = access["tenants"][tenant_name]
    # The tenant is the key's user, never a team: with a database, LiteLLM looks the user up (a missing one
    # only means no budget) but refuses every request of a team it does not find (404, auth_checks.py
    # get_team_object). A budget is the tenant's user row (docs/gateway.md). The key's limits are its own;
    # the user limits are the tenant's, counted over all its keys.
    return UserAPIKeyAuth(
        api_key=offered,
        key_alias=match,
        key_name=match,
        user_id=tenant_name,
        user_role=LitellmUserRoles.INTERNAL_USER,
        models=list(tenant["models"]),
        aliases=dict(tenant.get("aliases", {})),
        allowed_routes=list(access["routes"]),
        rpm_limit=key.get("rpm_limit"),
        tpm_limit=key.get("tpm_limit"),
        user_rpm_limit=tenant.get("rpm_limit"),
        user_tpm_limit=tenant.get("tpm_limit"),
        metadata={"tenant": tenant_name, "key": match},
    )


# The response header in which LiteLLM names the deployment's api_base (proxy/common_request_processing.py
# get_custom_headers); a callback's headers are applied after LiteLLM's own, so an empty value replaces it.
_ADDRESS_HEADER = "x-litellm-model-api-base"


class _TenantResponseHeaders(CustomLogger):
    async def async_post_call_response_headers_hook(
        self,
        data: dict[str, Any],
        user_api_key_dict: UserAPIKeyAuth,
        response: Any,
        request_headers: dict[str, str] | None = None,
        litellm_call_info: dict[str, Any] | None = None,
    ) -> dict[str, str] | None:
        if user_api_key_dict.user_role == LitellmUserRoles.PROXY_ADMIN:
            return None
        return {_ADDRESS_HEADER: ""}


tenant_response_headers = _TenantResponseHeaders()
