"""GuardDuty findings and spend alerts to the stack's alert receivers: the AWS Lambda function subscribed to the
findings topic (FindingsRoute), and the same code subscribed to the spend topic (SpendAlarms, `SOURCE_ENV` spend).

It runs in Lambda's Python runtime, outside the VPC: AWS gives it a way to Slack, PagerDuty or a webhook that does
not depend on the stack's NAT (presets without NAT have none) nor on the cluster (a compromised cluster is what
GuardDuty reports; Alertmanager runs inside it). So it imports only the standard library and boto3, which the
runtime provides (boto3 where it is used), and ships as this one file (components/aws/findings.py zips its source).

One SNS record holds one EventBridge event of type "GuardDuty Finding". The finding goes to the route whose
severity band holds it (FINDINGS_ROUTES, set by FindingsRoute: page from high, ticket below), in the receiver's
own format: a PagerDuty Events API v2 event deduplicated by the finding's id, a Slack message, or Alertmanager's
webhook payload (what a webhook receiver of the stack already parses). Secrets (a URL or a routing key) are read
from Secrets Manager by ARN, never logged. A failed delivery raises, so Lambda retries it.

A spend alert (AWS Budgets or Cost Anomaly Detection publishing to the spend topic) goes to the one route the spend
forwarder is given (ticket, or page where the stack has no ticket receiver), in the same receiver formats. Its text is
what AWS published (the SNS subject and message), forwarded as it is: the kit parses none of it, since AWS documents
no schema for these messages.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ROUTES_ENV = "FINDINGS_ROUTES"
# What the function forwards: GuardDuty findings (absent: the findings forwarder) or spend alerts.
SOURCE_ENV = "ALERT_SOURCE"
SPEND = "spend"
BUDGETS_CONSOLE_URL = "https://console.aws.amazon.com/billing/home#/budgets"
# Slack shows up to 40,000 characters of a message's text; a spend alert's is far shorter, this only bounds it.
TEXT_LIMIT = 3000
PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
TIMEOUT_SECONDS = 10
# PagerDuty Events API v2 severities, from GuardDuty's bands (critical 9+, high 7+, medium 4+, low).
PAGERDUTY_BANDS = ((9.0, "critical"), (7.0, "error"), (4.0, "warning"), (0.0, "info"))

log = logging.getLogger()
log.setLevel(logging.INFO)


@dataclass(frozen=True, kw_only=True)
class Route:
    """Findings with `low <= severity < below` go to this receiver (`below` None: no upper bound)."""

    name: str
    alert_severity: str
    """The `severity` label Alertmanager gives the alerts of this route (critical for page, warning for ticket)."""
    low: float
    below: float | None
    kind: str  # pagerduty, slack or webhook (settings' AlertReceiverKind)
    secret_arn: str
    slack_channel: str | None = None

    def holds(self, severity: float) -> bool:
        return severity >= self.low and (self.below is None or severity < self.below)


@dataclass(frozen=True, kw_only=True)
class Finding:
    """What a receiver is told about one finding."""

    id: str
    type: str
    title: str
    description: str
    severity: float
    account: str
    region: str
    resource: str
    created_at: str
    sample: bool

    @property
    def console_url(self) -> str:
        return (
            f"https://{self.region}.console.aws.amazon.com/guardduty/home?region={self.region}"
            f"#/findings?macros=current&fId={self.id}"
        )

    @property
    def summary(self) -> str:
        return f"GuardDuty {self.severity:g}: {self.title} ({self.type}) on {self.resource}"


def routes_from(text: str) -> list[Route]:
    return [Route(**entry) for entry in json.loads(text)]


def finding_from(event: Mapping[str, Any]) -> Finding:
    """The finding of one EventBridge event (`detail` is GuardDuty's finding format)."""
    if event.get("source") != "aws.guardduty" or event.get("detail-type") != "GuardDuty Finding":
        raise ValueError(f"not a GuardDuty finding event: {event.get('source')!r} {event.get('detail-type')!r}")
    detail = event["detail"]
    resource = detail.get("resource") or {}
    cluster = (resource.get("eksClusterDetails") or {}).get("name")
    instance = (resource.get("instanceDetails") or {}).get("instanceId")
    return Finding(
        id=str(detail["id"]),
        type=str(detail["type"]),
        title=str(detail.get("title") or detail["type"]),
        description=str(detail.get("description") or ""),
        severity=float(detail["severity"]),
        account=str(detail.get("accountId") or event.get("account") or ""),
        region=str(detail.get("region") or event.get("region") or ""),
        resource=" ".join(
            part for part in (str(resource.get("resourceType") or "resource"), cluster or instance or "") if part
        ),
        created_at=str(detail.get("createdAt") or event.get("time") or ""),
        sample=bool(((detail.get("service") or {}).get("additionalInfo") or {}).get("sample")),
    )


def route_for(finding: Finding, routes: Sequence[Route]) -> Route | None:
    return next((route for route in routes if route.holds(finding.severity)), None)


def pagerduty_event(finding: Finding, routing_key: str) -> dict[str, Any]:
    severity = next(name for floor, name in PAGERDUTY_BANDS if finding.severity >= floor)
    payload: dict[str, Any] = {
        "summary": finding.summary[:1024],
        "source": f"{finding.account}/{finding.region}",
        "severity": severity,
        "component": finding.resource,
        "group": "guardduty",
        "class": finding.type,
        "custom_details": {"description": finding.description, "sample": finding.sample},
    }
    if finding.created_at:
        payload["timestamp"] = finding.created_at
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        # Repeated publications of one finding (GuardDuty updates its count) stay one incident.
        "dedup_key": f"guardduty/{finding.id}",
        "payload": payload,
        "links": [{"href": finding.console_url, "text": "GuardDuty finding"}],
    }


