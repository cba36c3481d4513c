"""ModelStorage: the private, encrypted home of a stack's model weights, and who may read what.

Layout (docs/models.md#the-bucket-layout):
  models/<model>/<revision>/   base weights and manifest.json, written by `modelyard models push`
  tenants/<tenant>/            what belongs to one tenant (adapters, evaluation data)
A tenant's read role gets the prefixes of the models whose servers it runs (it owns them) and its own
tenant prefix, nothing else. With S3 bucket keys, KMS grants cannot be scoped by prefix, so isolation is
IAM's: the role's S3 actions are limited to its prefixes, and its use of the bucket's key to S3 decrypting
objects of this bucket (kms:ViaService, and the encryption context, which with a bucket key is the bucket's ARN).

The bucket and its key are stateful: protected against `pulumi destroy` and retained if Pulumi
ever deletes them (a rename, a removed stack), so weights survive any config change.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.aws.buckets import bucket_key, expire_logs, expire_old_versions, harden_bucket, tls_only
from components.aws.iam import POD_IDENTITY_TRUST


@dataclass(frozen=True, kw_only=True)
class TenantAccess:
    model_prefixes: Sequence[str]
    """Bucket prefixes of the models whose servers the tenant runs, e.g. models/llama-3.1-8b/main/."""


@dataclass(frozen=True, kw_only=True)
class ModelStorageArgs:
    region: str
    """The bucket's region: the read and writer roles may use the key only through S3 of this region."""
    bucket_name: pulumi.Input[str]
    """The model bucket's name (`<project>-<stack>-models-<account id>`; the push tool finds it so)."""
    tenants: Mapping[str, TenantAccess]
    """Tenants by name and the model prefixes each may read; one read role each."""
    tags: Mapping[str, str]
    """Tags for every taggable resource of the component."""
    noncurrent_version_days: int = 30
    """Days an overwritten or deleted object version is kept before S3 expires it."""
    abort_multipart_days: int = 7
    """Days before S3 drops an incomplete multipart upload. The push tool resumes by whole objects within
    a session; a part-uploaded object is re-sent, so a week only bounds what abandoned parts cost."""
    access_log_days: int = 365
    """Days server access logs are kept in the log bucket."""
    protect: bool = field(default=True)
    """Protect the bucket and key from deletion (stateful); tests may turn it off."""


def _through_s3(region: str, bucket_arn: str) -> dict[str, object]:
    """The condition that limits a role's use of the bucket key to S3 of the region working on this bucket: with
    an S3 bucket key the encryption context is the bucket's ARN, not the object's (AWS, Amazon S3 User Guide,
    "Configuring your bucket to use an S3 Bucket Key with SSE-KMS for new objects"). The role cannot call KMS
    directly, nor through S3 for another bucket encrypted with the same key."""
    return {
        "StringEquals": {
            "kms:ViaService": f"s3.{region}.amazonaws.com",
            "kms:EncryptionContext:aws:s3:arn": bucket_arn,
        }
    }


def _writer_policy(arns: list[str], *, region: str) -> str:
    """Put, read back and resume under models/ only; never delete (versions expire by lifecycle)."""
    bucket_arn, key_arn = arns
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "WriteModels",
                    "Effect": "Allow",
                    "Action": [
                        "s3:PutObject",
                        "s3:GetObject",
                        "s3:AbortMultipartUpload",
                        "s3:ListMultipartUploadParts",
                    ],
                    "Resource": f"{bucket_arn}/models/*",
                },
                {
                    "Sid": "ListModels",
                    "Effect": "Allow",
                    "Action": "s3:ListBucket",
                    "Resource": bucket_arn,
                    "Condition": {"StringLike": {"s3:prefix": ["models/*"]}},
                },
                {
                    "Sid": "EncryptWeights",
                    "Effect": "Allow",
                    "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                    "Resource": key_arn,
                    "Condition": _through_s3(region, bucket_arn),
                },
            ],
        }
    )


def _read_policy(arns: list[str], *, region: str, prefixes: Sequence[str]) -> str:
    """GetObject under the prefixes, ListBucket limited to them, Decrypt with the bucket's key through S3 for this
    bucket: nothing else."""
    bucket_arn, key_arn = arns
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ReadOwnPrefixes",
                    "Effect": "Allow",
                    "Action": "s3:GetObject",
                    "Resource": [f"{bucket_arn}/{p}*" for p in prefixes],
                },
                {
                    "Sid": "ListOwnPrefixes",
                    "Effect": "Allow",
                    "Action": "s3:ListBucket",
                    "Resource": bucket_arn,
                    "Condition": {"StringLike": {"s3:prefix": [f"{p}*" for p in prefixes]}},
                },
                {
                    "Sid": "DecryptWeights",
                    "Effect": "Allow",
                    "Action": "kms:Decrypt",
                    "Resource": key_arn,
                    "Condition": _through_s3(region, bucket_arn),
                },
            ],
        }
    )


