"""Detection and audit (docs/security.md): the GuardDuty detector's features, its findings routed to the alert
receivers (EventBridge rule, encrypted SNS topic, the forwarder), and the CloudTrail trail's key and bucket.

Through the offline engine (plan JSON), EventBridge's pattern matching in moto, and the forwarder itself against
moto's Secrets Manager and receivers on loopback."""

from __future__ import annotations

import ast
import copy
import hashlib
import json
import re
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest

from components.aws import findings_forwarder as forwarder
from components.aws.findings import FORWARDER_SOURCE, event_pattern, severity_bands
from components.contract import PAGE_ROUTE, SECRET, TICKET_ROUTE
from components.errors import InputError
from components.plan.run import plan_stack
from components.policy.rules import RULES
from components.settings.stackfile import SECRET_PLACEHOLDER
from components.settings.types import AlertReceiverKind, FindingSeverity
from components.tagging import is_taggable
from tests.conftest import ROOT, SHIPPED_STACKS, by_type, plan_with
from tests.test_deploy import _problems, _project
from tests.test_layers import stdlib_only

DETECTOR = "aws:guardduty/detector:Detector"
FEATURE = "aws:guardduty/detectorFeature:DetectorFeature"
FINDINGS = "modelyard:aws:FindingsRoute"
SECURE = {"secure": "v1:AAAAAAAAAAAAAAAA:ciphertext"}
RECEIVERS = {
    "receivers": {
        PAGE_ROUTE: {"kind": "pagerduty", "secret": SECURE},
        TICKET_ROUTE: {"kind": "slack", "secret": SECURE, "slack_channel": "#security"},
    }
}


def one(plan: Mapping[str, Any], type_token: str, name_part: str = "") -> dict[str, Any]:
    (found,) = [r for r in by_type(plan, type_token) if name_part in r["name"]]
    return found


def statements(policy: str) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in json.loads(policy)["Statement"]}


def features(plan: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["inputs"]["name"]: r["inputs"] for r in by_type(plan, FEATURE)}


@pytest.fixture(scope="module")
def routed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A pilot that routes the findings of the account's own detector to a PagerDuty page and a Slack ticket."""
    return plan_with(
        tmp_path_factory.mktemp("routed"),
        "minimal",
        {"security": {"findings": "on", "findings_min_severity": "low"}, "monitoring": RECEIVERS},
    )


# --- GuardDuty: the detector and its features --------------------------------------------------------------------


def test_the_enterprise_detector_watches_the_audit_log_and_the_nodes(plans) -> None:
    core = plans["core"]
    assert one(core, DETECTOR)["inputs"]["enable"] is True
    found = features(core)
    assert found["EKS_AUDIT_LOGS"]["status"] == "ENABLED"
    runtime = found["RUNTIME_MONITORING"]
    assert runtime["status"] == "ENABLED"
    assert runtime["additionalConfigurations"] == [{"name": "EKS_ADDON_MANAGEMENT", "status": "ENABLED"}]


def test_no_detector_where_the_preset_asks_for_no_feature(plans) -> None:
    for stack in ("pilot", "product"):
        assert not by_type(plans[stack], DETECTOR), stack
        assert not [r for r in plans[stack]["resources"] if r["type"] == FINDINGS], stack


def test_audit_logs_alone_create_a_detector_with_runtime_monitoring_switched_off(tmp_path: Path) -> None:
    plan = plan_with(tmp_path, "moderate", {"security": {"guardduty_eks_audit_logs": "on"}})
    found = features(plan)
    assert found["EKS_AUDIT_LOGS"]["status"] == "ENABLED"
    assert found["RUNTIME_MONITORING"]["status"] == "DISABLED"
    assert found["RUNTIME_MONITORING"]["additionalConfigurations"][0]["status"] == "DISABLED"
    # findings: auto routes the findings of the detector the stack creates (no receivers: the topic only).
    assert one(plan, "aws:sns/topic:Topic", "findings")
    assert not by_type(plan, "aws:lambda/function:Function")