def _slack_escape(text: str) -> str:
    """Slack reads &, < and > as markup: escape them (Slack, "Formatting text for app surfaces")."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(finding: Finding, channel: str | None) -> dict[str, Any]:
    text = "\n".join(
        (
            f"*{_slack_escape(finding.summary)}*",
            _slack_escape(finding.description),
            f"<{finding.console_url}|Open in GuardDuty>",
        )
    )
    message: dict[str, Any] = {"text": text}
    if channel:
        message["channel"] = channel
    return message


def alertmanager_webhook(finding: Finding, route: Route) -> dict[str, Any]:
    """Alertmanager's webhook payload (version 4), one firing alert per finding."""
    labels = {
        "alertname": "GuardDutyFinding",
        "severity": route.alert_severity,
        "finding_type": finding.type,
        "account": finding.account,
        "region": finding.region,
    }
    annotations = {"summary": finding.summary, "description": finding.description}
    return {
        "version": "4",
        "groupKey": f"guardduty/{finding.id}",
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": route.name,
        "groupLabels": {"alertname": "GuardDutyFinding"},
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": finding.console_url,
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": annotations,
                "startsAt": finding.created_at,
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": finding.console_url,
                "fingerprint": finding.id,
            }
        ],
    }


@dataclass(frozen=True, kw_only=True)
class SpendAlert:
    """One message of the spend topic, as SNS hands it to Lambda (its subject and text as AWS published them)."""

    message_id: str
    topic_arn: str
    subject: str
    text: str
    timestamp: str

    @property
    def summary(self) -> str:
        first = next((line.strip() for line in self.text.splitlines() if line.strip()), "")
        return self.subject or first or "AWS spend alert"


def spend_alert_from(sns: Mapping[str, Any]) -> SpendAlert:
    """The alert of one SNS record's `Sns` object (Lambda's SNS event: MessageId, TopicArn, Subject, Message,
    Timestamp)."""
    return SpendAlert(
        message_id=str(sns["MessageId"]),
        topic_arn=str(sns.get("TopicArn") or ""),
        subject=str(sns.get("Subject") or ""),
        text=str(sns.get("Message") or "")[:TEXT_LIMIT],
        timestamp=str(sns.get("Timestamp") or ""),
    )


def spend_pagerduty_event(alert: SpendAlert, route: Route, routing_key: str) -> dict[str, Any]:
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": f"spend/{alert.message_id}",  # SNS redelivers a message under its id: one incident
        "payload": {
            "summary": alert.summary[:1024],
            "source": alert.topic_arn or "aws-spend",
            "severity": "critical" if route.alert_severity == "critical" else "warning",
            "group": "spend",
            "class": "spend-alert",
            "custom_details": {"message": alert.text},
            **({"timestamp": alert.timestamp} if alert.timestamp else {}),
        },
        "links": [{"href": BUDGETS_CONSOLE_URL, "text": "AWS Budgets"}],
    }


