"""Settings: preset merge, and every validation rule with a case that fails it."""

from __future__ import annotations

import pytest

from components.errors import InputError
from components.settings import merge
from components.settings.cross_checks import zone_id_prefix
from components.settings.load import load_preset, preset_names
from components.settings.types import InterfaceEndpoint, NatMode


def problems(exc: pytest.ExceptionInfo[InputError]) -> dict[str, str]:
    return {p.path: p.message for p in exc.value.problems}


def test_merge_maps_merge_lists_replace_and_null_removes():
    base = {"models": {"a": {"x": 1, "y": [1, 2]}, "b": {"x": 2}}, "network": {"nat": "single"}}
    override = {"models": {"a": {"y": [3]}, "b": None, "c": {"x": 3}}, "network": {"cidr": "10.1.0.0/16"}}
    assert merge(base, override) == {
        "models": {"a": {"x": 1, "y": [3]}, "c": {"x": 3}},
        "network": {"nat": "single", "cidr": "10.1.0.0/16"},
    }
    assert base["models"]["b"] == {"x": 2}, "merge must not modify its inputs"


@pytest.mark.parametrize("preset", preset_names())
def test_every_preset_is_valid_on_its_own_and_names_its_tier(make_settings, preset):
    settings = make_settings(preset)
    assert settings.preset == preset and settings.tier is not None
    assert settings.pools and settings.models and settings.tenants


def test_stack_overrides_one_key_and_keeps_the_rest(make_settings):
    settings = make_settings("moderate", network={"nat": "single"})
    assert settings.network.nat is NatMode.SINGLE
    preset = load_preset("moderate")
    assert list(settings.network.zone_ids) == preset["network"]["zone_ids"]


def test_stack_adds_and_removes_models_by_name(make_settings):
    settings = make_settings(
        "moderate",
        models={"llama-70b": None, "small": {"model": "llama-3.1-8b", "pool": "l40s"}},
        tenants={"product": {"models": ["llama-8b", "small"]}},
    )
    assert sorted(settings.models) == ["llama-8b", "small"]
    assert settings.models["small"].context == 8192  # the field's default, documented in docs/settings.md


def test_settings_are_frozen(make_settings):
    settings = make_settings()
    with pytest.raises(AttributeError):
        settings.region = "eu-west-1"  # type: ignore[misc]


def test_mistyped_key_is_named_with_a_close_match(make_settings):
    with pytest.raises(InputError) as exc:
        make_settings(network={"natt": "single"})
    found = problems(exc)
    assert "modelyard:network.natt" in found
    assert "did you mean 'nat'" in found["modelyard:network.natt"]


def test_mistyped_top_level_key(make_settings):
    with pytest.raises(InputError) as exc:
        make_settings(extra={"modelyard:netwrk": '{"nat": "none"}'})
    assert "did you mean 'network'" in problems(exc)["modelyard:netwrk"]


def test_unknown_preset_lists_the_presets(make_settings):
    with pytest.raises(InputError) as exc:
        make_settings("minimum")
    message = problems(exc)["modelyard:preset"]
    assert "enterprise, minimal, moderate" in message and "did you mean 'minimal'" in message


def test_missing_preset(make_settings):
    from components.settings import build_settings

    with pytest.raises(InputError) as exc:
        build_settings(project="modelyard", stack="x", config={"modelyard:region": "us-east-1"})
    assert "modelyard:preset" in problems(exc)


def test_string_where_a_number_belongs(make_settings):
    with pytest.raises(InputError) as exc:
        make_settings(network={"flow_logs": {"retention_days": "ninety"}})
    assert problems(exc) == {"modelyard:network.flow_logs.retention_days": "expected an integer, got string 'ninety'"}


def test_enum_values_are_listed(make_settings):
    with pytest.raises(InputError) as exc:
        make_settings(network={"nat": "per_zone"})
    message = problems(exc)["modelyard:network.nat"]
    assert "none, single, per-zone" in message and "did you mean 'per-zone'" in message


