"""Replicas of the model bucket in other regions, and the S3 replication that fills them (docs/regions.md).

ModelReplica: one bucket in one region (created through that region's provider) with a KMS key of its own,
versioning (replication needs it on both sides), every public access block, ACLs off, a TLS-only policy and
lifecycle; the bucket and its key are stateful, so protected and retained like the source's.

ModelReplication: on the source bucket, one replication configuration with a rule per replica and prefix (models/,
or models/<model>/ of each model storage.replicas.<region>.models lists, and tenants/<tenant>/ only where
storage.replicas.<region>.tenants lists the tenant), and the role S3 assumes for it:
read the source's object versions under those prefixes, decrypt with the source key through S3 of the source region
for this bucket, write replicas into each destination under the same prefixes, encrypt with that destination's key
through S3 of its region for its bucket. Nothing else.

What S3 replication does not do, and the kit does not pretend: it copies objects written after the configuration
exists (objects already there need S3 Batch Replication, docs/regions.md#existing-objects), and it does not replicate
delete markers here (a deletion in the source region never takes weights away from another region's servers; see
docs/regions.md#deletes).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws.buckets import bucket_key, expire_old_versions, harden_bucket, tls_only


@dataclass(frozen=True, kw_only=True)
class ModelReplicaArgs:
    region: str
    """The replica's region (the provider in the options must be that region's)."""
    bucket_name: pulumi.Input[str]
    """`<project>-<stack>-models-<account id>-<region>`: `modelyard models verify --replicas` finds it so."""
    tags: Mapping[str, str]
    """Tags for every taggable resource of the component."""
    noncurrent_version_days: int = 30
    """Days an overwritten replica version is kept before S3 expires it (the source bucket's figure)."""
    protect: bool = True
    """Protect the bucket and key from deletion (stateful); tests may turn it off."""


class ModelReplica(pulumi.ComponentResource):
    """A replica of the model bucket in another region: its own KMS key, versioned, private, TLS only, kept."""

    bucket_arn: pulumi.Output[str]
    key_arn: pulumi.Output[str]

    def __init__(self, name: str, *, args: ModelReplicaArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("modelyard:aws:ModelReplica", name, None, opts)
        tags = dict(args.tags)
        child = pulumi.ResourceOptions(parent=self)
        stateful = pulumi.ResourceOptions(parent=self, protect=args.protect, retain_on_delete=True)
        # A key of the replica's own region: KMS keys are regional, and S3 encrypts replicas with a key of the
        # destination's region (AWS, Amazon S3 User Guide, "Replicating encrypted objects").
        key = bucket_key(
            name,
            description=f"{name}: replicated model weights at rest ({args.region})",
            tags=tags,
            stateful=stateful,
            child=child,
        )
        bucket = aws.s3.Bucket(f"{name}-bucket", bucket=args.bucket_name, tags=tags, opts=stateful)
        harden_bucket(f"{name}-bucket", bucket, child, kms_key_arn=key.arn)
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-bucket",
            bucket=bucket.id,
            rules=[expire_old_versions(args.noncurrent_version_days)],
            opts=child,
        )
        aws.s3.BucketPolicy(
            f"{name}-bucket",
            bucket=bucket.id,
            policy=bucket.arn.apply(lambda arn: json.dumps({"Version": "2012-10-17", "Statement": [tls_only(arn)]})),
            opts=child,
        )
        self.bucket_arn = bucket.arn
        self.key_arn = key.arn
        self.register_outputs({"bucket_arn": self.bucket_arn})


@dataclass(frozen=True, kw_only=True)
class ReplicationDestination:
    bucket_arn: pulumi.Input[str]
    """The replica bucket's ARN (ModelReplica.bucket_arn)."""
    key_arn: pulumi.Input[str]
    """The replica's KMS key (ModelReplica.key_arn): S3 encrypts the replicas with it."""
    prefixes: Sequence[str]
    """What is replicated there: models/, then tenants/<tenant>/ of each tenant the replica lists."""


@dataclass(frozen=True, kw_only=True)
class ModelReplicationArgs:
    source_region: str
    """The model bucket's region: the role may use the source key only through S3 there."""
    source_bucket: pulumi.Input[str]
    """The model bucket's name."""
    source_bucket_arn: pulumi.Input[str]
    """The model bucket's ARN."""
    source_key_arn: pulumi.Input[str]
    """The model bucket's KMS key: the role may decrypt with it, nothing else."""
    destinations: Mapping[str, ReplicationDestination]
    """The replicas by region, each with what is replicated there."""
    tags: Mapping[str, str]
    """Tags for the role."""


def _through_s3(region: str, bucket_arn: str) -> dict[str, object]:
    """A key used only by S3 of `region` for `bucket_arn` (with a bucket key, the encryption context is the bucket's
    ARN: AWS, Amazon S3 User Guide, "Configuring your bucket to use an S3 Bucket Key")."""
    return {
        "StringEquals": {
            "kms:ViaService": f"s3.{region}.amazonaws.com",
            "kms:EncryptionContext:aws:s3:arn": bucket_arn,
        }
    }


def replication_policy(
    *,
    source_region: str,
    source_bucket_arn: str,
    source_key_arn: str,
    destinations: Mapping[str, tuple[str, str, Sequence[str]]],
) -> str:
    """The replication role's policy: destinations by region as (bucket ARN, key ARN, prefixes)."""
    read_prefixes = sorted({p for _, _, prefixes in destinations.values() for p in prefixes})
    statements: list[dict[str, object]] = [
        {
            "Sid": "ReadReplicationConfiguration",
            "Effect": "Allow",
            "Action": ["s3:GetReplicationConfiguration", "s3:ListBucket"],
            "Resource": source_bucket_arn,
        },
        {
            "Sid": "ReadSourceVersions",
            "Effect": "Allow",
            "Action": ["s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl", "s3:GetObjectVersionTagging"],
            "Resource": [f"{source_bucket_arn}/{p}*" for p in read_prefixes],
        },
        {
            "Sid": "DecryptSource",
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": source_key_arn,
            "Condition": _through_s3(source_region, source_bucket_arn),
        },
    ]
    for region, (bucket_arn, key_arn, prefixes) in sorted(destinations.items()):
        sid = "".join(part.capitalize() for part in region.split("-"))
        statements += [
            {
                "Sid": f"Replicate{sid}",
                "Effect": "Allow",
                "Action": ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"],
                "Resource": [f"{bucket_arn}/{p}*" for p in prefixes],
            },
            {
                "Sid": f"Encrypt{sid}",
                "Effect": "Allow",
                "Action": ["kms:Encrypt", "kms:GenerateDataKey"],
                "Resource": key_arn,
                "Condition": _through_s3(region, bucket_arn),
            },
        ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def _rule_id(region: str, prefix: str) -> str:
    """models/ -> models-to-eu-west-1; models/llama-3.1-8b/ -> model-llama-3.1-8b-to-eu-west-1;
    tenants/acme/ -> tenant-acme-to-eu-west-1."""
    parts = prefix.strip("/").split("/")
    if parts == ["models"]:
        what = "models"
    elif parts[0] == "models":
        what = f"model-{parts[1]}"
    else:
        what = f"tenant-{parts[1]}"
    return f"{what}-to-{region}"


class ModelReplication(pulumi.ComponentResource):
    """The model bucket's replication configuration and its least-privileged role."""

    def __init__(self, name: str, *, args: ModelReplicationArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("modelyard:aws:ModelReplication", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        regions = sorted(args.destinations)
        role = aws.iam.Role(
            f"{name}-role",
            description="S3 replication of the model bucket to its replicas in other regions",
            assume_role_policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "s3.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
            tags=dict(args.tags),
            opts=child,
        )
        destination_arns = [args.destinations[r].bucket_arn for r in regions]
        destination_keys = [args.destinations[r].key_arn for r in regions]

        def policy(arns: list[str]) -> str:
            source_bucket_arn, source_key_arn, *rest = arns
            buckets, keys = rest[: len(regions)], rest[len(regions) :]
            return replication_policy(
                source_region=args.source_region,
                source_bucket_arn=source_bucket_arn,
                source_key_arn=source_key_arn,
                destinations={
                    r: (b, k, args.destinations[r].prefixes) for r, b, k in zip(regions, buckets, keys, strict=True)
                },
            )

        role_policy = aws.iam.RolePolicy(
            f"{name}-role",
            role=role.id,
            policy=pulumi.Output.all(
                args.source_bucket_arn, args.source_key_arn, *destination_arns, *destination_keys
            ).apply(policy),
            opts=child,
        )
        rules = []
        priority = 0
        for region in regions:
            destination = args.destinations[region]
            for prefix in destination.prefixes:
                priority += 1
                rules.append(
                    aws.s3.BucketReplicationConfigRuleArgs(
                        id=_rule_id(region, prefix),
                        status="Enabled",
                        # Unique per rule: S3 needs priorities to differ when rules overlap or share a destination.
                        priority=priority,
                        filter=aws.s3.BucketReplicationConfigRuleFilterArgs(prefix=prefix),
                        delete_marker_replication=aws.s3.BucketReplicationConfigRuleDeleteMarkerReplicationArgs(
                            status="Disabled"
                        ),
                        source_selection_criteria=aws.s3.BucketReplicationConfigRuleSourceSelectionCriteriaArgs(
                            sse_kms_encrypted_objects=aws.s3.BucketReplicationConfigRuleSourceSelectionCriteriaSseKmsEncryptedObjectsArgs(
                                status="Enabled"
                            )
                        ),
                        destination=aws.s3.BucketReplicationConfigRuleDestinationArgs(
                            bucket=destination.bucket_arn,
                            encryption_configuration=aws.s3.BucketReplicationConfigRuleDestinationEncryptionConfigurationArgs(
                                replica_kms_key_id=destination.key_arn
                            ),
                        ),
                    )
                )
        # The role's policy first: S3 checks the role when the configuration is put.
        aws.s3.BucketReplicationConfig(
            f"{name}-config",
            bucket=args.source_bucket,
            role=role.arn,
            rules=rules,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role_policy]),
        )
        self.register_outputs({})
