"""Spend alarms from the plan: the monthly AWS Budget over the stack's tag, Cost Anomaly Detection, their encrypted
topic; priced (the budget) or listed free with the reason (anomaly detection); the plan's warning when the budget
is unset or below the AWS estimate plus the stack's margin; the settings' refusals; spend alerts forwarded to the
stack's alert receivers (the plan, and the forwarder's code against moto and a receiver on loopback)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from components.aws import findings_forwarder as forwarder
from components.aws.findings import FORWARDER_SOURCE
from components.aws.spend_alarms import PUBLISHERS, monitor_specification, spend_route, topic_policy
from components.contract import PAGE_ROUTE, SECRET, TICKET_ROUTE
from components.cost.estimate import budget_check
from components.errors import InputError
from components.policy.rules import RULES
from tests.conftest import by_type, plan_with
from tests.test_account_security import SECURE, Receiver


@pytest.mark.parametrize("stack", ["pilot", "product", "core"])
def test_shipped_stacks_budget_their_estimate_plus_margin(plans, stack):
    plan = plans[stack]
    (budget,) = by_type(plan, "aws:budgets/budget:Budget")
    inputs = budget["inputs"]
    check = plan["cost"]["budget"]
    assert check["warning"] is None
    assert Decimal(inputs["limitAmount"]) == Decimal(check["monthly_usd"]) >= Decimal(check["suggested_usd"])
    assert Decimal(check["suggested_usd"]) >= Decimal(plan["cost"]["aws_monthly"]) * Decimal("1.2")
    assert inputs["budgetType"] == "COST" and inputs["timeUnit"] == "MONTHLY" and inputs["limitUnit"] == "USD"
    assert inputs["costFilters"] == [{"name": "TagKeyValue", "values": [f"user:modelyard:stack${stack}"]}]
    (topic,) = (
        by_type(plan, "aws:sns/topic:Topic")
        if stack != "core"
        else [t for t in by_type(plan, "aws:sns/topic:Topic") if t["inputs"]["name"].endswith("-spend-alerts")]
    )
    topic_arn = f"arn:aws:sns:us-east-1:123456789012:{topic['inputs']['name']}"
    assert sorted((n["notificationType"], n["threshold"]) for n in inputs["notifications"]) == [
        ("ACTUAL", 80), ("ACTUAL", 100), ("FORECASTED", 100)
    ]  # fmt: skip
    assert all(n["subscriberSnsTopicArns"] == [topic_arn] for n in inputs["notifications"])
    (subscription,) = by_type(plan, "aws:costexplorer/anomalySubscription:AnomalySubscription")
    assert subscription["inputs"]["frequency"] == "IMMEDIATE"
    assert subscription["inputs"]["subscribers"] == [{"address": topic_arn, "type": "SNS"}]
    assert subscription["inputs"]["thresholdExpression"]["dimension"] == {
        "key": "ANOMALY_TOTAL_IMPACT_ABSOLUTE", "matchOptions": ["GREATER_THAN_OR_EQUAL"], "values": ["100.00"]
    }  # fmt: skip
    (monitor,) = by_type(plan, "aws:costexplorer/anomalyMonitor:AnomalyMonitor")
    assert monitor["inputs"]["monitorType"] == "CUSTOM"
    assert json.loads(monitor["inputs"]["monitorSpecification"])["Tags"]["Values"] == [stack]
    # Priced: the budget at the paid rate (an assumption), anomaly detection free with the reason.
    (line,) = [ln for ln in plan["cost"]["lines"] if ln["resource"] == budget["key"]]
    assert (line["monthly"], line["quality"]) == ("0.61", "U")
    free = {f["type"]: f["reason"] for f in plan["cost"]["free"]}
    assert "Cost Anomaly Detection is free" in free["aws:costexplorer/anomalyMonitor:AnomalyMonitor"]
    assert "aws:costexplorer/anomalySubscription:AnomalySubscription" in free


def test_only_this_accounts_budgets_and_anomaly_detection_publish_over_tls():
    policy = json.loads(topic_policy(["arn:aws:sns:us-east-1:111122223333:t", "111122223333"]))
    allow, deny = policy["Statement"]
    assert allow["Principal"] == {"Service": list(PUBLISHERS)}
    assert allow["Condition"] == {"StringEquals": {"aws:SourceAccount": "111122223333"}}
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert json.loads(monitor_specification("pilot")) == {
        "Tags": {"Key": "modelyard:stack", "MatchOptions": ["EQUALS"], "Values": ["pilot"]}
    }


def test_the_plan_warns_when_the_budget_is_unset_or_below_the_estimate(make_settings):
    unset = budget_check(make_settings("minimal"), Decimal("1000.00"))
    assert unset["suggested_usd"] == "1200"
    assert "set modelyard:cost.budget.monthly_usd to 1200" in unset["warning"]
    low = budget_check(make_settings("minimal", cost={"budget": {"monthly_usd": 900}}), Decimal("1000.00"))
    assert "below the AWS estimate itself" in low["warning"]
    tight = budget_check(
        make_settings("minimal", cost={"budget": {"monthly_usd": 1100, "margin_percent": 15}}), Decimal("1000.00")
    )
    assert "within 15% of the AWS estimate" in tight["warning"] and "1150 or more" in tight["warning"]
    enough = budget_check(make_settings("minimal", cost={"budget": {"monthly_usd": 1150, "margin_percent": 15}}),
                          Decimal("1000.00"))  # fmt: skip
    assert enough["warning"] is None


def test_no_budget_nor_anomaly_monitor_means_no_spend_alarms(tmp_path):
    plan = plan_with(tmp_path, "minimal", {"region": "us-east-1", "cost": {"budget": {"anomaly_usd": None}}})
    assert not by_type(plan, "modelyard:aws:SpendAlarms")
    assert "no AWS Budget" in plan["cost"]["budget"]["warning"]


def test_emails_are_subscribed_and_bad_ones_refused(tmp_path, make_settings):
    plan = plan_with(
        tmp_path, "minimal", {"region": "us-east-1", "cost": {"budget": {"monthly_usd": 5000, "emails": ["a@b.io"]}}}
    )
    (budget,) = by_type(plan, "aws:budgets/budget:Budget")
    assert all(n["subscriberEmailAddresses"] == ["a@b.io"] for n in budget["inputs"]["notifications"])
    (email,) = [s for s in by_type(plan, "aws:sns/topicSubscription:TopicSubscription")
                if s["inputs"]["protocol"] == "email"]  # fmt: skip
    assert email["inputs"]["endpoint"] == "a@b.io"
    for budget_settings, path in (
        ({"emails": [f"x{i}@b.io" for i in range(11)]}, "modelyard:cost.budget.emails"),
        ({"emails": ["a@b.io", "a@b.io"]}, "modelyard:cost.budget.emails"),
        ({"emails": ["not-an-address"]}, "modelyard:cost.budget.emails"),
        ({"monthly_usd": 0}, "modelyard:cost.budget.monthly_usd"),
        ({"margin_percent": -5}, "modelyard:cost.budget.margin_percent"),
    ):
        with pytest.raises(InputError) as caught:
            make_settings("minimal", cost={"budget": budget_settings})
        assert any(p.path.startswith(path) for p in caught.value.problems), caught.value.render()


# --- spend alerts to the stack's alert receivers ---------------------------------------------------------------------

SPEND_RECEIVERS = {
    "receivers": {
        PAGE_ROUTE: {"kind": "pagerduty", "secret": SECURE},
        TICKET_ROUTE: {"kind": "slack", "secret": SECURE, "slack_channel": "#finops"},
    }
}


def test_spend_alerts_reach_the_ticket_receiver_through_the_forwarder(tmp_path) -> None:
    """A pilot with receivers and no GuardDuty routing: the spend topic gets a forwarder of its own, the findings'
    code, which sends every spend alert to the ticket route's receiver."""
    plan = plan_with(tmp_path, "minimal", {"region": "us-east-1", "monitoring": SPEND_RECEIVERS})
    assert not by_type(plan, "modelyard:aws:FindingsRoute")
    (spend,) = by_type(plan, "modelyard:aws:SpendAlarms")
    (topic,) = [t for t in by_type(plan, "aws:sns/topic:Topic") if t["parent"] == spend["key"]]
    topic_arn = f"arn:aws:sns:us-east-1:123456789012:{topic['inputs']['name']}"
    (function,) = by_type(plan, "aws:lambda/function:Function")
    assert function["parent"] == spend["key"] and "vpcConfig" not in function["inputs"]
    assert function["inputs"]["handler"] == "findings_forwarder.handler"
    digest = hashlib.sha256(FORWARDER_SOURCE.read_text().encode()).hexdigest()
    assert function["inputs"]["code"] == {
        "archive": {"findings_forwarder.py": {"asset": f"(inline text, sha256 {digest})"}}
    }
    variables = function["inputs"]["environment"]["variables"]
    assert variables[forwarder.SOURCE_ENV] == forwarder.SPEND
    (route,) = json.loads(variables[forwarder.ROUTES_ENV])
    assert (route["name"], route["kind"], route["slack_channel"], route["alert_severity"]) == (
        TICKET_ROUTE, "slack", "#finops", "warning"
    )  # fmt: skip
    # One secret (the ticket's), under the spend topic's key, read by the function's role only through Secrets Manager.
    (secret,) = by_type(plan, "aws:secretsmanager/secret:Secret")
    assert secret["inputs"]["kmsKeyId"] == topic["inputs"]["kmsMasterKeyId"]
    assert route["secret_arn"].startswith(
        f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{secret['inputs']['namePrefix']}"
    )
    assert [v["inputs"]["secretString"] for v in by_type(plan, "aws:secretsmanager/secretVersion:SecretVersion")] == [
        SECRET
    ]
    (role_policy,) = [r for r in by_type(plan, "aws:iam/rolePolicy:RolePolicy") if r["parent"] == spend["key"]]
    read = {s["Sid"]: s for s in json.loads(role_policy["inputs"]["policy"])["Statement"]}["ReadReceiverSecrets"]
    assert read["Resource"] == [route["secret_arn"]]
    # SNS invokes it from the spend topic, to which it is subscribed.
    (permission,) = by_type(plan, "aws:lambda/permission:Permission")
    assert (permission["inputs"]["principal"], permission["inputs"]["sourceArn"]) == ("sns.amazonaws.com", topic_arn)
    (subscription,) = [s for s in by_type(plan, "aws:sns/topicSubscription:TopicSubscription")
                       if s["inputs"]["protocol"] == "lambda"]  # fmt: skip
    assert subscription["inputs"]["topic"] == topic_arn and subscription["parent"] == spend["key"]
    assert [v for rule in RULES for v in rule.check(plan)] == []