def test_guardduty_lines_of_the_cost(plans, tmp_path: Path) -> None:
    lines = {ln["resource"]: ln for ln in plans["core"]["cost"]["lines"] if ln["resource"]}
    detector = lines[one(plans["core"], DETECTOR)["key"]]
    assert detector["status"] == "priced" and "vCPUs" in detector["basis"]
    audit = lines[one(plans["core"], FEATURE, "audit")["key"]]
    assert audit["status"] == "unpriced" and "docs/sources.md#prices-not-confirmed" in audit["basis"]
    free = {(f["type"], f["reason"]) for f in plans["core"]["cost"]["free"]}
    assert (FEATURE, "billed per monitored vCPU on the detector line") in free
    # Without Runtime Monitoring the detector is not priced per vCPU: its foundational detection has no rate.
    plan = plan_with(tmp_path, "moderate", {"security": {"guardduty_eks_audit_logs": "on"}})
    lines = {ln["resource"]: ln for ln in plan["cost"]["lines"] if ln["resource"]}
    detector = lines[one(plan, DETECTOR)["key"]]
    assert detector["status"] == "unpriced" and detector["monthly"] == "0.00"
    assert (FEATURE, "a GuardDuty feature switched off is not billed") in {
        (f["type"], f["reason"]) for f in plan["cost"]["free"]
    }


# --- findings: rule, topic, key ------------------------------------------------------------------------------------


def test_findings_of_medium_and_above_go_to_a_topic_only_the_rule_may_publish_to(plans) -> None:
    core = plans["core"]
    rule = one(core, "aws:cloudwatch/eventRule:EventRule", "findings")
    assert json.loads(rule["inputs"]["eventPattern"]) == {
        "source": ["aws.guardduty"],
        "detail-type": ["GuardDuty Finding"],
        "detail": {"severity": [{"numeric": [">=", 4.0]}]},
    }
    topic = one(core, "aws:sns/topic:Topic", "findings")
    key = one(core, "aws:kms/key:Key", "findings")
    target = one(core, "aws:cloudwatch/eventTarget:EventTarget", "findings")
    assert target["inputs"]["rule"] == rule["inputs"]["name"]
    topic_arn = f"arn:aws:sns:us-east-1:123456789012:{topic['inputs']['name']}"
    assert target["inputs"]["arn"] == topic_arn
    # The topic is encrypted with its own key, which rotates and is kept.
    assert topic["inputs"]["kmsMasterKeyId"].startswith("arn:aws:kms:us-east-1:123456789012:key/")
    assert key["inputs"]["enableKeyRotation"] is True and key["protect"] and key["retain_on_delete"]
    policy = statements(one(core, "aws:sns/topicPolicy:TopicPolicy", "findings")["inputs"]["policy"])
    assert set(policy) == {"FindingsRulePublishes", "DenyInsecureTransport"}
    publish = policy["FindingsRulePublishes"]
    assert publish["Principal"] == {"Service": "events.amazonaws.com"} and publish["Action"] == "sns:Publish"
    assert publish["Condition"] == {
        "ArnEquals": {"aws:SourceArn": f"arn:aws:events:us-east-1:123456789012:rule/{rule['inputs']['name']}"}
    }
    assert policy["DenyInsecureTransport"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    # EventBridge may use the key for this topic's messages only: SNS names the topic in the encryption context.
    grants = statements(key["inputs"]["policy"])
    events = grants["EventBridgePublishesToTheFindingsTopic"]
    assert events["Principal"] == {"Service": "events.amazonaws.com"}
    assert events["Condition"] == {"StringEquals": {"kms:EncryptionContext:aws:sns:topicArn": topic_arn}}
    assert set(grants) == {"AccountAdministersThroughIam", "EventBridgePublishesToTheFindingsTopic"}
    assert plans["core"]["outputs"]["findings_topic_arn"] == topic_arn


def test_findings_stay_in_guardduty_where_routing_is_off(tmp_path: Path) -> None:
    plan = plan_with(
        tmp_path,
        "minimal",
        {"security": {"guardduty_eks_audit_logs": "on", "findings": "off"}, "monitoring": RECEIVERS},
    )
    assert by_type(plan, DETECTOR)
    assert not [r for r in plan["resources"] if r["type"] == FINDINGS]
    assert not [t for t in by_type(plan, "aws:sns/topic:Topic") if "findings" in t["name"]]
    # Only the spend alerts' forwarder (docs/cost.md#spend-alarms) takes the receivers.
    assert [f["name"] for f in by_type(plan, "aws:lambda/function:Function")] == ["spend-forwarder"]
    assert "findings_topic_arn" not in plan["outputs"]


def finding_event(severity: float, *, title: str = "A new binary was executed in a container") -> dict[str, Any]:
    """An EventBridge event of a GuardDuty finding (GuardDuty's finding format, trimmed to what the kit reads)."""
    return {
        "version": "0",
        "id": "c8c4daa7-a20c-2f03-0070-b7393dd542ad",
        "detail-type": "GuardDuty Finding",
        "source": "aws.guardduty",
        "account": "123456789012",
        "time": "2026-11-30T10:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "schemaVersion": "2.0",
            "accountId": "123456789012",
            "region": "us-east-1",
            "partition": "aws",
            "id": f"finding{int(severity * 10):03d}",
            "type": "Execution:Runtime/NewBinaryExecuted",
            "resource": {"resourceType": "EKSCluster", "eksClusterDetails": {"name": "modelyard-core"}},
            "service": {"serviceName": "guardduty", "count": 1, "additionalInfo": {"sample": True}},
            "severity": severity,
            "createdAt": "2026-11-30T09:58:00.000Z",
            "updatedAt": "2026-11-30T09:58:00.000Z",
            "title": title,
            "description": "A process that was not in the image ran in pod tenant-core/llama-8b-0.",
        },
    }