def spend_slack_message(alert: SpendAlert, channel: str | None) -> dict[str, Any]:
    text = "\n".join((f"*{_slack_escape(alert.summary)}*", _slack_escape(alert.text)))
    return {"text": text, **({"channel": channel} if channel else {})}


def spend_alertmanager_webhook(alert: SpendAlert, route: Route) -> dict[str, Any]:
    """Alertmanager's webhook payload (version 4), one firing alert per message."""
    labels = {"alertname": "SpendAlert", "severity": route.alert_severity, "topic": alert.topic_arn}
    annotations = {"summary": alert.summary, "description": alert.text}
    return {
        "version": "4",
        "groupKey": f"spend/{alert.message_id}",
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": route.name,
        "groupLabels": {"alertname": "SpendAlert"},
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": BUDGETS_CONSOLE_URL,
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": annotations,
                "startsAt": alert.timestamp,
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": BUDGETS_CONSOLE_URL,
                "fingerprint": alert.message_id,
            }
        ],
    }


class DeliveryError(RuntimeError):
    """A receiver refused a finding or could not be reached (Lambda retries the message)."""


def post_json(url: str, body: Mapping[str, Any]) -> int:
    """POST `body` as JSON; the status, or an error for anything but 2xx (the URL is never in the error)."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"the receiver answered {exc.code}") from None
    except (urllib.error.URLError, TimeoutError) as exc:
        raise DeliveryError(f"the receiver could not be reached ({type(exc).__name__})") from None


def deliver(
    finding: Finding,
    routes: Sequence[Route],
    *,
    secret_of: Callable[[str], str],
) -> str | None:
    """Send one finding to its route's receiver; the route's name, or None where no route holds its severity."""
    route = route_for(finding, routes)
    if route is None:
        log.info("finding %s (%s, severity %g): no route", finding.id, finding.type, finding.severity)
        return None
    secret = secret_of(route.secret_arn)
    if route.kind == "pagerduty":
        status = post_json(PAGERDUTY_EVENTS_URL, pagerduty_event(finding, secret))
    elif route.kind == "slack":
        status = post_json(secret, slack_message(finding, route.slack_channel))
    elif route.kind == "webhook":
        status = post_json(secret, alertmanager_webhook(finding, route))
    else:
        raise ValueError(f"route {route.name}: unknown receiver kind {route.kind!r}")
    log.info("finding %s (%s, severity %g): %s via %s, %d", finding.id, finding.type, finding.severity,
             route.name, route.kind, status)  # fmt: skip
    return route.name


def deliver_spend(alert: SpendAlert, route: Route, *, secret_of: Callable[[str], str]) -> str:
    """Send one spend alert to the spend forwarder's route; the route's name."""
    secret = secret_of(route.secret_arn)
    if route.kind == "pagerduty":
        status = post_json(PAGERDUTY_EVENTS_URL, spend_pagerduty_event(alert, route, secret))
    elif route.kind == "slack":
        status = post_json(secret, spend_slack_message(alert, route.slack_channel))
    elif route.kind == "webhook":
        status = post_json(secret, spend_alertmanager_webhook(alert, route))
    else:
        raise ValueError(f"route {route.name}: unknown receiver kind {route.kind!r}")
    log.info("spend alert %s: %s via %s, %d", alert.message_id, route.name, route.kind, status)
    return route.name


_secrets: dict[str, str] = {}


def _secret(arn: str) -> str:
    """A receiver's URL or key, read once per execution environment."""
    if arn not in _secrets:
        # Imported here: the plan imports this module for its names, and boto3 is the runtime's, not the plan's.
        import boto3

        client = boto3.client("secretsmanager")
        _secrets[arn] = client.get_secret_value(SecretId=arn)["SecretString"]
    return _secrets[arn]


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """Lambda's entry point: an SNS event, one record per message."""
    routes = routes_from(os.environ[ROUTES_ENV])
    if os.environ.get(SOURCE_ENV) == SPEND:
        (route,) = routes  # the spend forwarder has one route
        spent = [deliver_spend(spend_alert_from(r["Sns"]), route, secret_of=_secret) for r in event.get("Records", [])]
        return {"delivered": spent, "unrouted": 0}
    sent: list[str | None] = []
    for record in event.get("Records", []):
        finding = finding_from(json.loads(record["Sns"]["Message"]))
        sent.append(deliver(finding, routes, secret_of=_secret))
    return {"delivered": [name for name in sent if name], "unrouted": sent.count(None)}
