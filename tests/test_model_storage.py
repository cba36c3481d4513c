"""ModelStorage over every shipped stack's plan: encrypted, versioned, private, TLS-only, kept, least privilege."""

from __future__ import annotations

import json

import pytest

from components.errors import InputError
from tests.conftest import SHIPPED_STACKS, by_type


def _of(plan, type_token, name):
    (resource,) = [r for r in by_type(plan, type_token) if r["name"] == name]
    return resource


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_bucket_is_encrypted_with_its_kms_key_and_a_bucket_key(plans, stack):
    plan = plans[stack]
    sse = _of(
        plan, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "models-bucket"
    )
    (rule,) = sse["inputs"]["rules"]
    assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
    assert rule["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"].startswith(
        f"arn:aws:kms:{plan['outputs']['region']}:"
    )
    assert rule["bucketKeyEnabled"] is True
    key = _of(plan, "aws:kms/key:Key", "models-key")
    assert key["inputs"]["enableKeyRotation"] is True


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
@pytest.mark.parametrize("bucket", ["models-bucket", "models-logs"])
def test_versioned_and_every_public_access_block_on(plans, stack, bucket):
    plan = plans[stack]
    versioning = _of(plan, "aws:s3/bucketVersioning:BucketVersioning", bucket)
    assert versioning["inputs"]["versioningConfiguration"]["status"] == "Enabled"
    block = _of(plan, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", bucket)
    for flag in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"):
        assert block["inputs"][flag] is True, flag
    ownership = _of(plan, "aws:s3/bucketOwnershipControls:BucketOwnershipControls", bucket)
    assert ownership["inputs"]["rule"]["objectOwnership"] == "BucketOwnerEnforced"


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_tls_only_policy_and_encryption_rule_only_on_the_model_bucket(plans, stack):
    plan = plans[stack]
    for bucket in ("models-bucket", "models-logs"):
        policy = json.loads(_of(plan, "aws:s3/bucketPolicy:BucketPolicy", bucket)["inputs"]["policy"])
        tls = [s for s in policy["Statement"] if s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport")]
        assert tls and tls[0]["Effect"] == "Deny" and tls[0]["Condition"]["Bool"]["aws:SecureTransport"] == "false"
        encryption_rules = [s for s in policy["Statement"] if "s3:x-amz-server-side-encryption" in json.dumps(s)]
        if bucket == "models-bucket":
            (rule,) = encryption_rules
            assert "StringNotEqualsIfExists" in rule["Condition"], "without IfExists, default-encrypted uploads fail"
        else:
            assert not encryption_rules, "S3 log delivery sends no encryption header: never on the log bucket"


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_stateful_resources_are_protected_and_retained(plans, stack):
    plan = plans[stack]
    for type_token, name in [
        ("aws:s3/bucket:Bucket", "models-bucket"),
        ("aws:s3/bucket:Bucket", "models-logs"),
        ("aws:kms/key:Key", "models-key"),
    ]:
        resource = _of(plan, type_token, name)
        assert resource["protect"] and resource["retain_on_delete"], name


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_lifecycle_expires_old_versions_and_abandoned_uploads(plans, stack):
    rules = {
        r["id"]: r
        for r in _of(plans[stack], "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "models-bucket")[
            "inputs"
        ]["rules"]
    }
    assert rules["expire-old-versions"]["noncurrentVersionExpiration"]["noncurrentDays"] == 30
    assert rules["abort-incomplete-uploads"]["abortIncompleteMultipartUpload"]["daysAfterInitiation"] == 7
    assert "expiration" not in rules["expire-old-versions"], "current weights never expire"


def test_bucket_name_carries_stack_and_account(plans):
    bucket = _of(plans["pilot"], "aws:s3/bucket:Bucket", "models-bucket")
    assert bucket["inputs"]["bucket"] == "modelyard-pilot-models-123456789012"
    assert plans["pilot"]["outputs"]["model_bucket"] == "modelyard-pilot-models-123456789012"


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_each_tenant_role_reads_only_its_models_and_its_prefix(plans, stack):
    from components import catalog
    from components.plan.run import load_settings
    from tests.conftest import ROOT

    _, settings = load_settings(ROOT, stack)
    plan = plans[stack]
    for tenant_name in settings.tenants:
        role = _of(plan, "aws:iam/role:Role", f"models-read-{tenant_name}")
        trust = json.loads(role["inputs"]["assumeRolePolicy"])
        assert trust["Statement"][0]["Principal"] == {"Service": "pods.eks.amazonaws.com"}
        policy = json.loads(
            _of(plan, "aws:iam/rolePolicy:RolePolicy", f"models-read-{tenant_name}")["inputs"]["policy"]
        )
        statements = {s["Sid"]: s for s in policy["Statement"]}
        bucket = f"arn:aws:s3:::modelyard-{stack}-models-123456789012"
        # The weights of the models whose servers the tenant runs; a model it only lists, it calls through the
        # gateway (tests/test_egress.py: test_a_tenant_calling_a_model_it_does_not_own_cannot_read_its_weights).
        expected = sorted(
            {
                *(
                    f"{bucket}/models/{catalog.resolve_model(settings.models[m].model).name}/{settings.models[m].revision}/*"
                    for m in settings.models
                    if settings.model_owner(m) == tenant_name
                ),
                f"{bucket}/tenants/{tenant_name}/*",
            }
        )
        assert statements["ReadOwnPrefixes"]["Action"] == "s3:GetObject"
        assert sorted(statements["ReadOwnPrefixes"]["Resource"]) == expected
        assert statements["ListOwnPrefixes"]["Resource"] == bucket
        assert set(statements) == {"ReadOwnPrefixes", "ListOwnPrefixes", "DecryptWeights"}
        assert not any(
            "Put" in json.dumps(s["Action"]) or "Delete" in json.dumps(s["Action"]) for s in policy["Statement"]
        )


def test_a_stack_name_too_long_for_bucket_names_is_refused(make_settings):
    with pytest.raises(InputError) as exc:
        make_settings(stack="a-very-long-environment-name-for-tests")
    assert exc.value.problems[0].path == "stack"
    assert "at most 38" in exc.value.problems[0].message


def test_writer_role_writes_only_under_models_and_never_deletes(plans):
    plan = plans["pilot"]
    role = _of(plan, "aws:iam/role:Role", "models-writer")
    assert json.loads(role["inputs"]["assumeRolePolicy"])["Statement"][0]["Principal"] == {
        "Service": "pods.eks.amazonaws.com"
    }
    policy = json.loads(_of(plan, "aws:iam/rolePolicy:RolePolicy", "models-writer")["inputs"]["policy"])
    statements = {s["Sid"]: s for s in policy["Statement"]}
    assert statements["WriteModels"]["Resource"].endswith("/models/*")
    assert "s3:PutObject" in statements["WriteModels"]["Action"]
    assert not any(
        "Delete" in a
        for s in policy["Statement"]
        for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    )