@pytest.mark.parametrize(
    ("threshold", "matched", "not_matched"),
    [
        (FindingSeverity.MEDIUM, [4.0, 5.5, 8.0, 9.5], [1.0, 3.9]),
        (FindingSeverity.HIGH, [7.0, 8.9, 10.0], [4.0, 6.9]),
        (FindingSeverity.LOW, [1.0, 4.0], [0.5]),
    ],
)
def test_the_rule_matches_findings_by_severity(moto_endpoint: str, threshold, matched, not_matched) -> None:
    """EventBridge (moto's server) matches the rule's pattern: findings of every severity are put on the bus, and a
    queue in the topic's place shows which ones the rule sent."""
    events = boto3.client("events", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    name = f"findings-{threshold.value}"
    queue = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=name, EventPattern=event_pattern(threshold))
    events.put_targets(Rule=name, Targets=[{"Id": "queue", "Arn": queue_arn}])
    try:
        others = [{**finding_event(9.0), "source": "aws.securityhub"}]
        for event in [finding_event(severity) for severity in matched + not_matched] + others:
            entry = {"Source": event["source"], "Resources": event["resources"], "DetailType": event["detail-type"],
                     "Detail": json.dumps(event["detail"])}  # fmt: skip
            assert events.put_events(Entries=[entry])["FailedEntryCount"] == 0
        received = []
        while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages"):
            received += [json.loads(m["Body"])["detail"]["severity"] for m in batch]
            sqs.delete_message_batch(
                QueueUrl=queue, Entries=[{"Id": m["MessageId"], "ReceiptHandle": m["ReceiptHandle"]} for m in batch]
            )
        assert sorted(received) == sorted(matched), threshold
    finally:
        events.remove_targets(Rule=name, Ids=["queue"])
        events.delete_rule(Name=name)
        sqs.delete_queue(QueueUrl=queue)


# --- the forwarder: where it is, what it may do, how it is told where to send -------------------------------------


def test_severity_bands_page_from_high_and_ticket_below() -> None:
    both = [PAGE_ROUTE, TICKET_ROUTE]
    assert severity_bands(FindingSeverity.MEDIUM, both) == {PAGE_ROUTE: (7.0, None), TICKET_ROUTE: (4.0, 7.0)}
    assert severity_bands(FindingSeverity.LOW, [TICKET_ROUTE]) == {TICKET_ROUTE: (1.0, 7.0)}
    # A threshold of high or critical leaves the ticket nothing to carry.
    assert severity_bands(FindingSeverity.HIGH, both) == {PAGE_ROUTE: (7.0, None)}
    assert severity_bands(FindingSeverity.CRITICAL, both) == {PAGE_ROUTE: (9.0, None)}


