"""Issue 22, first slice: replicas of the model bucket in other regions (S3 replication, a least-privileged role,
priced) and residency (a tenant pinned to regions is served, replicated and falls back only there). docs/regions.md."""

from __future__ import annotations

import json
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from components.cli import main as cli_main
from components.cost.prices import default_book
from components.errors import InputError
from components.tools import models
from components.tools.aws import Clients
from components.tools.models import MANIFEST
from tests.conftest import ROOT, SHIPPED_STACKS, by_type, plan_with

REPLICATION = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"
# The moderate preset: tenant `product` owns llama-8b and llama-70b; `internal` calls llama-8b, data external-allowed.
REPLICATED = {"storage": {"replicas": {"eu-west-1": {"tenants": ["internal"]}}}}


@pytest.fixture(scope="module")
def replicated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return plan_with(tmp_path_factory.mktemp("replicated"), "moderate", REPLICATED)


def _resource(plan: dict[str, Any], key: str) -> dict[str, Any]:
    (found,) = [r for r in plan["resources"] if r["key"] == key]
    return found


def _replica(plan: dict[str, Any], type_token: str, name: str = "models-eu-west-1-bucket") -> dict[str, Any]:
    (found,) = [r for r in by_type(plan, type_token) if r["name"] == name]
    return found