def test_every_problem_is_reported_at_once(make_settings):
    with pytest.raises(InputError) as exc:
        make_settings(
            network={"nat": "nope", "flow_logs": {"retention_days": 13}},
            pools={"l40s": {"max_gpus": 0}},
            tags={"colour": "blue"},
        )
    assert set(problems(exc)) == {
        "modelyard:network.nat",
        "modelyard:network.flow_logs.retention_days",
        "modelyard:pools.l40s.max_gpus",
        "modelyard:tags.colour",
    }


def test_range_and_allowed_values(make_settings):
    with pytest.raises(InputError) as exc:
        make_settings(models={"llama-8b": {"concurrency": 5000}})
    assert "above the maximum of 1024" in problems(exc)["modelyard:models.llama-8b.concurrency"]


def test_map_names_must_be_dns_friendly(make_settings):
    with pytest.raises(InputError) as exc:
        make_settings(pools={"Big_Pool": {"instance_types": ["g6e.xlarge"], "max_gpus": 1}})
    assert "modelyard:pools.Big_Pool" in problems(exc)


def test_unknown_region_with_close_match(make_settings):
    with pytest.raises(InputError) as exc:
        make_settings(region="us-east-I")  # one character off: several regions are close
    assert "'us-east-1'" in problems(exc)["modelyard:region"]


@pytest.mark.parametrize(
    ("region", "prefix"),
    [("us-east-1", "use1"), ("eu-central-1", "euc1"), ("ap-northeast-2", "apne2"), ("ap-southeast-1", "apse1")],
)
def test_zone_id_prefix_follows_aws_naming(region, prefix):
    assert zone_id_prefix(region) == prefix


def test_zone_ids_must_belong_to_the_region(make_settings):
    with pytest.raises(InputError) as exc:
        make_settings(region="eu-west-1")
    found = problems(exc)
    # The region's zone IDs are listed, so that the fix is a copy (components/catalog/regions.yaml).
    assert (
        "'use1-az1' is not a zone ID of eu-west-1; zone IDs known for it: euw1-az1, euw1-az2, euw1-az3"
        in found["modelyard:network.zone_ids[0]"]
    )


@pytest.mark.parametrize(
    ("zones", "message"),
    [(["use1-az1"], "give 2 or 3 zone IDs, not 1"), (["use1-az1", "use1-az1"], "zone IDs repeat")],
)
def test_zone_count_and_repeats(make_settings, zones, message):
    with pytest.raises(InputError) as exc:
        make_settings(network={"zone_ids": zones})
    assert message in problems(exc)["modelyard:network.zone_ids"]


@pytest.mark.parametrize(
    ("cidr", "message"),
    [
        ("10.0.0.1/16", "not a network address"),
        ("8.8.0.0/16", "not a private range"),
        ("10.0.0.0/24", "use a /16 to /20"),
        ("10.0.0/16", "does not match"),
    ],
)
def test_vpc_cidr_rules(make_settings, cidr, message):
    with pytest.raises(InputError) as exc:
        make_settings(network={"cidr": cidr})
    assert message in problems(exc)["modelyard:network.cidr"]


def test_no_nat_needs_the_node_endpoints(make_settings):
    with pytest.raises(InputError) as exc:
        make_settings(network={"nat": "none", "interface_endpoints": ["sts", "ecr.api"]})
    message = problems(exc)["modelyard:network.interface_endpoints"]
    assert "ecr.dkr" in message and "sqs" in message


def test_no_nat_defaults_to_every_node_endpoint(make_settings):
    secret = "arn:aws:secretsmanager:us-east-1:111122223333:secret:ecr-pullthroughcache/docker-hub"
    settings = make_settings(network={"nat": "none"}, cluster={"image_cache": {"docker_hub_secret_arn": secret}})
    assert InterfaceEndpoint.ECR_DKR in settings.interface_endpoints
    assert make_settings().interface_endpoints == ()


