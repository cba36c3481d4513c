"""What every S3 bucket the kit creates gets (model storage, the deploy runner's source, the audit trail's logs)."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws


def tls_only(bucket_arn: str) -> dict[str, object]:
    """The bucket policy statement every bucket of the kit carries: no request over plain HTTP."""
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, f"{bucket_arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def bucket_key(
    name: str,
    *,
    description: str,
    tags: dict[str, str],
    stateful: pulumi.ResourceOptions,
    child: pulumi.ResourceOptions,
) -> aws.kms.Key:
    """A customer key for a bucket's objects, rotated yearly, with the alias `alias/<name>`; kept like the bucket."""
    key = aws.kms.Key(
        f"{name}-key",
        description=description,
        enable_key_rotation=True,
        deletion_window_in_days=30,
        tags=tags,
        opts=stateful,
    )
    aws.kms.Alias(f"{name}-key", name=f"alias/{name}", target_key_id=key.key_id, opts=child)
    return key


def expire_old_versions(days: int) -> aws.s3.BucketLifecycleConfigurationRuleArgs:
    """The lifecycle rule of a weights bucket (the source and its replicas): old versions go after `days`."""
    return aws.s3.BucketLifecycleConfigurationRuleArgs(
        id="expire-old-versions",
        status="Enabled",
        filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
        noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
            noncurrent_days=days
        ),
    )


def harden_bucket(
    name: str, bucket: aws.s3.Bucket, child: pulumi.ResourceOptions, *, kms_key_arn: pulumi.Input[str] | None
) -> None:
    """Versioning, default encryption (the KMS key with a bucket key, else SSE-S3), all public access blocked,
    ACLs off: every bucket the kit creates gets these."""
    aws.s3.BucketVersioning(
        name,
        bucket=bucket.id,
        versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
        opts=child,
    )
    by_default = (
        aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
            sse_algorithm="aws:kms", kms_master_key_id=kms_key_arn
        )
        if kms_key_arn is not None
        else aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
            sse_algorithm="AES256"
        )
    )
    aws.s3.BucketServerSideEncryptionConfiguration(
        name,
        bucket=bucket.id,
        rules=[
            aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=by_default,
                bucket_key_enabled=kms_key_arn is not None,
            )
        ],
        opts=child,
    )
    aws.s3.BucketPublicAccessBlock(
        name,
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=child,
    )
    aws.s3.BucketOwnershipControls(
        name,
        bucket=bucket.id,
        rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
        opts=child,
    )


def expire_logs(
    name: str, bucket: aws.s3.Bucket, child: pulumi.ResourceOptions, *, rule_id: str, days: int, noncurrent_days: int
) -> None:
    """A log bucket's lifecycle: logs expire after `days`, overwritten versions after `noncurrent_days`."""
    aws.s3.BucketLifecycleConfiguration(
        name,
        bucket=bucket.id,
        rules=[
            aws.s3.BucketLifecycleConfigurationRuleArgs(
                id=rule_id,
                status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=days),
                noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                    noncurrent_days=noncurrent_days
                ),
            )
        ],
        opts=child,
    )