def test_the_forwarder_runs_outside_the_vpc_with_the_receivers_secrets_by_arn(routed) -> None:
    function = one(routed, "aws:lambda/function:Function", "findings")
    inputs = function["inputs"]
    # No VPC: AWS gives it a way out that needs neither the stack's NAT nor the cluster.
    assert "vpcConfig" not in inputs
    assert inputs["handler"] == "findings_forwarder.handler" and inputs["runtime"].startswith("python3.")
    source = FORWARDER_SOURCE.read_text()
    digest = hashlib.sha256(source.encode()).hexdigest()
    assert inputs["code"] == {"archive": {"findings_forwarder.py": {"asset": f"(inline text, sha256 {digest})"}}}
    secrets = {r["name"]: r for r in by_type(routed, "aws:secretsmanager/secret:Secret") if "findings" in r["name"]}
    arns = {
        name.rsplit("-", 1)[-1]: f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{s['inputs']['namePrefix']}"
        for name, s in secrets.items()
    }
    routes = json.loads(inputs["environment"]["variables"][forwarder.ROUTES_ENV])
    assert [(r["name"], r["kind"], r["low"], r["below"], r["alert_severity"]) for r in routes] == [
        (PAGE_ROUTE, "pagerduty", 7.0, None, "critical"),
        (TICKET_ROUTE, "slack", 1.0, 7.0, "warning"),
    ]
    for route in routes:
        assert route["secret_arn"].startswith(arns[route["name"]])
    assert routes[1]["slack_channel"] == "#security"
    # Every secret value is a secret of the plan, in a Secrets Manager secret of its own, under the findings key.
    key_arn = one(routed, "aws:sns/topic:Topic", "findings")["inputs"]["kmsMasterKeyId"]
    assert {s["inputs"]["kmsKeyId"] for s in secrets.values()} == {key_arn}
    versions = [v for v in by_type(routed, "aws:secretsmanager/secretVersion:SecretVersion") if "findings" in v["name"]]
    assert [v["inputs"]["secretString"] for v in versions] == [SECRET, SECRET]
    assert SECRET_PLACEHOLDER not in json.dumps(routed)
    # Its role: its own log group, those secrets, and the key only through Secrets Manager.
    role = statements(one(routed, "aws:iam/rolePolicy:RolePolicy", "findings")["inputs"]["policy"])
    assert set(role) == {"WriteOwnLogs", "ReadReceiverSecrets", "DecryptReceiverSecrets"}
    assert role["ReadReceiverSecrets"]["Action"] == "secretsmanager:GetSecretValue"
    assert sorted(role["ReadReceiverSecrets"]["Resource"]) == sorted(r["secret_arn"] for r in routes)
    assert role["DecryptReceiverSecrets"]["Resource"] == key_arn
    assert role["DecryptReceiverSecrets"]["Condition"] == {
        "StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}
    }
    log_group = one(routed, "aws:cloudwatch/logGroup:LogGroup", "findings")["inputs"]["name"]
    assert inputs["loggingConfig"]["logGroup"] == log_group == f"/aws/lambda/{inputs['name']}"
    # SNS may invoke it, from the findings topic only, and it is subscribed to that topic.
    topic_arn = f"arn:aws:sns:us-east-1:123456789012:{one(routed, 'aws:sns/topic:Topic', 'findings')['inputs']['name']}"
    permission = one(routed, "aws:lambda/permission:Permission", "findings")["inputs"]
    assert (permission["principal"], permission["sourceArn"]) == ("sns.amazonaws.com", topic_arn)
    subscription = one(routed, "aws:sns/topicSubscription:TopicSubscription", "findings")["inputs"]
    assert (subscription["protocol"], subscription["topic"]) == ("lambda", topic_arn)
    assert [v for rule in RULES for v in rule.check(routed)] == []


def test_the_forwarder_is_taggable_and_tagged(routed) -> None:
    assert is_taggable("aws:lambda/function:Function") and is_taggable("aws:sns/topic:Topic")
    for r in routed["resources"]:
        if r["type"].startswith("aws:") and is_taggable(r["type"]) and "findings" in r["key"]:
            assert r["inputs"]["tags"]["modelyard:component"] == "security", r["key"]


def test_the_forwarder_imports_only_the_standard_library() -> None:
    assert stdlib_only(FORWARDER_SOURCE, allowed=set()) == []


