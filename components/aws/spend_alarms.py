"""SpendAlarms (settings cost.budget): alarms on what the stack costs, before the invoice (docs/cost.md#spend-alarms).

  - an AWS Budget, monthly, of type COST, over the cost carrying the tag `modelyard:stack=<stack>` (a cost
    allocation tag once activated in the billing console): alerts at 80% and 100% of the amount spent (ACTUAL)
    and at 100% forecast (FORECASTED);
  - a Cost Anomaly Detection monitor over the same tag (a CUSTOM monitor: AWS allows only one services monitor per
    account, and the account's other spend is not this stack's) and a subscription that alerts at once on an
    anomaly whose total impact reaches `anomaly_usd`;
  - both notify an SNS topic encrypted with its own key, which only AWS Budgets and Cost Anomaly Detection of this
    account may publish to; the e-mails of cost.budget.emails are subscribed to it and named on the budget;
  - where the stack has alert receivers (monitoring.receivers), the forwarder that takes GuardDuty findings to them
    (components/aws/findings_forwarder.py, built by components/aws/findings.py build_forwarder) is subscribed to the
    topic too, a function of its own: every alert to the ticket route's receiver, or to page's where the stack has
    no ticket receiver (a spend alert asks for a look within the day, not a wake-up).

The budget's amount is a setting, not the plan's estimate: the estimate is computed from every resource the program
registers, so a resource of that same program cannot take it as an input. The plan compares the two and warns when
the amount is below the estimate plus the stack's margin (components/cost/estimate.py budget_check).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import pulumi
import pulumi_aws as aws

from components.aws import findings_forwarder
from components.aws.findings import FindingsReceiver, ForwarderArgs, build_forwarder
from components.aws.iam import account_administers_key, topic_tls_only
from components.contract import PAGE_ROUTE, TICKET_ROUTE

# Percent of the amount: actual spend at 80 and 100 (a warning, then the line), forecast at 100 (early warning).
ACTUAL_THRESHOLDS = (80, 100)
FORECAST_THRESHOLDS = (100,)
# The services that publish spend alerts (AWS Budgets and Cost Anomaly Detection user guides, SNS topic policies).
PUBLISHERS = ("budgets.amazonaws.com", "costalerts.amazonaws.com")
STACK_TAG = "modelyard:stack"


@dataclass(frozen=True, kw_only=True)
class SpendAlarmsArgs:
    name: str
    """`<project>-<stack>`: prefix of the budget's, monitor's and topic's names."""
    stack: str
    """The value of the modelyard:stack tag the budget and monitor filter on."""
    account_id: pulumi.Input[str]
    monthly_usd: Decimal | None
    """The budget's amount (None: no budget)."""
    anomaly_usd: Decimal | None
    """The anomaly subscription's threshold on total impact (None: no monitor)."""
    emails: Sequence[str]
    receivers: Mapping[str, FindingsReceiver] = field(default_factory=dict)
    """The stack's alert receivers by route (monitoring.receivers); none: the topic and its e-mails only."""
    region: str = ""
    """The stack's region (the forwarder's policy names Secrets Manager of it); needed with receivers."""
    tags: Mapping[str, str]
    protect: bool = True


def spend_route(routes: Sequence[str]) -> str | None:
    """The route spend alerts go to: ticket, else page, else none."""
    return next((route for route in (TICKET_ROUTE, PAGE_ROUTE) if route in routes), None)


def key_policy(account: str) -> str:
    """The account administers the key through IAM; AWS Budgets and Cost Anomaly Detection encrypt messages for
    the topic (a publisher to an encrypted topic needs the key)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                account_administers_key(account),
                {
                    "Sid": "SpendAlertsPublish",
                    "Effect": "Allow",
                    "Principal": {"Service": list(PUBLISHERS)},
                    "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                    "Resource": "*",
                    "Condition": {"StringEquals": {"aws:SourceAccount": account}},
                },
            ],
        },
        sort_keys=True,
    )


def topic_policy(values: list[str]) -> str:
    """Only this account's Budgets and Cost Anomaly Detection publish, and nothing over plain HTTP."""
    topic_arn, account = values
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "SpendAlertsPublish",
                    "Effect": "Allow",
                    "Principal": {"Service": list(PUBLISHERS)},
                    "Action": "sns:Publish",
                    "Resource": topic_arn,
                    "Condition": {"StringEquals": {"aws:SourceAccount": account}},
                },
                topic_tls_only(topic_arn),
            ],
        },
        sort_keys=True,
    )