def test_spend_alerts_page_where_the_stack_has_no_ticket_receiver_and_stay_on_the_topic_without_receivers(
    tmp_path, plans
) -> None:
    page_only = {"receivers": {PAGE_ROUTE: SPEND_RECEIVERS["receivers"][PAGE_ROUTE]}}
    plan = plan_with(tmp_path, "minimal", {"region": "us-east-1", "monitoring": page_only})
    (function,) = by_type(plan, "aws:lambda/function:Function")
    (route,) = json.loads(function["inputs"]["environment"]["variables"][forwarder.ROUTES_ENV])
    assert (route["name"], route["kind"], route["alert_severity"]) == (PAGE_ROUTE, "pagerduty", "critical")
    assert spend_route([]) is None and spend_route([PAGE_ROUTE, TICKET_ROUTE]) == TICKET_ROUTE
    for stack in ("pilot", "product"):  # the shipped stacks name no receivers: the topic and its e-mails only
        assert not by_type(plans[stack], "aws:lambda/function:Function")


def test_findings_and_spend_alerts_each_have_their_forwarder(tmp_path) -> None:
    plan = plan_with(
        tmp_path,
        "minimal",
        {"region": "us-east-1", "monitoring": SPEND_RECEIVERS, "security": {"findings": "on"}},
    )
    functions = {f["inputs"]["name"].rsplit("-", 2)[-2]: f["inputs"]["environment"]["variables"]
                 for f in by_type(plan, "aws:lambda/function:Function")}  # fmt: skip
    assert set(functions) == {"findings", "spend"}
    assert forwarder.SOURCE_ENV not in functions["findings"]
    assert functions["spend"][forwarder.SOURCE_ENV] == forwarder.SPEND


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    served = Receiver()
    yield served
    served.server.shutdown()
    served.server.server_close()