def test_the_forwarder_knows_every_receiver_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    finding = forwarder.finding_from(finding_event(8.0))
    sent: list[tuple[str, dict[str, Any]]] = []

    def post(url: str, body: dict[str, Any]) -> int:
        sent.append((url, body))
        return 202

    monkeypatch.setattr(forwarder, "post_json", post)
    for kind in AlertReceiverKind:
        route = forwarder.Route(name=PAGE_ROUTE, alert_severity="critical", low=7.0, below=None, kind=kind.value,
                                secret_arn="arn")  # fmt: skip
        assert forwarder.deliver(finding, [route], secret_of=lambda arn: "https://hooks.example.test/x") == PAGE_ROUTE
    assert len(sent) == len(AlertReceiverKind)
    unknown = forwarder.Route(name=PAGE_ROUTE, alert_severity="critical", low=7.0, below=None, kind="email",
                              secret_arn="arn")  # fmt: skip
    with pytest.raises(ValueError, match="unknown receiver kind"):
        forwarder.deliver(finding, [unknown], secret_of=lambda arn: "x")


# --- the forwarder against Secrets Manager (moto) and receivers on loopback ----------------------------------------


class Receiver:
    """An HTTP receiver on loopback: records each POST's path and JSON body, answers `status`."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[tuple[str, dict[str, Any]]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((self.path, json.loads(body)))
                self.send_response(receiver.status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    served = Receiver()
    yield served
    served.server.shutdown()
    served.server.server_close()


@pytest.fixture
def secrets(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setattr(forwarder, "_secrets", {})
    return boto3.client("secretsmanager", region_name="us-east-1")


def sns_event(*findings: dict[str, Any]) -> dict[str, Any]:
    """What SNS hands Lambda: one record per message, the EventBridge event as the message's text."""
    return {
        "Records": [
            {"EventSource": "aws:sns", "Sns": {"Type": "Notification", "Message": json.dumps(f)}} for f in findings
        ]
    }


def routes_env(monkeypatch: pytest.MonkeyPatch, *routes: dict[str, Any]) -> None:
    monkeypatch.setenv(forwarder.ROUTES_ENV, json.dumps(list(routes)))