def monitor_specification(stack: str) -> str:
    """Cost Explorer's Expression for the stack's tag (a cost allocation tag is named without its user: prefix)."""
    return json.dumps({"Tags": {"Key": STACK_TAG, "Values": [stack], "MatchOptions": ["EQUALS"]}}, sort_keys=True)


class SpendAlarms(pulumi.ComponentResource):
    """The spend topic and, as settings ask, the monthly budget and the anomaly monitor with its subscription."""

    topic_arn: pulumi.Output[str]

    def __init__(self, name: str, *, args: SpendAlarmsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("modelyard:aws:SpendAlarms", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)
        topic_name = f"{args.name}-spend-alerts"
        route = spend_route(list(args.receivers))
        key = aws.kms.Key(
            f"{name}-key",
            description=f"Spend alerts topic {topic_name}" + (" and its receiver's secret" if route else ""),
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=pulumi.Output.from_input(args.account_id).apply(key_policy),
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect, retain_on_delete=True),
        )
        aws.kms.Alias(f"{name}-key", name=f"alias/{topic_name}", target_key_id=key.key_id, opts=child)
        topic = aws.sns.Topic(f"{name}-topic", name=topic_name, kms_master_key_id=key.arn, tags=tags, opts=child)
        policy = aws.sns.TopicPolicy(
            f"{name}-topic",
            arn=topic.arn,
            policy=pulumi.Output.all(topic.arn, args.account_id).apply(topic_policy),
            opts=child,
        )
        for email in sorted(args.emails):
            aws.sns.TopicSubscription(f"{name}-{email}", topic=topic.arn, protocol="email", endpoint=email, opts=child)
        published = pulumi.ResourceOptions(parent=self, depends_on=[policy])
        if args.monthly_usd is not None:
            notifications = [
                aws.budgets.BudgetNotificationArgs(
                    comparison_operator="GREATER_THAN",
                    notification_type=kind,
                    threshold=float(percent),
                    threshold_type="PERCENTAGE",
                    subscriber_sns_topic_arns=[topic.arn],
                    subscriber_email_addresses=sorted(args.emails) or None,
                )
                for kind, thresholds in (("ACTUAL", ACTUAL_THRESHOLDS), ("FORECASTED", FORECAST_THRESHOLDS))
                for percent in thresholds
            ]
            aws.budgets.Budget(
                f"{name}-budget",
                name=f"{args.name}-monthly",
                budget_type="COST",
                time_unit="MONTHLY",
                limit_amount=f"{args.monthly_usd:.2f}",
                limit_unit="USD",
                cost_filters=[
                    aws.budgets.BudgetCostFilterArgs(name="TagKeyValue", values=[f"user:{STACK_TAG}${args.stack}"])
                ],
                notifications=notifications,
                tags=tags,
                opts=published,
            )
        if args.anomaly_usd is not None:
            monitor = aws.costexplorer.AnomalyMonitor(
                f"{name}-anomalies",
                name=f"{args.name}-spend",
                monitor_type="CUSTOM",
                monitor_specification=monitor_specification(args.stack),
                tags=tags,
                opts=child,
            )
            aws.costexplorer.AnomalySubscription(
                f"{name}-anomalies",
                name=f"{args.name}-spend",
                frequency="IMMEDIATE",  # IMMEDIATE alerts go to SNS only; the topic's e-mails receive them
                monitor_arn_lists=[monitor.arn],
                subscribers=[aws.costexplorer.AnomalySubscriptionSubscriberArgs(type="SNS", address=topic.arn)],
                threshold_expression=aws.costexplorer.AnomalySubscriptionThresholdExpressionArgs(
                    dimension=aws.costexplorer.AnomalySubscriptionThresholdExpressionDimensionArgs(
                        key="ANOMALY_TOTAL_IMPACT_ABSOLUTE",
                        match_options=["GREATER_THAN_OR_EQUAL"],
                        values=[f"{args.anomaly_usd:.2f}"],
                    )
                ),
                tags=tags,
                opts=published,
            )
        if route is not None:
            build_forwarder(
                self,
                name,
                ForwarderArgs(
                    function_name=f"{args.name}-spend-forwarder",
                    description="Sends AWS Budgets and Cost Anomaly Detection alerts to the stack's alert receivers "
                    "(docs/cost.md#spend-alarms)",
                    secret_prefix=f"{args.name}/spend-",
                    what="spend alerts",
                    region=args.region,
                    routes={route: (args.receivers[route], 0.0, None)},
                    source=findings_forwarder.SPEND,
                ),
                key=key,
                topic=topic,
                tags=tags,
            )
        self.topic_arn = topic.arn
        self.register_outputs({"topic_arn": topic.arn})