@pytest.mark.parametrize(
    ("pool", "path", "message"),
    [
        ({"capacity": "spot", "kind": "static"}, "capacity", "spot needs kind: elastic"),
        ({"capacity": "reservation"}, "capacity", "needs kind: static"),
        ({"capacity": "reservation", "kind": "static", "zone_ids": ["use1-az1"]}, "reservation_id", "required"),
        ({"reservation_id": "cr-0123456789abcdef0"}, "reservation_id", "only with capacity"),
        (
            {"capacity": "capacity-block", "kind": "static", "reservation_id": "cr-0123456789abcdef0"},
            "zone_ids",
            "lives in one zone",
        ),
        ({"interconnect": "efa"}, "zone_ids", "efa keeps a pool in one zone"),
        ({"kind": "static", "instance_types": ["g6e.xlarge", "g6e.2xlarge"]}, "instance_types", "exactly one"),
        ({"instance_types": []}, "instance_types", "at least one"),
        ({"zone_ids": ["use1-az6"]}, "zone_ids[0]", "not one of network.zone_ids"),
        ({"reservation_id": "cr-123"}, "reservation_id", "does not match"),
    ],
)
def test_pool_rules(make_settings, pool, path, message):
    with pytest.raises(InputError) as exc:
        make_settings(pools={"l40s": pool})
    assert message in problems(exc)[f"modelyard:pools.l40s.{path}"]


def test_model_must_name_an_existing_pool(make_settings):
    with pytest.raises(InputError) as exc:
        make_settings(models={"llama-8b": {"pool": "l40"}})
    assert "did you mean 'l40s'" in problems(exc)["modelyard:models.llama-8b.pool"]


def test_replicas_max_not_below_min(make_settings):
    with pytest.raises(InputError) as exc:
        make_settings(models={"llama-8b": {"replicas": {"min": 3, "max": 2}}})
    assert "below min" in problems(exc)["modelyard:models.llama-8b.replicas.max"]


def test_tenant_references(make_settings):
    with pytest.raises(InputError) as exc:
        make_settings(
            tenants={
                "internal": {"models": ["llama8b"], "dedicated_pool": "nope"},
                "other": {"models": []},
            }
        )
    found = problems(exc)
    assert "did you mean 'llama-8b'" in found["modelyard:tenants.internal.models[0]"]
    assert "no pool named 'nope'" in found["modelyard:tenants.internal.dedicated_pool"]
    assert "at least one model" in found["modelyard:tenants.other.models"]


def test_a_pool_is_dedicated_to_one_tenant_only(make_settings):
    with pytest.raises(InputError) as exc:
        make_settings(
            tenants={
                "internal": {"models": ["llama-8b"], "dedicated_pool": "l40s"},
                "second": {"models": ["llama-8b"], "dedicated_pool": "l40s"},
            }
        )
    assert "already dedicated to 'internal'" in problems(exc)["modelyard:tenants.second.dedicated_pool"]


def test_tenant_principals_must_be_iam_arns(make_settings):
    with pytest.raises(InputError) as exc:
        make_settings(tenants={"internal": {"principals": ["alice"]}})
    assert "IAM role or user ARN" in problems(exc)["modelyard:tenants.internal.principals[0]"]


def test_extra_tags_cannot_override_kit_tags(make_settings):
    with pytest.raises(InputError) as exc:
        make_settings(tags={"extra": {"modelyard:stack": "other"}})
    assert "set by the kit" in problems(exc)["modelyard:tags.extra.modelyard:stack"]


def test_extra_tag_keys_follow_aws_rules(make_settings):
    with pytest.raises(InputError) as exc:
        make_settings(tags={"extra": {"aws:owner": "me"}})
    assert "not starting with aws:" in problems(exc)["modelyard:tags.extra.aws:owner"]


@pytest.mark.parametrize("key", ["kubernetes.io/cluster/other", "karpenter.sh/nodepool", "eks:eks-cluster-name"])
def test_extra_tags_cannot_take_keys_karpenter_and_eks_set(make_settings, key):
    with pytest.raises(InputError) as exc:
        make_settings(tags={"extra": {key: "x"}})
    assert "set by Karpenter and EKS" in problems(exc)[f"modelyard:tags.extra.{key}"]