def test_the_replica_lives_in_its_region_with_its_own_key_hardened_and_kept(replicated) -> None:
    plan = replicated
    bucket = _replica(plan, "aws:s3/bucket:Bucket")
    assert bucket["key"].startswith("eu-west-1/") and bucket["provider"].startswith("eu-west-1/")
    assert bucket["inputs"]["bucket"] == "modelyard-custom-models-123456789012-eu-west-1"
    key = _replica(plan, "aws:kms/key:Key", "models-eu-west-1-key")
    assert key["key"].startswith("eu-west-1/") and key["inputs"]["enableKeyRotation"] is True
    for stateful in (bucket, key):
        assert stateful["protect"] and stateful["retain_on_delete"], stateful["key"]
    sse = _replica(plan, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    (rule,) = sse["inputs"]["rules"]
    assert rule["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"].startswith("arn:aws:kms:eu-west-1:")
    assert rule["bucketKeyEnabled"] is True
    versioning = _replica(plan, "aws:s3/bucketVersioning:BucketVersioning")
    assert versioning["inputs"]["versioningConfiguration"]["status"] == "Enabled"
    block = _replica(plan, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert all(block["inputs"][f] is True for f in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                                                      "restrictPublicBuckets"))  # fmt: skip
    (statement,) = json.loads(_replica(plan, "aws:s3/bucketPolicy:BucketPolicy")["inputs"]["policy"])["Statement"]
    assert statement["Effect"] == "Deny" and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_every_aws_resource_is_on_a_kit_provider_of_an_explicit_region(replicated) -> None:
    providers = {r["key"]: r["inputs"]["region"] for r in by_type(replicated, "pulumi:providers:aws")}
    assert sorted(providers.values()) == ["eu-west-1", "us-east-1"]
    for resource in replicated["resources"]:
        if resource["custom"] and resource["type"].startswith("aws:"):
            assert resource["provider"] in providers, resource["key"]
            assert resource["key"].startswith(providers[resource["provider"]] + "/"), resource["key"]


def test_replication_copies_models_and_only_the_listed_tenants_prefix_encrypted_with_the_replicas_key(
    replicated,
) -> None:
    (config,) = by_type(replicated, REPLICATION)
    assert config["key"].startswith("us-east-1/")  # configured on the source bucket, in its region
    assert config["inputs"]["bucket"] == "modelyard-custom-models-123456789012"
    replica_key = _replica(replicated, "aws:kms/key:Key", "models-eu-west-1-key")
    rules = {rule["filter"]["prefix"]: rule for rule in config["inputs"]["rules"]}
    assert set(rules) == {"models/", "tenants/internal/"}  # not tenants/product/: the replica does not list it
    assert len({rule["priority"] for rule in rules.values()}) == len(rules)
    for rule in rules.values():
        assert rule["status"] == "Enabled"
        assert rule["sourceSelectionCriteria"]["sseKmsEncryptedObjects"]["status"] == "Enabled"
        assert rule["destination"]["bucket"] == "arn:aws:s3:::modelyard-custom-models-123456789012-eu-west-1"
        assert rule["destination"]["encryptionConfiguration"]["replicaKmsKeyId"].startswith("arn:aws:kms:eu-west-1:")
        assert rule["deleteMarkerReplication"]["status"] == "Disabled"  # docs/regions.md#deletes
    assert replica_key["key"] in config["depends_on"]
    # S3 refuses the configuration unless both buckets are versioned: it waits for both.
    assert "us-east-1/models/models-bucket::aws:s3/bucketVersioning:BucketVersioning" in config["depends_on"]
    assert (
        "eu-west-1/models-eu-west-1/models-eu-west-1-bucket::aws:s3/bucketVersioning:BucketVersioning"
        in config["depends_on"]
    )


def test_the_replication_role_reads_replicates_and_uses_each_key_only_where_it_must(replicated) -> None:
    (config,) = by_type(replicated, REPLICATION)
    (role,) = [r for r in by_type(replicated, "aws:iam/role:Role") if r["name"] == "models-replication-role"]
    trust = json.loads(role["inputs"]["assumeRolePolicy"])
    assert [s["Principal"] for s in trust["Statement"]] == [{"Service": "s3.amazonaws.com"}]
    assert ":role/models-replication-role-" in config["inputs"]["role"]
    policies = by_type(replicated, "aws:iam/rolePolicy:RolePolicy")
    (policy,) = [r for r in policies if r["name"] == "models-replication-role"]
    statements = {s["Sid"]: s for s in json.loads(policy["inputs"]["policy"])["Statement"]}
    source = "arn:aws:s3:::modelyard-custom-models-123456789012"
    replica = f"{source}-eu-west-1"
    assert statements["ReadSourceVersions"]["Resource"] == [f"{source}/models/*", f"{source}/tenants/internal/*"]
    assert statements["ReplicateEuWest1"]["Resource"] == [f"{replica}/models/*", f"{replica}/tenants/internal/*"]
    assert statements["ReplicateEuWest1"]["Action"] == ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"]
    decrypt, encrypt = statements["DecryptSource"], statements["EncryptEuWest1"]
    assert decrypt["Action"] == "kms:Decrypt" and decrypt["Resource"].startswith("arn:aws:kms:us-east-1:")
    assert decrypt["Condition"]["StringEquals"] == {
        "kms:ViaService": "s3.us-east-1.amazonaws.com",
        "kms:EncryptionContext:aws:s3:arn": source,
    }
    assert "kms:Decrypt" not in encrypt["Action"] and encrypt["Resource"].startswith("arn:aws:kms:eu-west-1:")
    assert encrypt["Condition"]["StringEquals"] == {
        "kms:ViaService": "s3.eu-west-1.amazonaws.com",
        "kms:EncryptionContext:aws:s3:arn": replica,
    }
    for statement in statements.values():
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert not any(a.endswith("*") for a in actions) and statement["Resource"] != "*", statement["Sid"]


def test_replication_is_priced_as_inter_region_transfer_and_the_replica_as_storage(replicated) -> None:
    lines = {line["id"]: line for line in replicated["cost"]["lines"]}
    (config,) = by_type(replicated, REPLICATION)
    line = lines[f"{config['key']}/arn:aws:s3:::modelyard-custom-models-123456789012-eu-west-1"]
    gb = Decimal(line["basis"].split(" GB/month")[0])
    price = default_book()["transfer_inter_region_gb"].usd
    assert price == Decimal("0.02") and gb > 0
    assert Decimal(line["monthly"]) == (price * gb).quantize(Decimal("0.01"))
    assert line["status"] == "priced" and line["source"].startswith("INFRA-TRANSFER")
    replica = _replica(replicated, "aws:s3/bucket:Bucket")
    assert lines[replica["key"]]["status"] == "priced"


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_only_core_replicates_and_only_into_its_eu_cell(plans, stack) -> None:
    """The one shipped replica is the eu-west-1 cell's own bucket (tests/test_cells.py); no other stack replicates."""
    replicated = bool(by_type(plans[stack], REPLICATION))
    priced = any(line["group"] == "usage" and "replication" in line["item"] for line in plans[stack]["cost"]["lines"])
    assert replicated == priced == (stack == "core")
    assert not [r for r in by_type(plans[stack], "aws:s3/bucket:Bucket") if r["name"].startswith("models-eu-west-1")]


FALLBACK = {"llama-8b": {"provider": "openai", "model": "gpt-4o", "api_key": "sk-provider-0123456789"}}


@pytest.mark.parametrize(
    ("overrides", "path", "words"),
    [
        # Served in us-east-1, pinned to the EU.
        ({"tenants": {"internal": {"regions": ["eu-west-1"]}}}, "tenants.internal.regions", "pinned to eu-west-1"),
        # Its prefix replicated outside its regions.
        (
            {"tenants": {"internal": {"regions": ["us-east-1"]}}, **REPLICATED},
            "storage.replicas.eu-west-1.tenants[0]",
            "would replicate tenants/internal/ to eu-west-1",
        ),
        # A fallback to an API bound to no region.
        (
            {"tenants": {"internal": {"regions": ["us-east-1"]}}, "gateway": {"fallbacks": FALLBACK}},
            "gateway.fallbacks.llama-8b.provider",
            "openai's API is not bound to a region",
        ),
        ({"tenants": {"internal": {"regions": ["eu-wset-1"]}}}, "tenants.internal.regions[0]", "unknown AWS region"),
        ({"storage": {"replicas": {"us-east-1": {}}}}, "storage.replicas.us-east-1", "the stack's own region"),
        ({"storage": {"replicas": {"eu-west-9": {}}}}, "storage.replicas.eu-west-9", "unknown AWS region"),
        (
            {"storage": {"replicas": {"eu-west-1": {"tenants": ["nobody"]}}}},
            "storage.replicas.eu-west-1.tenants[0]",
            "no tenant 'nobody'",
        ),
        (
            {"storage": {"replicas": {"eu-west-1": {"models": ["llama-9b"]}}}},
            "storage.replicas.eu-west-1.models[0]",
            "no model 'llama-9b'",
        ),
    ],
)
def test_residency_and_replica_violations_are_refused_naming_the_key(make_settings, overrides, path, words) -> None:
    with pytest.raises(InputError) as refused:
        make_settings("moderate", **overrides)
    messages = [f"{p.path}: {p.message}" for p in refused.value.problems]
    assert any(m.startswith(f"modelyard:{path}:") and words in m for m in messages), messages


def test_a_pinned_tenant_may_replicate_and_fall_back_inside_its_regions(make_settings) -> None:
    settings = make_settings(
        "moderate",
        tenants={"internal": {"regions": ["us-east-1", "eu-west-1"]}},
        gateway={"fallbacks": {"llama-8b": {"provider": "bedrock", "model": "meta.llama3-1-70b-instruct-v1:0"}}},
        **REPLICATED,
    )
    assert settings.replicated_prefixes("eu-west-1") == ("models/", "tenants/internal/")
    assert settings.hybrid_models("internal") == ("llama-8b",)  # Bedrock of the stack's region: still in region


def test_the_gateway_gives_a_pinned_tenant_no_fallback_out_of_region_even_unvalidated(make_settings) -> None:
    """Defence in depth: were validation skipped, the gateway's config (built from hybrid_models) would still route
    a pinned tenant's requests to no API bound to no region."""
    import dataclasses

    settings = make_settings("moderate", gateway={"fallbacks": FALLBACK})
    assert settings.hybrid_models("internal") == ("llama-8b",)
    tenants = dict(settings.tenants)
    tenants["internal"] = dataclasses.replace(tenants["internal"], regions=("us-east-1",))
    assert dataclasses.replace(settings, tenants=tenants).hybrid_models("internal") == ()


def test_a_long_stack_name_cannot_hold_a_replica_bucket_name(make_settings) -> None:
    with pytest.raises(InputError) as refused:
        make_settings("moderate", stack="a-rather-long-stack-name-x", storage={"replicas": {"ap-southeast-2": {}}})
    (problem,) = [p for p in refused.value.problems if p.path == "modelyard:storage.replicas.ap-southeast-2"]
    assert "S3 allows 63" in problem.message


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copytree(ROOT / "stacks" / "presets", tmp_path / "stacks" / "presets")
    (tmp_path / "charts").symlink_to(ROOT / "charts")
    return tmp_path


def _write_stack(project: Path, name: str, preset: str, overrides: dict[str, Any]) -> None:
    config = {"modelyard:preset": preset, **{f"modelyard:{k}": v for k, v in overrides.items()}}
    (project / "stacks" / f"Pulumi.{name}.yaml").write_text(yaml.safe_dump({"config": config}))


@pytest.mark.parametrize(
    ("overrides", "path"),
    [
        ({"tenants": {"internal": {"regions": ["eu-west-1"]}}}, "tenants.internal.regions"),
        ({"tenants": {"internal": {"regions": ["us-east-1"]}}, **REPLICATED}, "storage.replicas.eu-west-1.tenants[0]"),
        (
            {"tenants": {"internal": {"regions": ["us-east-1"]}}, "gateway": {"fallbacks": FALLBACK}},
            "gateway.fallbacks.llama-8b.provider",
        ),
    ],
)
def test_the_plan_command_refuses_a_residency_violation_with_exit_2(project, capsys, overrides, path) -> None:
    _write_stack(project, "pinned", "moderate", overrides)
    code = cli_main(["plan", "--stack", "pinned", "--project-dir", str(project), "--json", str(project / "p.json")])
    err = capsys.readouterr().err
    assert code == 2 and f"modelyard:{path}" in err and "Traceback" not in err
    assert not (project / "p.json").exists()


# --- models verify --replicas, against moto's S3 -----------------------------------------------------------------

ACCOUNT = "123456789012"  # moto's account
SOURCE = f"modelyard-pilot-models-{ACCOUNT}"
REPLICA = f"{SOURCE}-eu-west-1"
PREFIX = "models/llama-3.1-8b/main/"


@pytest.fixture
def buckets(moto_endpoint: str, project: Path, monkeypatch: pytest.MonkeyPatch):
    """The pilot stack with a replica in eu-west-1: both buckets in moto, each tool client in its region."""
    pilot = yaml.safe_load((ROOT / "stacks" / "Pulumi.pilot.yaml").read_text())
    pilot["config"]["modelyard:storage"] = {"replicas": {"eu-west-1": {}}}
    (project / "stacks" / "Pulumi.pilot.yaml").write_text(yaml.safe_dump(pilot))
    sessions = {region: boto3.Session(region_name=region) for region in ("us-east-1", "eu-west-1")}
    monkeypatch.setattr(models.aws, "open_clients", lambda profile, region: Clients(sessions[region]))
    source, replica = sessions["us-east-1"].client("s3"), sessions["eu-west-1"].client("s3")
    source.create_bucket(Bucket=SOURCE)
    replica.create_bucket(Bucket=REPLICA, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    yield source, replica
    for client, bucket in ((source, SOURCE), (replica, REPLICA)):
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                client.delete_object(Bucket=bucket, Key=obj["Key"])
        client.delete_bucket(Bucket=bucket)


def _replicate(source: Any, replica: Any) -> None:
    """What S3 replication does for new objects: the same bytes and user metadata under the same keys."""
    for obj in source.list_objects_v2(Bucket=SOURCE, Prefix=PREFIX)["Contents"]:
        got = source.get_object(Bucket=SOURCE, Key=obj["Key"])
        replica.put_object(Bucket=REPLICA, Key=obj["Key"], Body=got["Body"].read(), Metadata=got["Metadata"])


def test_verify_replicas_checks_every_replica_against_the_sources_manifest(buckets, project, tmp_path, capsys) -> None:
    source, replica = buckets
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_bytes(b'{"architectures": ["LlamaForCausalLM"]}')
    (folder / "model.safetensors").write_bytes(b"w" * 70_000)
    stack = ["--stack", "pilot", "--project-dir", str(project), "--name", "llama-3.1-8b"]
    assert cli_main(["models", "push", str(folder), *stack]) == 0
    verify = ["models", "verify", *stack, "--replicas"]
    # Pushed before anything was replicated: the replica has no manifest, and the message says how to backfill.
    assert cli_main(verify) == 3
    assert "S3 Batch Replication" in capsys.readouterr().err
    _replicate(source, replica)
    assert cli_main(verify) == 0
    assert "replica in eu-west-1 matches the manifest" in capsys.readouterr().out
    replica.delete_object(Bucket=REPLICA, Key=f"{PREFIX}model.safetensors")
    assert cli_main(verify) == 3
    assert "replica eu-west-1" in (err := capsys.readouterr().err) and "model.safetensors: missing" in err
    replica.put_object(Bucket=REPLICA, Key=f"{PREFIX}{MANIFEST}", Body=b'{"files": []}')
    assert cli_main(verify) == 3
    assert "differs from the source's" in capsys.readouterr().err
    # A replica that lists its models holds only theirs: another model's revision is skipped there, and said so.
    pilot = yaml.safe_load((project / "stacks" / "Pulumi.pilot.yaml").read_text())
    pilot["config"]["modelyard:storage"] = {"replicas": {"eu-west-1": {"models": ["llama-8b"]}}}
    (project / "stacks" / "Pulumi.pilot.yaml").write_text(yaml.safe_dump(pilot))
    other = ["--stack", "pilot", "--project-dir", str(project), "--name", "qwen3-8b"]
    assert cli_main(["models", "push", str(folder), *other]) == 0
    assert cli_main(["models", "verify", *other, "--replicas"]) == 0
    assert "qwen3-8b is not replicated to eu-west-1 (storage.replicas.eu-west-1.models)" in capsys.readouterr().out
    assert cli_main(verify) == 3  # llama-3.1-8b is still checked there (its manifest was broken above)
    capsys.readouterr()
    # Without --replicas only the source is checked; --replicas on a stack without replicas is bad input.
    assert cli_main(["models", "verify", *stack]) == 0
    assert cli_main(["models", "verify", "--stack", "pilot", "--name", "llama-3.1-8b", "--replicas"]) == 2


def test_the_replica_holds_the_weights_and_is_priced_like_the_source(replicated) -> None:
    """The replica's bucket stores the same checkpoints as the source bucket: the same GB at S3's price."""
    lines = {line["id"]: line for line in replicated["cost"]["lines"]}
    (source,) = [r for r in by_type(replicated, "aws:s3/bucket:Bucket") if r["name"] == "models-bucket"]
    replica = _replica(replicated, "aws:s3/bucket:Bucket")
    assert "checkpoints" in lines[replica["key"]]["basis"]
    assert lines[replica["key"]]["basis"] == lines[source["key"]]["basis"]