def test_a_high_finding_pages_pagerduty_and_a_medium_one_goes_to_slack(
    secrets, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = secrets.create_secret(Name="findings-page", SecretString="pd-routing-key-0123")["ARN"]
    slack = secrets.create_secret(Name="findings-ticket", SecretString=receiver.url("/services/T0/B0/slack"))["ARN"]
    monkeypatch.setattr(forwarder, "PAGERDUTY_EVENTS_URL", receiver.url("/v2/enqueue"))
    routes_env(
        monkeypatch,
        {"name": PAGE_ROUTE, "alert_severity": "critical", "low": 7.0, "below": None, "kind": "pagerduty",
         "secret_arn": key},
        {"name": TICKET_ROUTE, "alert_severity": "warning", "low": 4.0, "below": 7.0, "kind": "slack",
         "secret_arn": slack, "slack_channel": "#security"},
    )  # fmt: skip
    result = forwarder.handler(sns_event(finding_event(8.0), finding_event(5.0, title="Pod <b> & co")), None)
    assert result == {"delivered": [PAGE_ROUTE, TICKET_ROUTE], "unrouted": 0}
    (pd_path, page), (slack_path, ticket) = receiver.received
    assert pd_path == "/v2/enqueue"
    assert page["routing_key"] == "pd-routing-key-0123" and page["event_action"] == "trigger"
    assert page["dedup_key"] == "guardduty/finding080"
    assert page["payload"]["severity"] == "error" and page["payload"]["class"] == "Execution:Runtime/NewBinaryExecuted"
    assert page["payload"]["component"] == "EKSCluster modelyard-core"
    assert page["payload"]["timestamp"] == "2026-11-30T09:58:00.000Z"
    assert page["links"][0]["href"].endswith("#/findings?macros=current&fId=finding080")
    assert slack_path == "/services/T0/B0/slack"
    assert ticket["channel"] == "#security"
    assert "Pod &lt;b&gt; &amp; co" in ticket["text"] and "<b>" not in ticket["text"]


def test_a_webhook_receiver_gets_alertmanagers_payload(secrets, receiver: Receiver, monkeypatch) -> None:
    hook = secrets.create_secret(Name="findings-hook", SecretString=receiver.url("/alerts"))["ARN"]
    routes_env(
        monkeypatch,
        {"name": PAGE_ROUTE, "alert_severity": "critical", "low": 7.0, "below": None, "kind": "webhook",
         "secret_arn": hook},
    )  # fmt: skip
    forwarder.handler(sns_event(finding_event(9.5)), None)
    ((path, body),) = receiver.received
    assert path == "/alerts" and body["version"] == "4" and body["status"] == "firing"
    (alert,) = body["alerts"]
    assert alert["labels"]["alertname"] == "GuardDutyFinding" and alert["labels"]["severity"] == "critical"
    assert alert["fingerprint"] == "finding095" and alert["startsAt"] == "2026-11-30T09:58:00.000Z"


def test_a_finding_outside_every_band_is_not_sent(secrets, receiver: Receiver, monkeypatch) -> None:
    hook = secrets.create_secret(Name="findings-page-only", SecretString=receiver.url("/alerts"))["ARN"]
    routes_env(
        monkeypatch,
        {"name": PAGE_ROUTE, "alert_severity": "critical", "low": 7.0, "below": None, "kind": "webhook",
         "secret_arn": hook},
    )  # fmt: skip
    # A medium finding's route (ticket) has no receiver here: like Alertmanager's, it delivers nowhere.
    assert forwarder.handler(sns_event(finding_event(5.0)), None) == {"delivered": [], "unrouted": 1}
    assert receiver.received == []


def test_a_refused_delivery_raises_without_naming_the_url(secrets, monkeypatch) -> None:
    refusing = Receiver(status=500)
    try:
        url = refusing.url("/services/T0/B0/secret-token")
        hook = secrets.create_secret(Name="findings-refused", SecretString=url)["ARN"]
        routes_env(
            monkeypatch,
            {"name": PAGE_ROUTE, "alert_severity": "critical", "low": 7.0, "below": None, "kind": "slack",
             "secret_arn": hook},
        )  # fmt: skip
        with pytest.raises(forwarder.DeliveryError) as caught:
            forwarder.handler(sns_event(finding_event(8.0)), None)
        assert "500" in str(caught.value) and "secret-token" not in str(caught.value)
    finally:
        refusing.server.shutdown()
        refusing.server.server_close()


def test_an_event_that_is_not_a_finding_is_refused() -> None:
    with pytest.raises(ValueError, match="not a GuardDuty finding"):
        forwarder.finding_from({**finding_event(5.0), "detail-type": "GuardDuty Malware Protection Object Scan Result"})


# --- split deployments: the receivers the AWS layer can read --------------------------------------------------------


def test_a_receiver_only_the_kubernetes_layer_has_is_refused_where_findings_are_routed(tmp_path: Path) -> None:
    stacks = {
        "x": {"modelyard:preset": "enterprise"},
        "x-k8s": {
            "modelyard:layer_of": "x",
            "modelyard:monitoring": {"receivers": {PAGE_ROUTE: RECEIVERS["receivers"][PAGE_ROUTE]}},
        },
    }
    message = _problems(tmp_path / "refused", copy.deepcopy(stacks), "x")
    assert "modelyard:monitoring.receivers.page" in message and "Pulumi.x.yaml" in message
    # Set in the AWS layer's file (and again in the Kubernetes layer's, as every secret), both layers see it.
    stacks["x"]["modelyard:monitoring"] = copy.deepcopy(stacks["x-k8s"]["modelyard:monitoring"])
    plan = plan_stack(_project(tmp_path / "both", stacks), "x")
    assert one(plan, "aws:lambda/function:Function", "findings")
    # Or the findings stay in GuardDuty.
    stacks = copy.deepcopy(stacks)
    del stacks["x"]["modelyard:monitoring"]
    stacks["x"]["modelyard:security"] = {"findings": "off"}
    assert plan_stack(_project(tmp_path / "off", stacks), "x")["stacks"] == ["x", "x-k8s"]


def test_a_bad_severity_names_its_key(make_settings) -> None:
    with pytest.raises(InputError) as caught:
        make_settings("minimal", security={"findings_min_severity": "severe"})
    assert "modelyard:security.findings_min_severity" in caught.value.render()


# --- the audit trail --------------------------------------------------------------------------------------------------


def cloudtrail_statements_unscoped(policy: str, trail_arn: str) -> list[str]:
    """Statements that let CloudTrail use the key without naming the trail (AWS: "Configure AWS KMS key policies
    for CloudTrail" asks aws:SourceArn on each)."""
    return [
        s["Sid"]
        for s in json.loads(policy)["Statement"]
        if s["Principal"] == {"Service": "cloudtrail.amazonaws.com"}
        and (s.get("Condition") or {}).get("StringEquals", {}).get("aws:SourceArn") != trail_arn
    ]


def test_the_trail_is_encrypted_with_its_own_key_usable_for_this_trail_only(plans) -> None:
    core = plans["core"]
    trail = one(core, "aws:cloudtrail/trail:Trail")["inputs"]
    key = one(core, "aws:kms/key:Key", "trail")
    trail_arn = f"arn:aws:cloudtrail:us-east-1:123456789012:trail/{trail['name']}"
    assert trail["kmsKeyId"].startswith("arn:aws:kms:us-east-1:123456789012:key/")
    assert trail["enableLogFileValidation"] is True
    assert key["inputs"]["enableKeyRotation"] is True and key["protect"] and key["retain_on_delete"]
    policy = key["inputs"]["policy"]
    assert cloudtrail_statements_unscoped(policy, trail_arn) == []
    encrypt = statements(policy)["CloudTrailEncryptsThisTrail"]
    assert encrypt["Action"] == "kms:GenerateDataKey*"
    assert encrypt["Condition"]["StringLike"] == {"kms:EncryptionContext:aws:cloudtrail:arn": trail_arn}
    # The check fails on the key policy as it was before (DescribeKey for any trail).
    loose = json.loads(policy)
    for statement in loose["Statement"]:
        if statement["Sid"] == "CloudTrailDescribesKey":
            del statement["Condition"]
    assert cloudtrail_statements_unscoped(json.dumps(loose), trail_arn) == ["CloudTrailDescribesKey"]


def test_the_trails_bucket_is_private_versioned_and_tls_only(plans) -> None:
    core = plans["core"]
    bucket = one(core, "aws:s3/bucket:Bucket", "trail")
    assert bucket["protect"] and bucket["retain_on_delete"]
    versioning = one(core, "aws:s3/bucketVersioning:BucketVersioning", "trail")["inputs"]
    assert versioning["versioningConfiguration"]["status"] == "Enabled"
    block = one(core, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "trail")["inputs"]
    assert all(
        block[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    )
    policy = statements(one(core, "aws:s3/bucketPolicy:BucketPolicy", "trail")["inputs"]["policy"])
    assert policy["DenyInsecureTransport"]["Effect"] == "Deny"
    assert policy["DenyInsecureTransport"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    trail_arn = (
        f"arn:aws:cloudtrail:us-east-1:123456789012:trail/{one(core, 'aws:cloudtrail/trail:Trail')['inputs']['name']}"
    )
    for sid in ("CloudTrailAclCheck", "CloudTrailWrite"):
        assert policy[sid]["Condition"]["StringEquals"]["aws:SourceArn"] == trail_arn


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_every_request_to_the_model_bucket_is_logged(plans, stack: str) -> None:
    logging = one(plans[stack], "aws:s3/bucketLogging:BucketLogging", "models")["inputs"]
    assert logging["targetBucket"] == f"{logging['bucket']}-logs" and logging["targetPrefix"] == "access/"


# --- docs/security.md's table of controls --------------------------------------------------------------------------

# `<file of the repository>::<test function>`, as the table names a test.
TEST_REFERENCE = re.compile(r"`([\w/]+\.py)::(test_\w+)`")


def controls_table() -> list[str]:
    text = (ROOT / "docs" / "security.md").read_text()
    section = text.split("## Every control, the attack it stops, the test that proves it", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| control ")]


def functions_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}


def test_every_control_names_tests_that_exist() -> None:
    rows = [row for row in controls_table() if not row.startswith("| **")]
    assert len(rows) > 40
    missing = []
    for row in rows:
        references = TEST_REFERENCE.findall(row)
        assert references, f"a control without a test: {row[:100]}"
        missing += [f"{file}::{name}" for file, name in references if name not in functions_of(ROOT / file)]
    assert missing == [], "docs/security.md names tests that do not exist"


def test_the_table_check_catches_a_test_that_does_not_exist(tmp_path: Path) -> None:
    fake = tmp_path / "test_x.py"
    fake.write_text("def test_real():\n    pass\n\n\ndef helper():\n    pass\n")
    assert functions_of(fake) == {"test_real"}
    assert TEST_REFERENCE.findall("| c | a | `spec/test_x.py::test_gone` |") == [("spec/test_x.py", "test_gone")]
