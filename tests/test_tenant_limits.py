"""Every tenant is limited at the gateway unless its stack says otherwise: its own rpm and tpm limits, else its share
of the GPUs (gateway.tenant_limits x gpu_quota), else nothing only with `unlimited: true`. The presets' rates follow
from the catalog's throughput (docs/gateway.md, "Limits"). The limits in the real proxy are
tests/test_gateway_attacks.py."""

from __future__ import annotations

import math

import pytest

from components.errors import InputError
from components.k8s.gateway.config import TENANT_ROUTES, gateway_tenants
from components.plan.run import plan_stack
from components.platform import gateway_args
from components.settings import Settings
from components.settings.load import preset_names
from components.settings.types import TenantLimitSettings
from components.sizing import fit_on
from components.sizing.core import SizingOption
from tests.conftest import aws_layer
from tests.test_presets import GATEWAY_DEPLOYMENT, _changes, _project

GATEWAY_CONFIG = "gateway/gateway-configmap-litellm-config::kubernetes:core/v1:ConfigMap"
# Output tokens a request in the benchmark the 8B estimate is scaled from (LLMPERF-A10G: ~550 in / 150 out
# tokens, components/catalog/throughput.yaml).
OUTPUT_TOKENS_PER_REQUEST = 150


def _problems(exc: pytest.ExceptionInfo[InputError]) -> dict[str, str]:
    return {p.path: p.message for p in exc.value.problems}


def _tenants_file(settings: Settings) -> dict[str, dict[str, object]]:
    return gateway_tenants(gateway_args(settings, aws_layer()))["tenants"]


def test_a_tenant_without_limits_gets_its_gpus_share_and_every_tenant_is_in_the_file(make_settings) -> None:
    """No keys yet: the tenants file lists each tenant with the limits its keys will get, and the routes."""
    settings = make_settings("moderate")
    per_gpu = settings.gateway.tenant_limits
    tenants = _tenants_file(settings)
    assert {name: (t["rpm_limit"], t["tpm_limit"]) for name, t in tenants.items()} == {
        "product": (per_gpu.rpm_per_gpu * 18, per_gpu.tpm_per_gpu * 18),
        "internal": (per_gpu.rpm_per_gpu * 4, per_gpu.tpm_per_gpu * 4),
    }
    assert gateway_tenants(gateway_args(settings, aws_layer()))["routes"] == list(TENANT_ROUTES)


def test_a_tenants_own_limit_wins_per_dimension_and_unlimited_is_explicit(make_settings) -> None:
    settings = make_settings(
        "moderate",
        tenants={"internal": {"rpm_limit": 30}, "product": {"unlimited": True}},
        gateway={"tenant_limits": {"tpm_per_gpu": 5000}},
    )
    tenants = _tenants_file(settings)
    assert (tenants["internal"]["rpm_limit"], tenants["internal"]["tpm_limit"]) == (30, 5000 * 4)
    assert (tenants["product"]["rpm_limit"], tenants["product"]["tpm_limit"]) == (None, None)
    # A null in the stack file removes the preset's rates: the settings' own defaults come back, never no limit.
    dropped = make_settings("moderate", gateway={"tenant_limits": None})
    assert dropped.gateway.tenant_limits == TenantLimitSettings()
    assert _tenants_file(dropped)["internal"]["rpm_limit"] == TenantLimitSettings().rpm_per_gpu * 4


def test_a_tenant_holding_no_gpu_must_say_its_limits(make_settings) -> None:
    """Its share would be 0: refused by key, each missing limit named, rather than silently blocked or open."""
    with pytest.raises(InputError) as exc:
        make_settings(
            "moderate", tenants={"guest": {"models": ["llama-8b"]}, "batch": {"models": ["llama-8b"], "rpm_limit": 5}}
        )
    problems = _problems(exc)
    for path in ("tenants.guest.rpm_limit", "tenants.guest.tpm_limit", "tenants.batch.tpm_limit"):
        assert "holds no GPU (gpu_quota 0)" in problems[f"modelyard:{path}"], problems
        assert "unlimited: true" in problems[f"modelyard:{path}"]
    assert "modelyard:tenants.batch.rpm_limit" not in problems
    # Saying so is enough: its limits, or deliberately none.
    make_settings("moderate", tenants={"guest": {"models": ["llama-8b"], "rpm_limit": 5, "tpm_limit": 5000}})
    make_settings("moderate", tenants={"guest": {"models": ["llama-8b"], "unlimited": True}})


@pytest.mark.parametrize(
    ("overrides", "path", "message"),
    [
        ({"tenants": {"internal": {"unlimited": True, "rpm_limit": 10}}}, "tenants.internal.rpm_limit", "lifts every"),
        ({"tenants": {"internal": {"unlimited": [True]}}}, "tenants.internal.unlimited", "expected true or false"),
        ({"gateway": {"tenant_limits": {"rpm_per_gpu": 0}}}, "gateway.tenant_limits.rpm_per_gpu", "below the minimum"),
        (
            {"gateway": {"tenant_limits": {"tpm_per_gpu": 10**9}}},
            "gateway.tenant_limits.tpm_per_gpu",
            "above the maximum",
        ),
        ({"gateway": {"tenant_limits": {"rpm_per_gpus": 1}}}, "gateway.tenant_limits.rpm_per_gpus", "rpm_per_gpu"),
    ],
)
def test_bad_limit_settings_name_their_key(make_settings, overrides, path, message) -> None:
    with pytest.raises(InputError) as exc:
        make_settings("moderate", **overrides)
    problems = _problems(exc)
    assert message in problems[f"modelyard:{path}"], problems


def _round_down(value: float) -> int:
    """Down to two significant figures (167.04 -> 160, 100,224 -> 100,000)."""
    step = 10 ** (int(math.log10(value)) - 1)
    return int(value // step * step)


@pytest.mark.parametrize("preset", preset_names())
def test_the_presets_rates_are_their_fastest_gpus_share(make_settings, preset) -> None:
    """A preset's rates are what one GPU serves of its most token-efficient model (sizing's estimate per GPU), so a
    tenant may always use the GPUs its quota pays for: requests at that benchmark's output tokens a request, tokens
    with the prompt tokens the cost model assumes (cost.input_tokens_per_output_token)."""
    settings = make_settings(preset)
    per_gpu = []
    for model in settings.models.values():
        for instance in settings.pools[model.pool].instance_types:
            fit = fit_on(model.model, instance, dtype=model.dtype, context=model.context, concurrency=model.concurrency)
            assert isinstance(fit, SizingOption)
            per_gpu.append(fit.throughput.output_tokens_per_second / fit.gpus_per_replica)
    fastest = max(per_gpu)
    prompt = settings.cost.input_tokens_per_output_token
    limits = settings.gateway.tenant_limits
    assert limits.rpm_per_gpu == _round_down(fastest * 60 / OUTPUT_TOKENS_PER_REQUEST)
    assert limits.tpm_per_gpu == _round_down(fastest * 60 * (1 + prompt))


def test_a_stack_raising_the_rate_changes_only_the_gateways_config(tmp_path, plans) -> None:
    """The tenants file in the ConfigMap, and the Deployment's checksum of it (which rolls the pods)."""
    config = {"gateway": {"tenant_limits": {"rpm_per_gpu": 320, "tpm_per_gpu": 200000}}}
    head = plan_stack(_project(tmp_path, preset="moderate", config=config), "product")
    assert _changes(plans["product"], head) == {
        "resources": {GATEWAY_CONFIG, GATEWAY_DEPLOYMENT},
        "manifests": {GATEWAY_CONFIG, GATEWAY_DEPLOYMENT},
        "cost lines": set(),
    }
    (config_map,) = [m["object"] for m in head["manifests"] if m["source"] == GATEWAY_CONFIG]
    assert '"rpm_limit": 5760' in config_map["data"]["tenants.json"]
