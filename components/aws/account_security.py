"""AccountSecurity (where settings.security asks): a GuardDuty detector with EKS audit log monitoring and Runtime
Monitoring for EKS (GuardDuty manages its agent add-on), its findings routed to the stack's alert receivers
(components/aws/findings.py), and a CloudTrail trail recording S3 data events on the model bucket, each log file
encrypted with the trail's own customer-managed key, into a private, versioned, TLS-only log bucket
(docs/security.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws.buckets import expire_logs, harden_bucket, tls_only
from components.aws.findings import FindingsReceiver, FindingsRoute, FindingsRouteArgs
from components.aws.iam import account_administers_key
from components.settings import Settings
from components.settings.types import GuardDutyFeature


def _trail_bucket_policy(values: list[str]) -> str:
    bucket_arn, trail_arn, account = values
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                tls_only(bucket_arn),
                {
                    "Sid": "CloudTrailAclCheck",
                    "Effect": "Allow",
                    "Principal": {"Service": "cloudtrail.amazonaws.com"},
                    "Action": "s3:GetBucketAcl",
                    "Resource": bucket_arn,
                    "Condition": {"StringEquals": {"aws:SourceArn": trail_arn}},
                },
                {
                    "Sid": "CloudTrailWrite",
                    "Effect": "Allow",
                    "Principal": {"Service": "cloudtrail.amazonaws.com"},
                    "Action": "s3:PutObject",
                    "Resource": f"{bucket_arn}/AWSLogs/{account}/*",
                    "Condition": {
                        "StringEquals": {"aws:SourceArn": trail_arn, "s3:x-amz-acl": "bucket-owner-full-control"}
                    },
                },
            ],
        },
        sort_keys=True,
    )


def _trail_key_policy(values: list[str]) -> str:
    """The account administers the key through IAM (readers of the logs need kms:Decrypt there); CloudTrail may
    encrypt this trail's log files only and describe the key for this trail only: every statement for CloudTrail
    carries the trail's aws:SourceArn, as AWS asks ("Configure AWS KMS key policies for CloudTrail")."""
    account, trail_arn = values
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                account_administers_key(account),
                {
                    "Sid": "CloudTrailEncryptsThisTrail",
                    "Effect": "Allow",
                    "Principal": {"Service": "cloudtrail.amazonaws.com"},
                    "Action": "kms:GenerateDataKey*",
                    "Resource": "*",
                    "Condition": {
                        "StringEquals": {"aws:SourceArn": trail_arn},
                        "StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": trail_arn},
                    },
                },
                {
                    "Sid": "CloudTrailDescribesKey",
                    "Effect": "Allow",
                    "Principal": {"Service": "cloudtrail.amazonaws.com"},
                    "Action": "kms:DescribeKey",
                    "Resource": "*",
                    "Condition": {"StringEquals": {"aws:SourceArn": trail_arn}},
                },
            ],
        },
        sort_keys=True,
    )


@dataclass(frozen=True, kw_only=True)
class AccountSecurityArgs:
    name: str
    """`<project>-<stack>`: prefix of the trail's, its bucket's and the findings route's names."""
    region: str
    guardduty_runtime: bool
    guardduty_eks_audit_logs: bool
    cloudtrail_data_events: bool
    model_bucket_arn: pulumi.Input[str]
    account_id: pulumi.Input[str]
    findings: FindingsRouteArgs | None = None
    """Where GuardDuty findings go (None: they stay in GuardDuty)."""
    log_days: int = 365
    tags: Mapping[str, str]
    protect: bool = True


def alert_receivers(settings: Settings) -> dict[str, FindingsReceiver]:
    """The receivers of the stack's settings (monitoring.receivers) by route, each secret kept secret, for the
    forwarders of the AWS layer (GuardDuty findings, spend alerts): in a split deployment, those of the AWS layer's
    own stack file (docs/deploy.md)."""
    return {
        route: FindingsReceiver(
            kind=receiver.kind, secret=pulumi.Output.secret(receiver.secret), slack_channel=receiver.slack_channel
        )
        for route, receiver in settings.monitoring.receivers.items()
    }


def account_security_args(
    settings: Settings, *, model_bucket_arn: pulumi.Input[str], account_id: pulumi.Input[str]
) -> AccountSecurityArgs | None:
    """What settings.security asks of the account (None: nothing). The findings go to the receivers the AWS layer's
    settings name: in a split deployment, those of its own stack file (docs/deploy.md)."""
    security = settings.security
    if not (security.detector or security.findings_routed or security.cloudtrail_data_events):
        return None
    tags = settings.tags_for("security")
    findings = None
    if security.findings_routed:
        findings = FindingsRouteArgs(
            name=settings.name,
            region=settings.region,
            account_id=account_id,
            min_severity=security.findings_min_severity,
            receivers=alert_receivers(settings),
            tags=tags,
        )
    return AccountSecurityArgs(
        name=settings.name,
        region=settings.region,
        guardduty_runtime=security.guardduty_runtime is GuardDutyFeature.ON,
        guardduty_eks_audit_logs=security.guardduty_eks_audit_logs is GuardDutyFeature.ON,
        cloudtrail_data_events=security.cloudtrail_data_events,
        model_bucket_arn=model_bucket_arn,
        account_id=account_id,
        findings=findings,
        tags=tags,
    )