def test_too_many_extra_tags(make_settings):
    with pytest.raises(InputError) as exc:
        make_settings(tags={"extra": {f"k{i}": "v" for i in range(46)}})
    assert "at most 45 extra tags" in problems(exc)["modelyard:tags.extra"]


def test_aws_region_must_agree_with_the_kit_region(make_settings):
    with pytest.raises(InputError) as exc:
        make_settings(extra={"aws:region": "eu-west-1"})
    assert "differs from modelyard:region" in problems(exc)["aws:region"]


def test_bad_json_object_is_named(make_settings):
    with pytest.raises(InputError) as exc:
        make_settings(extra={"modelyard:network": "{nat: none"})
    assert "not valid JSON" in problems(exc)["modelyard:network"]


def test_mistyped_instance_type_is_named_with_close_matches(make_settings):
    with pytest.raises(InputError) as exc:
        make_settings(pools={"l40s": {"instance_types": ["g6e.xlarg"]}})
    assert problems(exc) == {
        "modelyard:pools.l40s.instance_types[0]": "unknown instance type 'g6e.xlarg' "
        "(did you mean 'g6e.xlarge', 'g6e.2xlarge', 'g6.xlarge'?)"
    }


def test_pool_instance_types_need_gpus(make_settings):
    with pytest.raises(InputError) as exc:
        make_settings(pools={"l40s": {"instance_types": ["m7i.large"]}})
    assert problems(exc) == {
        "modelyard:pools.l40s.instance_types[0]": "m7i.large has no GPU; GPU pools take GPU instance types"
    }


def test_efa_pools_need_efa_capable_types(make_settings):
    with pytest.raises(InputError) as exc:
        make_settings(pools={"l40s": {"interconnect": "efa", "zone_ids": ["use1-az1"]}})
    assert "has no EFA" in problems(exc)["modelyard:pools.l40s.instance_types[0]"]


def test_gpu_ceiling_below_one_node(make_settings):
    with pytest.raises(InputError) as exc:
        make_settings(pools={"l40s": {"instance_types": ["g6e.12xlarge"], "max_gpus": 2}})
    assert "below the 4 GPUs of one g6e.12xlarge node" in problems(exc)["modelyard:pools.l40s.max_gpus"]


def test_unknown_model_with_close_matches(make_settings):
    with pytest.raises(InputError) as exc:
        make_settings(models={"llama-8b": {"model": "lama-3.1-8b"}})
    assert "did you mean 'llama-3.1-8b'" in problems(exc)["modelyard:models.llama-8b.model"]


def test_model_by_repository_id(make_settings):
    settings = make_settings(models={"llama-8b": {"model": "meta-llama/Llama-3.1-8B-Instruct"}})
    assert settings.models["llama-8b"].model == "meta-llama/Llama-3.1-8B-Instruct"


def test_model_too_big_for_its_pool_is_refused_with_the_reason(make_settings):
    with pytest.raises(InputError) as exc:
        make_settings(models={"llama-8b": {"model": "llama-3.1-70b"}})
    message = problems(exc)["modelyard:models.llama-8b"]
    assert "does not fit pool 'l40s' (g6e.xlarge)" in message and "needs" in message and "GB" in message


def test_fp8_refused_on_gpus_without_fp8(make_settings):
    with pytest.raises(InputError) as exc:
        make_settings(pools={"l40s": {"instance_types": ["g5.xlarge"]}}, models={"llama-8b": {"dtype": "fp8"}})
    assert "fp8 needs FP8 compute" in problems(exc)["modelyard:models.llama-8b"]


def test_context_above_the_models_maximum(make_settings):
    with pytest.raises(InputError) as exc:
        make_settings(models={"llama-8b": {"context": 500_000}})
    assert "maximum context" in problems(exc)["modelyard:models.llama-8b.context"]


MULTI_NODE_405B = {"dtype": "bf16", "context": 16384, "concurrency": 32, "replicas": {"min": 1, "max": 1}}