class ModelStorage(pulumi.ComponentResource):
    """S3 bucket with KMS (bucket key), versioning, no public access, TLS only, lifecycle, access logs,
    and one read role per tenant for EKS Pod Identity."""

    bucket_name: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]
    key_arn: pulumi.Output[str]
    tenant_role_arns: dict[str, pulumi.Output[str]]
    writer_role_arn: pulumi.Output[str]

    def __init__(self, name: str, *, args: ModelStorageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("modelyard:aws:ModelStorage", name, None, opts)
        tags = dict(args.tags)
        child = pulumi.ResourceOptions(parent=self)
        stateful = pulumi.ResourceOptions(parent=self, protect=args.protect, retain_on_delete=True)

        key = bucket_key(name, description=f"{name}: model weights at rest", tags=tags, stateful=stateful, child=child)

        # Server access logs go to a bucket of their own. S3 log delivery cannot write with a
        # customer KMS key, so it uses SSE-S3, and its policy carries no encryption-header rule.
        logs = aws.s3.Bucket(
            f"{name}-logs",
            bucket=pulumi.Output.concat(args.bucket_name, "-logs"),
            tags=tags,
            opts=stateful,
        )
        harden_bucket(f"{name}-logs", logs, child, kms_key_arn=None)
        expire_logs(
            f"{name}-logs", logs, child, rule_id="expire-access-logs", days=args.access_log_days, noncurrent_days=1
        )
        aws.s3.BucketPolicy(
            f"{name}-logs",
            bucket=logs.id,
            policy=pulumi.Output.all(logs.arn, args.bucket_name).apply(
                lambda a: json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            tls_only(a[0]),
                            {
                                "Sid": "S3ServerAccessLogs",
                                "Effect": "Allow",
                                "Principal": {"Service": "logging.s3.amazonaws.com"},
                                "Action": "s3:PutObject",
                                "Resource": f"{a[0]}/access/*",
                                "Condition": {"ArnLike": {"aws:SourceArn": f"arn:aws:s3:::{a[1]}"}},
                            },
                        ],
                    }
                )
            ),
            opts=child,
        )

        bucket = aws.s3.Bucket(f"{name}-bucket", bucket=args.bucket_name, tags=tags, opts=stateful)
        harden_bucket(f"{name}-bucket", bucket, child, kms_key_arn=key.arn)
        aws.s3.BucketLogging(
            f"{name}-bucket",
            bucket=bucket.id,
            target_bucket=logs.id,
            target_prefix="access/",
            opts=child,
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-bucket",
            bucket=bucket.id,
            rules=[
                expire_old_versions(args.noncurrent_version_days),
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="abort-incomplete-uploads",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                        days_after_initiation=args.abort_multipart_days
                    ),
                ),
            ],
            opts=child,
        )
        aws.s3.BucketPolicy(
            f"{name}-bucket",
            bucket=bucket.id,
            policy=bucket.arn.apply(
                lambda arn: json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            tls_only(arn),
                            {
                                # ...IfExists: uploads without the header get the bucket's default (KMS);
                                # an upload asking for another algorithm is refused.
                                "Sid": "DenyOtherEncryption",
                                "Effect": "Deny",
                                "Principal": "*",
                                "Action": "s3:PutObject",
                                "Resource": f"{arn}/*",
                                "Condition": {
                                    "StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption": "aws:kms"}
                                },
                            },
                        ],
                    }
                )
            ),
            opts=child,
        )

        writer = aws.iam.Role(
            f"{name}-writer",
            description="Writes model weights under models/ (an in-cluster push Job via EKS Pod Identity)",
            assume_role_policy=POD_IDENTITY_TRUST,
            tags=tags,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-writer",
            role=writer.id,
            policy=pulumi.Output.all(bucket.arn, key.arn).apply(functools.partial(_writer_policy, region=args.region)),
            opts=child,
        )
        self.writer_role_arn = writer.arn

        self.tenant_role_arns = {}
        for tenant, access in sorted(args.tenants.items()):
            role = aws.iam.Role(
                f"{name}-read-{tenant}",
                description=f"Reads tenant {tenant}'s models and prefix in the model bucket (EKS Pod Identity)",
                assume_role_policy=POD_IDENTITY_TRUST,
                tags=tags,
                opts=child,
            )
            prefixes = sorted({*access.model_prefixes, f"tenants/{tenant}/"})
            aws.iam.RolePolicy(
                f"{name}-read-{tenant}",
                role=role.id,
                policy=pulumi.Output.all(bucket.arn, key.arn).apply(
                    functools.partial(_read_policy, region=args.region, prefixes=prefixes)
                ),
                opts=child,
            )
            self.tenant_role_arns[tenant] = role.arn

        self.bucket_name = bucket.bucket
        self.bucket_arn = bucket.arn
        self.key_arn = key.arn
        self.register_outputs({"bucket_name": self.bucket_name, "bucket_arn": self.bucket_arn})