def _status(on: bool) -> str:
    return "ENABLED" if on else "DISABLED"


class AccountSecurity(pulumi.ComponentResource):
    """A GuardDuty detector watching the cluster, its findings routed to the receivers, and CloudTrail data events
    on the model bucket."""

    findings_topic_arn: pulumi.Output[str] | None

    def __init__(self, name: str, *, args: AccountSecurityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("modelyard:aws:AccountSecurity", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)
        if args.guardduty_runtime or args.guardduty_eks_audit_logs:
            # One detector per account and region: an account that has one already must import it.
            detector = aws.guardduty.Detector(f"{name}-guardduty", enable=True, tags=tags, opts=child)
            # Both features are set either way: a new detector's defaults are GuardDuty's to change, the stack's
            # choice is not.
            aws.guardduty.DetectorFeature(
                f"{name}-runtime-monitoring",
                detector_id=detector.id,
                name="RUNTIME_MONITORING",
                status=_status(args.guardduty_runtime),
                additional_configurations=[
                    # GuardDuty installs and updates its security agent add-on on the cluster.
                    aws.guardduty.DetectorFeatureAdditionalConfigurationArgs(
                        name="EKS_ADDON_MANAGEMENT", status=_status(args.guardduty_runtime)
                    )
                ],
                opts=child,
            )
            aws.guardduty.DetectorFeature(
                f"{name}-eks-audit-logs",
                detector_id=detector.id,
                name="EKS_AUDIT_LOGS",
                status=_status(args.guardduty_eks_audit_logs),
                opts=child,
            )
        self.findings_topic_arn = None
        if args.findings is not None:
            route = FindingsRoute(f"{name}-findings", args=args.findings, opts=child)
            self.findings_topic_arn = route.topic_arn
        if args.cloudtrail_data_events:
            self._trail(name, args, tags)
        self.register_outputs({})

    def _trail(self, name: str, args: AccountSecurityArgs, tags: dict[str, str]) -> None:
        child = pulumi.ResourceOptions(parent=self)
        trail_name = f"{args.name}-model-data"
        bucket = aws.s3.Bucket(
            f"{name}-trail-logs",
            bucket=pulumi.Output.concat(args.name, "-trail-", args.account_id),
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect, retain_on_delete=True),
        )
        # CloudTrail encrypts each log file with the trail's own KMS key; the bucket's default stays SSE-S3.
        harden_bucket(f"{name}-trail-logs", bucket, child, kms_key_arn=None)
        expire_logs(
            f"{name}-trail-logs", bucket, child, rule_id="expire-trail-logs", days=args.log_days, noncurrent_days=30
        )
        trail_arn = pulumi.Output.concat(
            "arn:aws:cloudtrail:", args.region, ":", args.account_id, ":trail/", trail_name
        )
        key = aws.kms.Key(
            f"{name}-trail",
            description=f"CloudTrail log files of trail {trail_name}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=pulumi.Output.all(args.account_id, trail_arn).apply(_trail_key_policy),
            tags=tags,
            # Stateful: without it the trail's logs cannot be read.
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect, retain_on_delete=True),
        )
        aws.kms.Alias(f"{name}-trail", name=f"alias/{args.name}-trail", target_key_id=key.key_id, opts=child)
        policy = aws.s3.BucketPolicy(
            f"{name}-trail-logs",
            bucket=bucket.id,
            policy=pulumi.Output.all(bucket.arn, trail_arn, args.account_id).apply(_trail_bucket_policy),
            opts=child,
        )
        aws.cloudtrail.Trail(
            f"{name}-model-data",
            name=trail_name,
            s3_bucket_name=bucket.id,
            enable_log_file_validation=True,
            kms_key_id=key.arn,
            include_global_service_events=False,
            is_multi_region_trail=False,
            advanced_event_selectors=[
                aws.cloudtrail.TrailAdvancedEventSelectorArgs(
                    name="Model bucket object reads and writes",
                    field_selectors=[
                        aws.cloudtrail.TrailAdvancedEventSelectorFieldSelectorArgs(
                            field="eventCategory", equals=["Data"]
                        ),
                        aws.cloudtrail.TrailAdvancedEventSelectorFieldSelectorArgs(
                            field="resources.type", equals=["AWS::S3::Object"]
                        ),
                        aws.cloudtrail.TrailAdvancedEventSelectorFieldSelectorArgs(
                            field="resources.ARN",
                            starts_withs=[pulumi.Output.concat(args.model_bucket_arn, "/")],
                        ),
                    ],
                )
            ],
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )
