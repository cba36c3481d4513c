"""GuardDuty findings to the stack's alert receivers: the AWS Lambda function subscribed to the findings topic.

It runs in Lambda's Python runtime, outside the VPC: AWS gives it a way to Slack, PagerDuty or a webhook that does
not depend on the stack's NAT (presets without NAT have none) nor on the cluster (a compromised cluster is what
GuardDuty reports; Alertmanager runs inside it). So it imports only the standard library and boto3, which the
runtime provides (boto3 where it is used), and ships as this one file (components/aws/findings.py zips its source).

One SNS record holds one EventBridge event of type "GuardDuty Finding". The finding goes to the route whose
severity band holds it (FINDINGS_ROUTES, set by FindingsRoute: page from high, ticket below), in the receiver's
own format: a PagerDuty Events API v2 event deduplicated by the finding's id, a Slack message, or Alertmanager's
webhook payload (what a webhook receiver of the stack already parses). Secrets (a URL or a routing key) are read
from Secrets Manager by ARN, never logged. A failed delivery raises, so Lambda retries it.
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
    sent: list[str | None] = []
    for record in event.get("Records", []):
        finding = finding_from(json.loads(record["Sns"]["Message"]))
        sent.append(deliver(finding, routes, secret_of=_secret))
    return {"delivered": [name for name in sent if name], "unrouted": sent.count(None)}
