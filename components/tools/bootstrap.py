"""`modelyard bootstrap --stack S [--profile P]`: what a team's Pulumi state needs before the first `pulumi up`.

  - an S3 bucket for the state backend (`pulumi login s3://...`): versioned (every checkpoint can be restored),
    encrypted with the secrets key (SSE-KMS, bucket key on), all public access blocked, ACLs off, a TLS-only
    policy, old versions expired after STATE_NONCURRENT_DAYS and unfinished uploads aborted;
  - a KMS key with an alias for Pulumi's `awskms://` secrets provider (rotation on).

Names come from the stack's settings: the bucket is `deploy.state_bucket` where the stack sets one (a split
deployment's runner logs in to it), else `<project>-<stack>-pulumi-state-<account id>`; the key's alias is
`alias/<project>-<stack>-pulumi-secrets`. Both layers of a split deployment share them.

Idempotent: each property is read first and written only when it differs; a second run changes nothing and says
so. A bucket of that name held by another account is refused, never written to. Exit codes: 0 done (or nothing to
do), 2 bad input, 3 the environment blocks it (credentials, a bucket owned elsewhere, a disabled key).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import botocore.exceptions

from components.aws.buckets import tls_only
from components.errors import EnvironmentBlocked, ExitCode, InputError, Problem
from components.settings import Settings
from components.tools import aws
from components.tools.aws import Clients, caller_identity, error_code

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# Overwritten checkpoints are kept this long: `pulumi stack export` of an earlier version restores a broken state.
STATE_NONCURRENT_DAYS = 90
# The Pulumi CLI writes checkpoints in one request; anything unfinished after a week is an interrupted upload.
ABORT_INCOMPLETE_UPLOAD_DAYS = 7
LIFECYCLE_RULE_ID = "modelyard-state-versions"
TLS_SID = "DenyInsecureTransport"
# S3 bucket names: 3-63 characters (S3 user guide, "General purpose bucket naming rules").
MAX_BUCKET_NAME = 63


def state_bucket_name(settings: Settings, account_id: str) -> str:
    return settings.deploy.state_bucket or f"{settings.name}-pulumi-state-{account_id}".lower()


def secrets_alias(settings: Settings) -> str:
    return f"alias/{settings.name}-pulumi-secrets"


def secrets_provider(settings: Settings) -> str:
    return f"awskms://{secrets_alias(settings)}?region={settings.region}"


def lifecycle_rule() -> dict[str, Any]:
    return {
        "ID": LIFECYCLE_RULE_ID,
        "Status": "Enabled",
        "Filter": {"Prefix": ""},
        "NoncurrentVersionExpiration": {"NoncurrentDays": STATE_NONCURRENT_DAYS},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": ABORT_INCOMPLETE_UPLOAD_DAYS},
    }


@dataclass
class Outcome:
    """What one run did: a line per property, `changed` when it wrote something."""

    lines: list[str] = field(default_factory=list)
    changes: int = 0

    def kept(self, what: str) -> None:
        self.lines.append(f"  ok      {what}")

    def changed(self, what: str) -> None:
        self.lines.append(f"  changed {what}")
        self.changes += 1


class Bootstrap:
    def __init__(self, settings: Settings, clients: Clients) -> None:
        self.settings = settings
        self.clients = clients
        self.outcome = Outcome()

    def run(self) -> tuple[str, str, Outcome]:
        """(bucket name, key ARN, what was done)."""
        account = caller_identity(self.clients)["account"]
        bucket = state_bucket_name(self.settings, account)
        if len(bucket) > MAX_BUCKET_NAME:
            raise InputError(
                Problem(
                    path="modelyard:deploy.state_bucket",
                    message=f"the derived state bucket name {bucket!r} is {len(bucket)} characters, S3 allows "
                    f"{MAX_BUCKET_NAME}: name a shorter one",
                )
            )
        key_arn = self.ensure_key()
        self.ensure_bucket(bucket, account, key_arn)
        return bucket, key_arn, self.outcome

    # --- the secrets key ----------------------------------------------------------------------------

    def ensure_key(self) -> str:
        kms = self.clients("kms")
        alias = secrets_alias(self.settings)
        try:
            meta = kms.describe_key(KeyId=alias)["KeyMetadata"]
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) != "NotFoundException":
                raise
            meta = kms.create_key(
                Description=f"Pulumi secrets provider of {self.settings.name} (modelyard bootstrap)",
                KeyUsage="ENCRYPT_DECRYPT",
                KeySpec="SYMMETRIC_DEFAULT",
                Tags=[{"TagKey": k, "TagValue": v} for k, v in sorted(self._tags().items())],
            )["KeyMetadata"]
            kms.create_alias(AliasName=alias, TargetKeyId=meta["KeyId"])
            self.outcome.changed(f"KMS key {meta['Arn']} created, alias {alias}")
        else:
            if meta.get("KeyState") != "Enabled":
                raise EnvironmentBlocked(
                    f"the secrets key {alias} ({meta['Arn']}) is {meta.get('KeyState')}: Pulumi cannot decrypt the "
                    f"stack's secrets with it; `aws kms cancel-key-deletion` / `aws kms enable-key --key-id "
                    f"{meta['KeyId']}`, or point the alias at another key"
                )
            self.outcome.kept(f"KMS key {meta['Arn']}, alias {alias}")
        if kms.get_key_rotation_status(KeyId=meta["KeyId"]).get("KeyRotationEnabled"):
            self.outcome.kept("key rotation: on")
        else:
            kms.enable_key_rotation(KeyId=meta["KeyId"])
            self.outcome.changed("key rotation: switched on")
        return str(meta["Arn"])

    # --- the state bucket ---------------------------------------------------------------------------

    def ensure_bucket(self, bucket: str, account: str, key_arn: str) -> None:
        s3 = self.clients("s3")
        if not self._owns(bucket):
            self._create(bucket, account)
        else:
            self.outcome.kept(f"bucket s3://{bucket} (this account's)")
        owner = {"ExpectedBucketOwner": account}
        self._versioning(s3, bucket, owner)
        self._encryption(s3, bucket, owner, key_arn)
        self._public_access(s3, bucket, owner)
        self._ownership(s3, bucket, owner)
        self._policy(s3, bucket, owner)
        self._lifecycle(s3, bucket, owner)
        self._tagging(s3, bucket, owner)

    def _owns(self, bucket: str) -> bool:
        """Whether this account owns the bucket. ListBuckets lists this account's buckets only, whatever HeadBucket
        would say of a bucket another account made readable."""
        s3 = self.clients("s3")
        for page in s3.get_paginator("list_buckets").paginate(Prefix=bucket):
            if any(b["Name"] == bucket for b in page.get("Buckets", [])):
                return True
        return False

    def _create(self, bucket: str, account: str) -> None:
        s3 = self.clients("s3")
        elsewhere = (
            f"the state bucket name {bucket!r} is taken by another AWS account (S3 bucket names are global); "
            "nothing was written to it. Name a bucket of your own in modelyard:deploy.state_bucket"
            + ("" if self.settings.deploy.state_bucket else " (the kit's default name ends with your account id)")
        )
        try:
            s3.head_bucket(Bucket=bucket)
        except botocore.exceptions.ClientError as exc:
            if aws.http_status(exc) != 404:
                raise EnvironmentBlocked(elsewhere) from exc
        else:
            raise EnvironmentBlocked(elsewhere)
        create: dict[str, Any] = {"Bucket": bucket, "ObjectOwnership": "BucketOwnerEnforced"}
        if self.settings.region != "us-east-1":  # us-east-1 refuses its own name as a location constraint
            create["CreateBucketConfiguration"] = {"LocationConstraint": self.settings.region}
        try:
            s3.create_bucket(**create)
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) in ("BucketAlreadyExists", "BucketAlreadyOwnedByYou", "OperationAborted"):
                raise EnvironmentBlocked(elsewhere) from exc
            raise
        self.outcome.changed(f"bucket s3://{bucket} created in {self.settings.region} (account {account})")

    def _versioning(self, s3: Any, bucket: str, owner: dict[str, str]) -> None:
        if s3.get_bucket_versioning(Bucket=bucket, **owner).get("Status") == "Enabled":
            self.outcome.kept("versioning: enabled")
            return
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}, **owner)
        self.outcome.changed("versioning: enabled")

    def _encryption(self, s3: Any, bucket: str, owner: dict[str, str], key_arn: str) -> None:
        wanted = {
            "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn},
            "BucketKeyEnabled": True,
        }
        try:
            rules = s3.get_bucket_encryption(Bucket=bucket, **owner)["ServerSideEncryptionConfiguration"]["Rules"]
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) != "ServerSideEncryptionConfigurationNotFoundError":
                raise
            rules = []
        if rules == [wanted]:
            self.outcome.kept("default encryption: SSE-KMS with the secrets key, bucket key on")
            return
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [wanted]}, **owner)
        self.outcome.changed("default encryption: SSE-KMS with the secrets key, bucket key on")

    def _public_access(self, s3: Any, bucket: str, owner: dict[str, str]) -> None:
        wanted = dict.fromkeys(
            ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True
        )
        try:
            current = s3.get_public_access_block(Bucket=bucket, **owner)["PublicAccessBlockConfiguration"]
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) != "NoSuchPublicAccessBlockConfiguration":
                raise
            current = {}
        if all(current.get(k) for k in wanted):
            self.outcome.kept("public access: blocked")
            return
        s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=wanted, **owner)
        self.outcome.changed("public access: blocked")

    def _ownership(self, s3: Any, bucket: str, owner: dict[str, str]) -> None:
        try:
            rules = s3.get_bucket_ownership_controls(Bucket=bucket, **owner)["OwnershipControls"]["Rules"]
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) != "OwnershipControlsNotFoundError":
                raise
            rules = []
        if rules == [{"ObjectOwnership": "BucketOwnerEnforced"}]:
            self.outcome.kept("ACLs: off (bucket owner enforced)")
            return
        s3.put_bucket_ownership_controls(
            Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}, **owner
        )
        self.outcome.changed("ACLs: off (bucket owner enforced)")

    def _policy(self, s3: Any, bucket: str, owner: dict[str, str]) -> None:
        """The TLS-only statement, beside whatever statements the team added (kept)."""
        statement = tls_only(f"arn:aws:s3:::{bucket}")
        try:
            policy = json.loads(s3.get_bucket_policy(Bucket=bucket, **owner)["Policy"])
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) != "NoSuchBucketPolicy":
                raise
            policy = {"Version": "2012-10-17", "Statement": []}
        statements = policy.get("Statement", [])
        statements = [statements] if isinstance(statements, dict) else list(statements)
        if statement in statements:
            self.outcome.kept("policy: TLS only")
            return
        policy["Statement"] = [s for s in statements if s.get("Sid") != TLS_SID] + [statement]
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy, sort_keys=True), **owner)
        self.outcome.changed("policy: TLS only")

    def _lifecycle(self, s3: Any, bucket: str, owner: dict[str, str]) -> None:
        rule = lifecycle_rule()
        try:
            rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket, **owner)["Rules"]
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) != "NoSuchLifecycleConfiguration":
                raise
            rules = []
        what = (
            f"lifecycle: old versions expire after {STATE_NONCURRENT_DAYS} days, unfinished uploads aborted after "
            f"{ABORT_INCOMPLETE_UPLOAD_DAYS}"
        )
        if rule in rules:
            self.outcome.kept(what)
            return
        others = [r for r in rules if r.get("ID") != LIFECYCLE_RULE_ID]
        s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [*others, rule]}, **owner)
        self.outcome.changed(what)

    def _tagging(self, s3: Any, bucket: str, owner: dict[str, str]) -> None:
        try:
            current = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=bucket, **owner)["TagSet"]}
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) != "NoSuchTagSet":
                raise
            current = {}
        merged = {**current, **self._tags()}
        if merged == current:
            self.outcome.kept("tags: the stack's")
            return
        tag_set = [{"Key": k, "Value": v} for k, v in sorted(merged.items())]
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tag_set}, **owner)
        self.outcome.changed("tags: the stack's")

    def _tags(self) -> dict[str, str]:
        return self.settings.tags_for("state")


def render(settings: Settings, bucket: str, key_arn: str, outcome: Outcome) -> str:
    lines = [f"bootstrap: stack {settings.stack}, region {settings.region}", *outcome.lines]
    if outcome.changes:
        lines.append(f"{outcome.changes} change{'s' if outcome.changes != 1 else ''} made")
    else:
        lines.append("nothing changed: the state bucket and the secrets key were already in place")
    provider = secrets_provider(settings)
    stacks = [settings.deployment] + ([settings.kubernetes_stack] if settings.kubernetes_stack else [])
    lines += ["", "next:", f"  pulumi login 's3://{bucket}?region={settings.region}&awssdk=v2'"]
    lines += [f'  pulumi stack init {s} --secrets-provider "{provider}"' for s in stacks]
    lines.append(f'  (a stack that exists already: pulumi stack change-secrets-provider --stack S "{provider}")')
    configured = settings.deploy.secrets_key_arn
    if settings.kubernetes_stack and configured != key_arn:
        lines.append(
            f"  set modelyard:deploy.secrets_key_arn to {key_arn} in stacks/Pulumi.{settings.deployment}.yaml: the "
            f"deploy runner may use only that key (it names {configured or 'none'})"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="modelyard bootstrap",
        description="Create the Pulumi state backend of a stack before its first `up`: a versioned, encrypted, "
        "private S3 bucket and a KMS key for the awskms:// secrets provider. Idempotent. Exit 0: done or nothing "
        "to do; 3: the environment blocks it; 2: bad input.",
    )
    parser.add_argument("--stack", required=True, help="a stack of stacks/Pulumi.<stack>.yaml")
    parser.add_argument("--profile", help="an AWS CLI profile (default: boto3's credential chain)")
    parser.add_argument("--project-dir", type=Path, default=PROJECT_ROOT, metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    from components.plan.run import load_settings

    _, settings = load_settings(args.project_dir, args.stack)
    if settings.aws_stack is not None:  # a Kubernetes layer: its state lives beside its AWS layer's
        _, settings = load_settings(args.project_dir, settings.aws_stack)
    clients = aws.open_clients(args.profile, settings.region)
    bucket, key_arn, outcome = Bootstrap(settings, clients).run()
    sys.stdout.write(render(settings, bucket, key_arn, outcome))
    return ExitCode.OK
