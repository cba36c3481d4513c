"""`modelyard bootstrap` against moto's S3, KMS and STS on 127.0.0.1: the state bucket and the secrets key created
with every property, a second run that changes nothing, a half-configured bucket completed without losing the
team's own policy statement, a bucket name held by another account refused untouched, and the exit codes."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from components.cli import main
from components.tools import bootstrap
from components.tools.aws import Clients

ACCOUNT = "123456789012"  # moto's account
OTHER_ACCOUNT = "111111111111"
REGION = "us-east-1"
BUCKET = f"modelyard-pilot-pulumi-state-{ACCOUNT}"
ALIAS = "alias/modelyard-pilot-pulumi-secrets"
WRITES = (
    "CreateBucket", "PutBucketVersioning", "PutBucketEncryption", "PutPublicAccessBlock", "PutBucketOwnershipControls",
    "PutBucketPolicy", "PutBucketLifecycleConfiguration", "PutBucketTagging",
    "CreateKey", "CreateAlias", "EnableKeyRotation",
)  # fmt: skip


@pytest.fixture(scope="module")
def session(moto_endpoint: str) -> boto3.Session:
    return boto3.Session(region_name=REGION)


@pytest.fixture
def writes(moto_endpoint: str, session: boto3.Session, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """A fresh moto account; every write call the command makes, by operation name."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")).close()
    seen: list[str] = []

    def record(model: Any, **_: Any) -> None:
        if model.name in WRITES:
            seen.append(model.name)

    session.events.register("provide-client-params", record, unique_id="bootstrap-writes")
    monkeypatch.setattr(bootstrap.aws, "open_clients", lambda profile, region: Clients(session))
    yield seen
    session.events.unregister("provide-client-params", unique_id="bootstrap-writes")


def test_bootstrap_creates_the_bucket_and_key_then_a_second_run_changes_nothing(session, writes, capsys):
    assert main(["bootstrap", "--stack", "pilot"]) == 0
    out = capsys.readouterr().out
    assert set(writes) == set(WRITES) - {"PutBucketOwnershipControls"}  # set at creation
    s3, kms = session.client("s3"), session.client("kms")
    key = kms.describe_key(KeyId=ALIAS)["KeyMetadata"]
    assert key["KeyState"] == "Enabled"
    assert kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"]
    assert s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
    (rule,) = s3.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key["Arn"]}
    assert s3.get_bucket_ownership_controls(Bucket=BUCKET)["OwnershipControls"]["Rules"] == [
        {"ObjectOwnership": "BucketOwnerEnforced"}
    ]
    assert all(s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"].values())
    (statement,) = json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"])["Statement"]
    assert statement["Effect"] == "Deny" and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    (lifecycle,) = s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]
    assert lifecycle["NoncurrentVersionExpiration"]["NoncurrentDays"] == bootstrap.STATE_NONCURRENT_DAYS
    tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=BUCKET)["TagSet"]}
    assert tags["modelyard:stack"] == "pilot" and tags["team"] == "ml-platform"
    assert f"pulumi login 's3://{BUCKET}?region=us-east-1&awssdk=v2'" in out
    assert f'pulumi stack init pilot --secrets-provider "awskms://{ALIAS}?region=us-east-1"' in out

    writes.clear()
    assert main(["bootstrap", "--stack", "pilot"]) == 0
    again = capsys.readouterr().out
    assert writes == []
    assert "nothing changed" in again and "  changed" not in again


def test_a_half_configured_bucket_is_completed_and_the_teams_statements_kept(session, writes, capsys):
    s3 = session.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    team = {"Sid": "TeamAudit", "Effect": "Deny", "Principal": "*", "Action": "s3:DeleteBucket",
            "Resource": f"arn:aws:s3:::{BUCKET}"}  # fmt: skip
    s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps({"Version": "2012-10-17", "Statement": [team]}))
    writes.clear()
    assert main(["bootstrap", "--stack", "pilot"]) == 0
    out = capsys.readouterr().out
    assert "CreateBucket" not in writes
    assert f"ok      bucket s3://{BUCKET}" in out
    sids = [s["Sid"] for s in json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"])["Statement"]]
    assert sids == ["TeamAudit", bootstrap.TLS_SID]
    assert s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"


def test_a_bucket_owned_by_another_account_is_refused_untouched(session, writes, capsys):
    # core names its state bucket in deploy.state_bucket; another account holds that name.
    sts = session.client("sts")
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{OTHER_ACCOUNT}:role/other", RoleSessionName="other")["Credentials"]
    other = boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=REGION,
    ).client("s3")
    other.create_bucket(Bucket="amzn-s3-demo-bucket")
    writes.clear()
    assert main(["bootstrap", "--stack", "core"]) == 3
    err = capsys.readouterr().err
    assert "'amzn-s3-demo-bucket' is taken by another AWS account" in err
    assert "modelyard:deploy.state_bucket" in err
    assert not {"CreateBucket", "PutBucketPolicy", "PutBucketVersioning"} & set(writes)
    assert other.get_bucket_versioning(Bucket="amzn-s3-demo-bucket").get("Status") is None


def test_a_split_deployment_gets_both_stacks_and_the_key_to_configure(session, writes, capsys):
    assert main(["bootstrap", "--stack", "core-k8s"]) == 0  # the Kubernetes layer bootstraps its AWS layer's
    out = capsys.readouterr().out
    assert "pulumi login 's3://amzn-s3-demo-bucket?region=us-east-1&awssdk=v2'" in out
    assert "pulumi stack init core --secrets-provider" in out and "pulumi stack init core-k8s" in out
    key_arn = session.client("kms").describe_key(KeyId="alias/modelyard-core-pulumi-secrets")["KeyMetadata"]["Arn"]
    assert f"set modelyard:deploy.secrets_key_arn to {key_arn}" in out


def test_exit_codes_for_bad_input_and_missing_credentials(session, writes, monkeypatch, capsys):
    assert main(["bootstrap", "--stack", "nope"]) == 2
    assert main(["bootstrap"]) == 2
    capsys.readouterr()
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key)
    bare = boto3.Session(region_name=REGION)  # its credentials come from the now empty environment
    monkeypatch.setattr(bootstrap.aws, "open_clients", lambda profile, region: Clients(bare))
    assert main(["bootstrap", "--stack", "pilot"]) == 3
    assert "credentials" in capsys.readouterr().err
    assert writes == []
