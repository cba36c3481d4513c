"""FindingsRoute: GuardDuty findings to the stack's alert receivers, whichever layer Alertmanager is in.

  EventBridge rule (source aws.guardduty, "GuardDuty Finding", severity >= security.findings_min_severity)
    -> SNS topic `<stack>-guardduty-findings`, encrypted with its own customer-managed key, which only the rule
       may publish to (and only over TLS); a team may subscribe more (e-mail, a SIEM's queue)
    -> the forwarder (components/aws/findings_forwarder.py, a Lambda function outside the VPC) where the stack
       has receivers (monitoring.receivers): high and critical findings to `page`, the rest to `ticket`

Why not Alertmanager (docs/security.md#findings-to-the-receivers): it runs inside the cluster, whose API and
services are private in the enterprise preset, so nothing in AWS can post to it, and a compromised cluster
(what GuardDuty reports) could silence it. Why not EventBridge API destinations: a Slack or webhook receiver's
secret is its URL, and an API destination keeps its URL in plain sight (DescribeApiDestination).

The receivers' secrets are copied from the stack's config into Secrets Manager, one secret each, encrypted with
the topic's key; the function reads them by ARN, which is all its environment holds.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws

from components.aws import findings_forwarder
from components.aws.iam import account_administers_key, assume_role_policy, topic_tls_only
from components.contract import PAGE_ROUTE, ROUTE_ALERT_SEVERITY, TICKET_ROUTE
from components.settings.types import AlertReceiverKind, FindingSeverity

FORWARDER_SOURCE = Path(findings_forwarder.__file__)
FORWARDER_RUNTIME = "python3.13"
# A finding is looked into within days; GuardDuty itself keeps the finding 90 days.
FORWARDER_LOG_DAYS = 90
# Two receivers called one after another, each within the forwarder's own HTTP timeout, and room to spare.
FORWARDER_TIMEOUT_SECONDS = 30
# High and critical findings page (GuardDuty's bands); lower ones open a ticket.
PAGE_FROM = FindingSeverity.HIGH


@dataclass(frozen=True, kw_only=True)
class FindingsReceiver:
    kind: AlertReceiverKind
    secret: pulumi.Input[str]
    """The webhook URL, Slack incoming-webhook URL or PagerDuty routing key (kept secret)."""
    slack_channel: str | None = None


@dataclass(frozen=True, kw_only=True)
class FindingsRouteArgs:
    name: str
    """`<project>-<stack>`: prefix of the topic's, rule's, key's and function's names."""
    region: str
    account_id: pulumi.Input[str]
    min_severity: FindingSeverity
    """The least severe findings the rule sends to the topic."""
    receivers: Mapping[str, FindingsReceiver]
    """By route (PAGE_ROUTE, TICKET_ROUTE); none: the topic only (no forwarder)."""
    tags: Mapping[str, str]
    protect: bool = True


def event_pattern(min_severity: FindingSeverity) -> str:
    """The rule's pattern: GuardDuty findings at or above the severity (EventBridge numeric matching)."""
    return json.dumps(
        {
            "source": ["aws.guardduty"],
            "detail-type": ["GuardDuty Finding"],
            "detail": {"severity": [{"numeric": [">=", min_severity.minimum]}]},
        },
        sort_keys=True,
    )


def severity_bands(min_severity: FindingSeverity, routes: list[str]) -> dict[str, tuple[float, float | None]]:
    """Each route's [low, below) band of severity, for the routes that have a receiver: page from high up, ticket
    from the rule's threshold to high. A route whose band is empty (ticket with a threshold of high) gets none."""
    page_low = max(PAGE_FROM.minimum, min_severity.minimum)
    bands: dict[str, tuple[float, float | None]] = {PAGE_ROUTE: (page_low, None)}
    if min_severity.minimum < PAGE_FROM.minimum:
        bands[TICKET_ROUTE] = (min_severity.minimum, PAGE_FROM.minimum)
    return {route: bands[route] for route in sorted(routes) if route in bands}


def key_policy(values: list[str]) -> str:
    """The account administers the key through IAM; EventBridge may encrypt messages of this topic only (SNS puts
    the topic's ARN in the encryption context)."""
    account, topic_arn = values
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                account_administers_key(account),
                {
                    "Sid": "EventBridgePublishesToTheFindingsTopic",
                    "Effect": "Allow",
                    "Principal": {"Service": "events.amazonaws.com"},
                    "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                    "Resource": "*",
                    "Condition": {"StringEquals": {"kms:EncryptionContext:aws:sns:topicArn": topic_arn}},
                },
            ],
        },
        sort_keys=True,
    )


