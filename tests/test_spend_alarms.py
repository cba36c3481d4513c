"""Spend alarms from the plan: the monthly AWS Budget over the stack's tag, Cost Anomaly Detection, their encrypted
topic; priced (the budget) or listed free with the reason (anomaly detection); the plan's warning when the budget
is unset or below the AWS estimate plus the stack's margin; the settings' refusals."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from components.aws.spend_alarms import PUBLISHERS, monitor_specification, topic_policy
from components.cost.estimate import budget_check
from components.errors import InputError
from tests.conftest import by_type, plan_with


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