@pytest.fixture
def secrets(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    import boto3

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setattr(forwarder, "_secrets", {})
    return boto3.client("secretsmanager", region_name="us-east-1")


def spend_record(message_id: str, subject: str, message: str) -> dict[str, Any]:
    """One record of Lambda's SNS event (what SNS sets: Type, MessageId, TopicArn, Subject, Message, Timestamp)."""
    return {
        "EventSource": "aws:sns",
        "Sns": {
            "Type": "Notification",
            "MessageId": message_id,
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:modelyard-pilot-spend-alerts",
            "Subject": subject,
            "Message": message,
            "Timestamp": "2026-12-07T10:00:00.000Z",
        },
    }


BUDGET_TEXT = "The ACTUAL Cost associated with modelyard-pilot-monthly is greater than 80% <of> $2,500.00 & rising"


@pytest.mark.parametrize("kind", ["slack", "webhook", "pagerduty"])
def test_the_forwarder_sends_a_spend_alert_to_each_receiver_kind(
    secrets, receiver: Receiver, monkeypatch, kind
) -> None:
    """The forwarder's own code against moto's Secrets Manager and a receiver on loopback."""
    target = receiver.url("/services/T0/B0/spend") if kind != "pagerduty" else "pd-routing-key-spend"
    arn = secrets.create_secret(Name=f"spend-{kind}", SecretString=target)["ARN"]
    monkeypatch.setattr(forwarder, "PAGERDUTY_EVENTS_URL", receiver.url("/v2/enqueue"))
    monkeypatch.setenv(forwarder.SOURCE_ENV, forwarder.SPEND)
    monkeypatch.setenv(
        forwarder.ROUTES_ENV,
        json.dumps([{"name": TICKET_ROUTE, "alert_severity": "warning", "low": 0.0, "below": None, "kind": kind,
                     "secret_arn": arn, "slack_channel": "#finops" if kind == "slack" else None}]),
    )  # fmt: skip
    event = {"Records": [spend_record("m-1", "AWS Budgets: modelyard-pilot-monthly has exceeded", BUDGET_TEXT)]}
    assert forwarder.handler(event, None) == {"delivered": [TICKET_ROUTE], "unrouted": 0}
    ((path, body),) = receiver.received
    if kind == "slack":
        assert path == "/services/T0/B0/spend" and body["channel"] == "#finops"
        assert body["text"].startswith("*AWS Budgets: modelyard-pilot-monthly has exceeded*\n")
        assert "&lt;of&gt; $2,500.00 &amp; rising" in body["text"]
    elif kind == "webhook":
        (alert,) = body["alerts"]
        assert path == "/services/T0/B0/spend" and body["version"] == "4" and body["receiver"] == TICKET_ROUTE
        topic = "arn:aws:sns:us-east-1:123456789012:modelyard-pilot-spend-alerts"
        assert alert["labels"] == {"alertname": "SpendAlert", "severity": "warning", "topic": topic}
        assert alert["annotations"]["description"] == BUDGET_TEXT and alert["fingerprint"] == "m-1"
    else:
        assert path == "/v2/enqueue" and body["routing_key"] == "pd-routing-key-spend"
        assert body["dedup_key"] == "spend/m-1" and body["payload"]["severity"] == "warning"
        assert body["payload"]["custom_details"] == {"message": BUDGET_TEXT}


def test_a_spend_alert_without_a_subject_is_summed_up_by_its_first_line() -> None:
    """Cost Anomaly Detection's messages may come without a subject: the first line of the text stands for it."""
    alert = forwarder.spend_alert_from(spend_record("m-2", "", '\n{"anomalyId": "a-1"}\nmore')["Sns"])
    assert alert.summary == '{"anomalyId": "a-1"}'
    assert forwarder.spend_alert_from(spend_record("m-3", "", "")["Sns"]).summary == "AWS spend alert"