def topic_policy(values: list[str]) -> str:
    """Only the findings rule publishes, and nothing over plain HTTP."""
    topic_arn, rule_arn = values
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "FindingsRulePublishes",
                    "Effect": "Allow",
                    "Principal": {"Service": "events.amazonaws.com"},
                    "Action": "sns:Publish",
                    "Resource": topic_arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
                },
                topic_tls_only(topic_arn),
            ],
        },
        sort_keys=True,
    )


def forwarder_policy(*, region: str, log_group_arn: str, key_arn: str, secret_arns: list[str]) -> str:
    """The forwarder writes its log group and reads the receivers' secrets, nothing else."""
    statements = [
        {"Sid": "WriteOwnLogs", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
         "Resource": [log_group_arn, f"{log_group_arn}:log-stream:*"]},
        {"Sid": "ReadReceiverSecrets", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
         "Resource": sorted(secret_arns)},
        {"Sid": "DecryptReceiverSecrets", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": key_arn,
         "Condition": {"StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}}},
    ]  # fmt: skip
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)


class FindingsRoute(pulumi.ComponentResource):
    """The findings rule, its encrypted topic and, where the stack has receivers, the forwarder to them."""

    topic_arn: pulumi.Output[str]

    def __init__(self, name: str, *, args: FindingsRouteArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("modelyard:aws:FindingsRoute", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)
        topic_name = f"{args.name}-guardduty-findings"
        topic_arn = pulumi.Output.concat("arn:aws:sns:", args.region, ":", args.account_id, ":", topic_name)
        key = aws.kms.Key(
            f"{name}-key",
            description=f"GuardDuty findings topic {topic_name} and its receivers' secrets",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=pulumi.Output.all(args.account_id, topic_arn).apply(key_policy),
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect, retain_on_delete=True),
        )
        aws.kms.Alias(f"{name}-key", name=f"alias/{topic_name}", target_key_id=key.key_id, opts=child)
        topic = aws.sns.Topic(f"{name}-topic", name=topic_name, kms_master_key_id=key.arn, tags=tags, opts=child)
        rule = aws.cloudwatch.EventRule(
            f"{name}-rule",
            name=topic_name,
            description=f"GuardDuty findings of severity {args.min_severity.value} and above",
            event_pattern=event_pattern(args.min_severity),
            tags=tags,
            opts=child,
        )
        policy = aws.sns.TopicPolicy(
            f"{name}-topic",
            arn=topic.arn,
            policy=pulumi.Output.all(topic.arn, rule.arn).apply(topic_policy),
            opts=child,
        )
        aws.cloudwatch.EventTarget(
            f"{name}-target",
            rule=rule.name,
            arn=topic.arn,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )
        if args.receivers:
            bands = severity_bands(args.min_severity, list(args.receivers))
            build_forwarder(
                self,
                name,
                ForwarderArgs(
                    function_name=f"{args.name}-findings-forwarder",
                    description="Sends GuardDuty findings to the stack's alert receivers (docs/security.md)",
                    secret_prefix=f"{args.name}/findings-",
                    what="GuardDuty findings",
                    region=args.region,
                    routes={route: (args.receivers[route], low, below) for route, (low, below) in bands.items()},
                    source=None,
                ),
                key=key,
                topic=topic,
                tags=tags,
            )
        self.topic_arn = topic.arn
        self.register_outputs({"topic_arn": topic.arn})


@dataclass(frozen=True, kw_only=True)
class ForwarderArgs:
    """One forwarder (components/aws/findings_forwarder.py) subscribed to one topic."""

    function_name: str
    description: str
    secret_prefix: str
    """Prefix of the receivers' secrets' names (`<prefix><route>-`)."""
    what: str
    """What it forwards, in the secrets' descriptions ("GuardDuty findings", "spend alerts")."""
    region: str
    routes: Mapping[str, tuple[FindingsReceiver, float, float | None]]
    """By route: its receiver and the [low, below) severity band it carries (spend alerts: one route, any)."""
    source: str | None
    """findings_forwarder.SOURCE_ENV: None for GuardDuty findings, SPEND for spend alerts."""


def build_forwarder(
    owner: pulumi.Resource,
    name: str,
    args: ForwarderArgs,
    *,
    key: aws.kms.Key,
    topic: aws.sns.Topic,
    tags: Mapping[str, str],
) -> None:
    """The forwarder's resources under `owner`, named `<name>-...`: one Secrets Manager secret per route under the
    topic's key, its log group, role, function, SNS's permission to invoke it and its subscription to the topic.
    FindingsRoute and SpendAlarms each build one, from the same source file."""
    child = pulumi.ResourceOptions(parent=owner)
    tags = dict(tags)
    secrets: dict[str, aws.secretsmanager.Secret] = {}
    for route, (receiver, _, _) in args.routes.items():
        secrets[route] = aws.secretsmanager.Secret(
            f"{name}-{route}",
            name_prefix=f"{args.secret_prefix}{route}-",
            description=f"the {receiver.kind.value} receiver of {args.what} routed to {route}",
            kms_key_id=key.arn,
            tags=tags,
            opts=child,
        )
        aws.secretsmanager.SecretVersion(
            f"{name}-{route}",
            secret_id=secrets[route].id,
            secret_string=pulumi.Output.secret(receiver.secret),
            opts=child,
        )
    logs = aws.cloudwatch.LogGroup(
        f"{name}-logs",
        name=f"/aws/lambda/{args.function_name}",
        retention_in_days=FORWARDER_LOG_DAYS,
        tags=tags,
        opts=child,
    )
    role = aws.iam.Role(
        f"{name}-forwarder", assume_role_policy=assume_role_policy("lambda.amazonaws.com"), tags=tags, opts=child
    )
    role_policy = aws.iam.RolePolicy(
        f"{name}-forwarder",
        role=role.id,
        policy=pulumi.Output.all(logs.arn, key.arn, *[s.arn for s in secrets.values()]).apply(
            lambda v: forwarder_policy(region=args.region, log_group_arn=v[0], key_arn=v[1], secret_arns=v[2:])
        ),
        opts=child,
    )
    routes = pulumi.Output.all(*[secrets[route].arn for route in args.routes]).apply(
        lambda arns: json.dumps(
            [
                {
                    "name": route,
                    "alert_severity": ROUTE_ALERT_SEVERITY[route],
                    "low": low,
                    "below": below,
                    "kind": receiver.kind.value,
                    "secret_arn": arn,
                    "slack_channel": receiver.slack_channel,
                }
                for (route, (receiver, low, below)), arn in zip(args.routes.items(), arns, strict=True)
            ],
            sort_keys=True,
        )
    )
    variables: dict[str, pulumi.Input[str]] = {findings_forwarder.ROUTES_ENV: routes}
    if args.source is not None:
        variables[findings_forwarder.SOURCE_ENV] = args.source
    function = aws.lambda_.Function(
        f"{name}-forwarder",
        name=args.function_name,
        description=args.description,
        role=role.arn,
        runtime=FORWARDER_RUNTIME,
        architectures=["arm64"],
        handler=f"{FORWARDER_SOURCE.stem}.handler",
        code=pulumi.AssetArchive({FORWARDER_SOURCE.name: pulumi.StringAsset(FORWARDER_SOURCE.read_text())}),
        memory_size=128,
        timeout=FORWARDER_TIMEOUT_SECONDS,
        environment=aws.lambda_.FunctionEnvironmentArgs(variables=variables),
        logging_config=aws.lambda_.FunctionLoggingConfigArgs(
            log_format="JSON", log_group=logs.name, application_log_level="INFO", system_log_level="WARN"
        ),
        tags=tags,
        opts=pulumi.ResourceOptions(parent=owner, depends_on=[role_policy]),
    )
    permission = aws.lambda_.Permission(
        f"{name}-forwarder",
        action="lambda:InvokeFunction",
        function=function.name,
        principal="sns.amazonaws.com",
        source_arn=topic.arn,
        opts=child,
    )
    aws.sns.TopicSubscription(
        f"{name}-forwarder",
        topic=topic.arn,
        protocol="lambda",
        endpoint=function.arn,
        opts=pulumi.ResourceOptions(parent=owner, depends_on=[permission]),
    )