def test_a_multi_node_replica_on_an_efa_pool_is_served(make_settings):
    from components.k8s.serving_values import nodes_per_replica
    from components.platform import serving_args
    from tests.conftest import aws_layer

    settings = make_settings("enterprise", models={"llama-405b": MULTI_NODE_405B})
    assert nodes_per_replica(serving_args(settings, aws_layer()), "llama-405b") == 2


def test_multi_node_replicas_need_an_efa_pool_and_fixed_replicas(make_settings):
    with pytest.raises(InputError) as exc:
        make_settings(
            "enterprise",
            models={"llama-405b": {**MULTI_NODE_405B, "replicas": {"min": 1, "max": 2}}},
            pools={"h100-efa": {"interconnect": "standard"}},
        )
    found = problems(exc)
    assert "needs 2 p5.48xlarge nodes per replica" in found["modelyard:models.llama-405b.pool"]
    assert "interconnect: efa" in found["modelyard:models.llama-405b.pool"]
    assert "not autoscaled: set max equal to min (1)" in found["modelyard:models.llama-405b.replicas.max"]


def test_more_stages_than_the_sizing_allows_are_refused(make_settings):
    # Llama 3.1 405B in bf16 at 128k tokens x 64 sequences: more than four p5.48xlarge (MAX_NODES_PER_REPLICA).
    with pytest.raises(InputError) as exc:
        make_settings("enterprise", models={"llama-405b": {**MULTI_NODE_405B, "context": 131072, "concurrency": 64}})
    assert "does not fit pool 'h100-efa'" in problems(exc)["modelyard:models.llama-405b"]


def test_pool_ceiling_must_hold_its_models_at_max_replicas(make_settings):
    with pytest.raises(InputError) as exc:
        make_settings(models={"llama-8b": {"replicas": {"min": 1, "max": 3}}})
    assert "cannot hold its models at their maximum replicas (3 GPUs)" in problems(exc)["modelyard:pools.l40s.max_gpus"]


def test_other_tenants_cannot_call_models_on_a_dedicated_pool(make_settings):
    with pytest.raises(InputError) as exc:
        make_settings("enterprise", tenants={"core": {"models": ["analytics-8b"]}})
    assert "dedicated to tenant 'analytics'" in problems(exc)["modelyard:tenants.core.models[0]"]


def test_static_pool_minimum_within_the_gpu_ceiling(make_settings):
    with pytest.raises(InputError) as exc:
        make_settings(pools={"l40s": {"kind": "static", "min_nodes": 3}})
    assert "above max_gpus 2" in problems(exc)["modelyard:pools.l40s.min_nodes"]


# A decrypted key as the engine hands it over (`secure:` in the stack file).
DECRYPTED = "sk-decrypted-0123456789abcdef"


@pytest.mark.parametrize(
    ("gateway", "path"),
    [
        # A key in the shape the kit used before (one string per tenant, docs/upgrades.md).
        ({"keys": {"internal": DECRYPTED}}, "modelyard:gateway.keys.internal"),
        ({"keys": {"internal": {"key": DECRYPTED[:12]}}}, "modelyard:gateway.keys.internal.key"),
        ({"master_key": 12345678901234567890}, "modelyard:gateway.master_key"),
    ],
)
def test_a_message_about_a_secret_setting_never_quotes_its_value(gateway, path) -> None:
    from components.settings import build_settings
    from tests.conftest import config_for

    config = config_for("minimal", gateway=gateway)
    with pytest.raises(InputError) as exc:
        build_settings(project="modelyard", stack="test", config=config, secret_keys=["modelyard:gateway"])
    problems = {p.path: p.message for p in exc.value.problems}
    assert path in problems, problems
    text = str(exc.value)
    for value in (DECRYPTED, DECRYPTED[:12], "12345678901234567890"):
        assert value not in text


def test_a_message_about_a_plain_setting_quotes_its_value() -> None:
    """Outside secrets, the value is shown: it helps find the typo."""
    from components.settings import build_settings
    from tests.conftest import config_for

    with pytest.raises(InputError) as exc:
        build_settings(project="modelyard", stack="test", config=config_for("minimal", gateway={"exposure": "publik"}))
    assert "'publik' is not allowed" in str(exc.value)
