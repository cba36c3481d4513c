"""`modelyard preflight` against moto's server on 127.0.0.1 (STS, EC2 regions, zones, offerings with GPU types,
addresses, network interfaces, endpoint services, S3, ACM, Route 53) and botocore's Stubber where moto has no API:
EC2's service quotas, EKS DescribeClusterVersions, RDS orderable options for postgres, ElastiCache reserved-node
offerings, Bedrock foundation models; DescribeCapacityReservations and a region missing endpoint services are
answered through botocore's before-call hook."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.awsrequest import AWSResponse
from botocore.stub import Stubber

from components.cli import main
from components.errors import EnvironmentBlocked
from components.tools import aws, preflight
from components.tools.preflight import (
    ELASTIC_IPS,
    NETWORK_INTERFACES,
    ON_DEMAND_G,
    ON_DEMAND_P,
    ON_DEMAND_STANDARD,
    Status,
    run_preflight,
    vcpu_needs,
)

ACCOUNT = "123456789012"  # moto's account
REGION = "us-east-1"


@pytest.fixture(scope="module")
def session(moto_endpoint: str) -> boto3.Session:
    """One session for the module: botocore loads each service's model once."""
    return boto3.Session(region_name=REGION)


@pytest.fixture
def account(moto_endpoint: str) -> str:
    """moto's account. Tests undo what they create (a reset of moto's state costs about a second per test)."""
    return ACCOUNT


def quota_client(session: boto3.Session, values: list[tuple[Any, float | None]]) -> Any:
    """A service-quotas client answering get_service_quota in order (None: no applied nor default value)."""
    client = session.client("service-quotas", region_name=REGION)
    stubber = Stubber(client)
    for quota, value in values:
        params = {"ServiceCode": quota.service, "QuotaCode": quota.code}
        if value is None:
            stubber.add_client_error("get_service_quota", "NoSuchResourceException", expected_params=params)
            stubber.add_client_error("get_aws_default_service_quota", "NoSuchResourceException", expected_params=params)
        else:
            body = {
                "Quota": {
                    "ServiceCode": quota.service,
                    "QuotaCode": quota.code,
                    "QuotaName": quota.name,
                    "Value": value,
                }
            }
            stubber.add_response("get_service_quota", body, params)
    stubber.activate()
    client.stubber = stubber
    return client


def eks_client(session: boto3.Session, version: str = "1.33", status: str | None = "STANDARD_SUPPORT") -> Any:
    client = session.client("eks", region_name=REGION)
    stubber = Stubber(client)
    versions = [] if status is None else [{"clusterVersion": version, "versionStatus": status}]
    stubber.add_response(
        "describe_cluster_versions",
        {"clusterVersions": versions},
        {"clusterVersions": [version], "includeAll": True},
    )
    stubber.activate()
    return client


def answer_reservations(client: Any, reservations: list[dict[str, Any]]) -> None:
    """moto has no DescribeCapacityReservations: answer it through the hook Stubber itself uses."""

    def handler(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        return AWSResponse("", 200, {}, None), {"CapacityReservations": reservations}  # type: ignore[arg-type]

    client.meta.events.register("before-call.ec2.DescribeCapacityReservations", handler)


def pilot_quotas(g: float = 64, standard: float = 64, eips: float = 5, enis: float = 5000) -> list[tuple[Any, float]]:
    # Order of the calls: vCPU quotas sorted by code, then Elastic IPs, then network interfaces.
    return [(ON_DEMAND_STANDARD, standard), (ON_DEMAND_G, g), (ELASTIC_IPS, eips), (NETWORK_INTERFACES, enis)]


def clients_for(**overrides: Any) -> aws.Clients:
    return aws.Clients(boto3.Session(region_name=REGION), overrides)


def lines(report, name: str) -> list[preflight.Check]:
    return [c for c in report.checks if c.name == name]


def test_the_needed_vcpus_follow_the_gpu_ceilings(make_settings):
    settings = make_settings("minimal")  # l40s: g6e.xlarge (1 GPU, 4 vCPUs) up to 2 GPUs; 3 x m7i.large
    needs = vcpu_needs(settings)
    assert needs[ON_DEMAND_G] == (8, ["pools.l40s"])
    assert needs[ON_DEMAND_STANDARD] == (6, ["cluster.system_nodes"])
    enterprise = vcpu_needs(make_settings("enterprise"))
    # h200 32 GPUs of p5en.48xlarge (8 GPUs, 192 vCPUs) = 4 nodes, h100-efa the same with p5.48xlarge.
    assert enterprise[ON_DEMAND_P] == (4 * 192 + 4 * 192, ["pools.h100-efa", "pools.h200"])


def test_a_ready_account_passes(session, account, make_settings):
    clients = aws.Clients(
        session, {"service-quotas": quota_client(session, pilot_quotas()), "eks": eks_client(session)}
    )
    report = run_preflight(make_settings("minimal"), clients)
    text = report.render()
    assert not report.blocked, text
    assert [c.status for c in lines(report, "offering")] == [Status.OK]
    assert "arn:aws:sts::123456789012" in text or ACCOUNT in text
    assert f"modelyard-test-models-{ACCOUNT} is free" in text
    assert "standard support" in text
    assert all(c.status is Status.OK for c in report.checks), text
    clients("service-quotas").stubber.assert_no_pending_responses()


def test_a_quota_too_low_fails_with_the_exact_increase_request(session, account, make_settings):
    clients = aws.Clients(
        session, {"service-quotas": quota_client(session, pilot_quotas(g=4)), "eks": eks_client(session)}
    )
    report = run_preflight(make_settings("minimal"), clients)
    assert report.blocked
    (failed,) = [c for c in report.checks if c.status is Status.FAIL]
    assert "Running On-Demand G and VT instances (L-DB2E81BA)" in failed.detail
    assert "current value 4, needed value 8" in failed.detail
    assert failed.fix == (
        "aws service-quotas request-service-quota-increase --service-code ec2 --quota-code L-DB2E81BA "
        "--desired-value 8 --region us-east-1"
    )


def test_a_type_not_offered_in_a_zone_fails(session, account, make_settings):
    # moto's offerings (from AWS): p5en.48xlarge is in use1-az2 and use1-az6 only.
    settings = make_settings(
        "minimal",
        pools={"h200": {"instance_types": ["p5en.48xlarge"], "max_gpus": 8}},
        models={"llama-8b": {"model": "llama-3.1-8b", "pool": "h200", "dtype": "bf16"}},
        tenants={"internal": {"models": ["llama-8b"], "gpu_quota": 8}},
    )
    # The preset's l40s pool stays beside the new h200 pool: Standard, P, then G and VT (sorted by code).
    quotas = [
        (ON_DEMAND_STANDARD, 64),
        (ON_DEMAND_P, 192),
        (ON_DEMAND_G, 64),
        (ELASTIC_IPS, 5),
        (NETWORK_INTERFACES, 5000),
    ]
    clients = aws.Clients(session, {"service-quotas": quota_client(session, quotas), "eks": eks_client(session)})
    report = run_preflight(settings, clients)
    (offering,) = [c for c in lines(report, "offering") if "h200" in c.detail]
    assert offering.status is Status.FAIL
    assert "pools.h200: p5en.48xlarge is not offered in use1-az1 (offered in use1-az2, use1-az6)" in offering.detail
    assert "pools.h200.zone_ids" in offering.fix
    assert report.blocked


def test_elastic_ip_headroom_counts_addresses_in_use(session, account, make_settings, request):
    ec2 = session.client("ec2")
    allocations = [ec2.allocate_address(Domain="vpc")["AllocationId"] for _ in range(2)]
    request.addfinalizer(lambda: [ec2.release_address(AllocationId=a) for a in allocations])
    settings = make_settings("minimal", network={"nat": "per-zone"})  # two zones: two NAT gateways
    clients = aws.Clients(
        session, {"service-quotas": quota_client(session, pilot_quotas(eips=3)), "eks": eks_client(session)}
    )
    report = run_preflight(settings, clients)
    (eip,) = lines(report, "elastic-ip")
    assert eip.status is Status.FAIL
    assert "current value 3 with 2 in use leaves 1; needed value 2 for 2 NAT gateways" in eip.detail
    assert "--quota-code L-0263D0A3 --desired-value 4" in eip.fix


def test_eks_version_falls_back_when_the_api_is_missing(session, account, make_settings):
    # moto has no DescribeClusterVersions (404): the check says it could not ask, and does not block.
    clients = aws.Clients(session, {"service-quotas": quota_client(session, pilot_quotas())})
    report = run_preflight(make_settings("minimal"), clients)
    (eks,) = lines(report, "eks-version")
    assert eks.status is Status.WARN and "could not be asked" in eks.detail and "pins add-ons for 1.33" in eks.detail
    assert not report.blocked


def test_an_unsupported_eks_version_fails(session, account, make_settings):
    clients = aws.Clients(
        session, {"service-quotas": quota_client(session, pilot_quotas()), "eks": eks_client(session, status=None)}
    )
    (eks,) = lines(run_preflight(make_settings("minimal"), clients), "eks-version")
    assert eks.status is Status.FAIL and "does not offer Kubernetes 1.33" in eks.detail


def test_the_bucket_is_ours_or_someone_elses(session, account, make_settings, request):
    s3 = session.client("s3")
    name = f"modelyard-test-models-{ACCOUNT}"
    s3.create_bucket(Bucket=name)
    request.addfinalizer(lambda: s3.delete_bucket(Bucket=name))

    def bucket_line():
        clients = aws.Clients(
            session, {"service-quotas": quota_client(session, pilot_quotas()), "eks": eks_client(session)}
        )
        (line,) = lines(run_preflight(make_settings("minimal"), clients), "bucket")
        return line

    untagged = bucket_line()
    assert untagged.status is Status.FAIL and "not tagged modelyard:stack=test" in untagged.detail
    s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [{"Key": "modelyard:stack", "Value": "test"}]})
    assert bucket_line().status is Status.OK


def test_a_403_bucket_is_taken(session, account, make_settings):
    s3 = session.client("s3", region_name=REGION)
    stubber = Stubber(s3)
    stubber.add_client_error("head_bucket", "403", http_status_code=403)
    stubber.activate()
    clients = aws.Clients(
        session, {"service-quotas": quota_client(session, pilot_quotas()), "eks": eks_client(session), "s3": s3}
    )
    (line,) = lines(run_preflight(make_settings("minimal"), clients), "bucket")
    assert line.status is Status.FAIL and "another account owns it" in line.detail


def test_capacity_reservation_in_the_wrong_zone(session, account, make_settings):
    settings = make_settings(
        "minimal",
        pools={
            "l40s": {
                "instance_types": ["g6e.xlarge"],
                "max_gpus": 2,
                "kind": "static",
                "capacity": "reservation",
                "min_nodes": 1,
                "zone_ids": ["use1-az1"],
                "reservation_id": "cr-0123456789abcdef0",
            }
        },
    )
    clients = aws.Clients(
        session, {"service-quotas": quota_client(session, pilot_quotas()), "eks": eks_client(session)}
    )
    answer_reservations(
        clients("ec2"),
        [
            {
                "CapacityReservationId": "cr-0123456789abcdef0",
                "InstanceType": "g6e.xlarge",
                "AvailabilityZoneId": "use1-az2",
                "AvailabilityZone": "us-east-1c",
                "State": "active",
            }
        ],
    )
    (line,) = lines(run_preflight(settings, clients), "reservation")
    assert line.status is Status.FAIL
    assert "it sits in use1-az2, not in the pool's zones (use1-az1)" in line.detail


def test_a_missing_capacity_reservation_fails(session, account, make_settings):
    settings = make_settings(
        "minimal",
        pools={
            "l40s": {
                "instance_types": ["g6e.xlarge"],
                "max_gpus": 2,
                "kind": "static",
                "capacity": "reservation",
                "min_nodes": 1,
                "zone_ids": ["use1-az1"],
                "reservation_id": "cr-0123456789abcdef0",
            }
        },
    )
    clients = aws.Clients(
        session, {"service-quotas": quota_client(session, pilot_quotas()), "eks": eks_client(session)}
    )
    answer_reservations(clients("ec2"), [])
    (line,) = lines(run_preflight(settings, clients), "reservation")
    assert line.status is Status.FAIL and "does not exist" in line.detail


@pytest.fixture
def filled(tmp_path: Path) -> str:
    """The shipped pilot with its placeholder filled (the preset's documentation CIDR is refused before `up`)."""
    import shutil

    shutil.copy(preflight.PROJECT_ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copytree(preflight.PROJECT_ROOT / "stacks", tmp_path / "stacks")
    pilot = tmp_path / "stacks" / "Pulumi.pilot.yaml"
    config = yaml.safe_load(pilot.read_text())
    config["config"]["modelyard:cluster"] = {"public_cidrs": ["8.8.4.0/24"]}
    pilot.write_text(yaml.safe_dump(config))
    return str(tmp_path)


def test_placeholders_are_refused_naming_the_key(session, account, capsys):
    assert main(["preflight", "--stack", "pilot"]) == 2
    err = capsys.readouterr().err
    assert "modelyard:cluster.public_cidrs[0]: 203.0.113.0/24 is a documentation range" in err


def test_missing_credentials_exit_3_with_the_fix(session, account, monkeypatch, capsys, filled):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key)
    assert main(["preflight", "--stack", "pilot", "--project-dir", filled]) == 3
    err = capsys.readouterr().err
    assert "Unable to locate credentials" in err and "--profile" in err and "aws sts get-caller-identity" in err


def test_an_unknown_profile_is_bad_input(session, account, capsys, filled):
    assert main(["preflight", "--stack", "pilot", "--profile", "nope", "--project-dir", filled]) == 2
    assert "--profile" in capsys.readouterr().err


def test_an_unknown_stack_is_bad_input(session, account, capsys):
    assert main(["preflight", "--stack", "no-such-stack"]) == 2


def test_the_command_exits_3_when_something_blocks_and_0_when_not(session, account, monkeypatch, capsys, filled):

    def open_with(quotas):
        return lambda profile, region: aws.Clients(
            session, {"service-quotas": quota_client(session, quotas), "eks": eks_client(session)}
        )

    monkeypatch.setattr(aws, "open_clients", open_with(pilot_quotas(g=0)))
    assert main(["preflight", "--stack", "pilot", "--project-dir", filled]) == 3
    out = capsys.readouterr().out
    assert "FAIL  quota: Running On-Demand G and VT instances (L-DB2E81BA): current value 0, needed value 8" in out
    assert "--desired-value 8" in out
    monkeypatch.setattr(aws, "open_clients", open_with(pilot_quotas()))
    assert main(["preflight", "--stack", "pilot", "--project-dir", filled]) == 0
    assert "0 FAIL" in capsys.readouterr().out


def test_caller_identity_raises_environment_blocked_without_credentials(session, account, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(EnvironmentBlocked, match="aws configure sso"):
        aws.caller_identity(clients_for())


def test_spot_pools_count_against_the_spot_quotas(make_settings):
    settings = make_settings(
        "minimal", pools={"l40s": {"instance_types": ["g6e.xlarge"], "max_gpus": 4, "capacity": "spot"}}
    )
    needs = vcpu_needs(settings)
    assert needs[preflight.SPOT_G] == (16, ["pools.l40s"])
    assert ON_DEMAND_G not in needs


def test_another_type_covering_the_zone_only_warns(session, account, make_settings):
    settings = make_settings(
        "minimal", pools={"l40s": {"instance_types": ["g6e.xlarge", "p5en.48xlarge"], "max_gpus": 8}}
    )
    quotas = [
        (ON_DEMAND_STANDARD, 64),
        (ON_DEMAND_P, 192),
        (ON_DEMAND_G, 64),
        (ELASTIC_IPS, 5),
        (NETWORK_INTERFACES, 5000),
    ]
    clients = aws.Clients(session, {"service-quotas": quota_client(session, quotas), "eks": eks_client(session)})
    report = run_preflight(settings, clients)
    statuses = {c.detail.split(":")[1].split()[0]: c.status for c in lines(report, "offering")}
    assert statuses == {"g6e.xlarge": Status.OK, "p5en.48xlarge": Status.WARN}
    assert not report.blocked, report.render()


def test_a_refused_call_fails_its_check_and_the_rest_still_run(session, account, make_settings):
    import botocore.exceptions

    clients = aws.Clients(
        session, {"service-quotas": quota_client(session, pilot_quotas()[:3]), "eks": eks_client(session)}
    )

    def deny(**_: Any) -> None:
        raise botocore.exceptions.ClientError(
            {"Error": {"Code": "UnauthorizedOperation", "Message": "not allowed"}}, "DescribeNetworkInterfaces"
        )

    clients("ec2").meta.events.register("before-call.ec2.DescribeNetworkInterfaces", deny)
    report = run_preflight(make_settings("minimal"), clients)
    (line,) = lines(report, "network-interfaces")
    assert line.status is Status.FAIL and "UnauthorizedOperation" in line.detail and "read access" in line.fix
    assert lines(report, "bucket") and lines(report, "eks-version")  # later checks still ran


def test_the_enterprise_preset_runs_every_check(session, account, make_settings):
    settings = make_settings("enterprise")
    needs = vcpu_needs(settings)
    quotas = [(q, 10_000) for q in sorted(needs, key=lambda q: (q.service, q.code))] + [(NETWORK_INTERFACES, 5000)]
    state = state_clients(session, "db.m7g.large", ["17.6"], "cache.m7g.large", 2)  # RDS, ElastiCache: stubbed
    clients = aws.Clients(
        session, {"service-quotas": quota_client(session, quotas), "eks": eks_client(session), **state}
    )
    report = run_preflight(settings, clients)
    failed = [c.detail for c in report.checks if c.status is Status.FAIL]
    # moto's offerings: p5en.48xlarge only in use1-az2 and use1-az6; everything else passes.
    assert failed == ["pools.h200: p5en.48xlarge is not offered in use1-az1, use1-az4 (offered in use1-az2, use1-az6)"]
    (eip,) = lines(report, "elastic-ip")
    assert "network.nat is none" in eip.detail
    # nat none: every node endpoint, each offered in every zone by moto's EC2.
    assert len(lines(report, "endpoint")) == len(settings.interface_endpoints) == 9
    assert [c.name for c in report.checks if c.name in ("database", "valkey")] == ["database", "valkey"]


def test_instances_of_others_use_the_same_quota(session, account, make_settings, request):
    ec2 = session.client("ec2")

    def launch(stack: str, count: int) -> list[str]:
        tags = [{"ResourceType": "instance", "Tags": [{"Key": "modelyard:stack", "Value": stack}]}]
        answer = ec2.run_instances(
            ImageId="ami-12345678", InstanceType="g6e.2xlarge", MinCount=count, MaxCount=count, TagSpecifications=tags
        )
        return [i["InstanceId"] for i in answer["Instances"]]

    ids = launch("someone-else", 2) + launch("test", 1)  # g6e.2xlarge: 8 vCPUs; the stack's own node is left out
    request.addfinalizer(lambda: ec2.terminate_instances(InstanceIds=ids))
    clients = aws.Clients(
        session, {"service-quotas": quota_client(session, pilot_quotas(g=20)), "eks": eks_client(session)}
    )
    report = run_preflight(make_settings("minimal"), clients)
    (g,) = [c for c in lines(report, "quota") if "L-DB2E81BA" in c.detail]
    assert g.status is Status.FAIL
    assert "current value 20 with 16 vCPUs in use by other instances leaves 4; needed value 8" in g.detail
    assert g.fix.endswith("--quota-code L-DB2E81BA --desired-value 24 --region us-east-1")


# --- the gateway's AWS side -------------------------------------------------------------------------------

HOSTNAME = "llm.example.internal"
BEDROCK_MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
BEDROCK = {
    "tenants": {"internal": {"data": "external-allowed"}},
    "gateway": {
        "keys": {"internal": {"key": "sk-internal-0123456789"}},
        "fallbacks": {"llama-8b": {"provider": "bedrock", "model": BEDROCK_MODEL}},
    },
}


def self_signed(names: list[str], days: int) -> tuple[bytes, bytes]:
    """A certificate (PEM) for `names`, valid from yesterday for `days` days, and its key (PEM)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), pem_key


@pytest.fixture
def import_certificate(session, account, request):
    acm = session.client("acm")

    def make(names: list[str], days: int = 365) -> str:
        cert, key = self_signed(names, days)
        arn = acm.import_certificate(Certificate=cert, PrivateKey=key)["CertificateArn"]
        request.addfinalizer(lambda: acm.delete_certificate(CertificateArn=arn))
        return str(arn)

    return make


def stubbed(session: boto3.Session, service: str, calls: list[tuple[str, dict[str, Any], dict[str, Any] | str]]) -> Any:
    """A client of `service` answering `calls` in order: (operation, expected params, answer or error code)."""
    client = session.client(service, region_name=REGION)
    stubber = Stubber(client)
    for operation, params, answer in calls:
        if isinstance(answer, str):
            stubber.add_client_error(operation, answer, expected_params=params)
        else:
            stubber.add_response(operation, answer, params)
    stubber.activate()
    client.stubber = stubber
    return client


def gateway_report(session, settings, **overrides: Any):
    """Preflight of `settings` with the quotas and EKS answered, plus the stubbed clients in `overrides`."""
    needs = vcpu_needs(settings)
    quotas: list[tuple[Any, float]] = [(q, 10_000) for q in sorted(needs, key=lambda q: (q.service, q.code))]
    if settings.network.nat.value != "none":
        quotas.append((ELASTIC_IPS, 5))
    quotas.append((NETWORK_INTERFACES, 5000))
    clients = aws.Clients(
        session, {"service-quotas": quota_client(session, quotas), "eks": eks_client(session), **overrides}
    )
    return run_preflight(settings, clients)


@pytest.mark.parametrize(
    ("names", "hostname", "covered"),
    [
        (["llm.example.com"], "llm.example.com", True),
        (["example.com", "*.example.com"], "llm.example.com", True),
        (["*.example.com"], "LLM.Example.com", True),
        (["*.example.com"], "example.com", False),  # a wildcard stands for one label, never none
        (["*.example.com"], "a.llm.example.com", False),  # nor for two
        (["*.llm.example.com"], "llm.example.com", False),
        (["other.example.com"], "llm.example.com", False),
    ],
)
def test_certificate_names_cover_the_hostname(names, hostname, covered):
    assert preflight.certificate_covers(names, hostname) is covered


def test_an_issued_certificate_covering_the_hostname_passes(session, account, make_settings, import_certificate):
    arn = import_certificate(["gateway.example.internal", "*.example.internal"])  # the hostname through its SAN
    settings = make_settings("minimal", gateway={"hostname": HOSTNAME, "certificate_arn": arn})
    (line,) = lines(gateway_report(session, settings), "certificate")
    assert line.status is Status.OK, line
    assert line.detail.startswith("gateway.certificate_arn: imported ISSUED, valid until ")
    assert line.detail.endswith(f"covers {HOSTNAME}")


def test_a_certificate_for_another_name_fails_naming_the_key(session, account, make_settings, import_certificate):
    arn = import_certificate(["*.other.internal"])
    settings = make_settings("minimal", gateway={"hostname": HOSTNAME, "certificate_arn": arn})
    report = gateway_report(session, settings)
    (line,) = lines(report, "certificate")
    assert line.status is Status.FAIL and report.blocked
    assert f"gateway.certificate_arn: {arn}: it does not cover gateway.hostname {HOSTNAME}" in line.detail
    assert "*.other.internal" in line.detail and "gateway.certificate_arn" in line.fix


def test_a_missing_or_unissued_certificate_fails(session, account, make_settings):
    missing = f"arn:aws:acm:us-east-1:{ACCOUNT}:certificate/01234567-89ab-cdef-0123-456789abcdef"
    settings = make_settings("minimal", gateway={"hostname": HOSTNAME, "certificate_arn": missing})
    (line,) = lines(gateway_report(session, settings), "certificate")
    assert line.status is Status.FAIL and f"{missing} does not exist in us-east-1" in line.detail
    acm = session.client("acm")
    requested = acm.request_certificate(DomainName=HOSTNAME, ValidationMethod="DNS")["CertificateArn"]
    try:
        status = acm.describe_certificate(CertificateArn=requested)["Certificate"]["Status"]
        assert status != "ISSUED"  # moto: PENDING_VALIDATION until validated
        settings = make_settings("minimal", gateway={"hostname": HOSTNAME, "certificate_arn": requested})
        (line,) = lines(gateway_report(session, settings), "certificate")
        assert line.status is Status.FAIL and f"its status is {status}, not ISSUED" in line.detail
    finally:
        acm.delete_certificate(CertificateArn=requested)


def test_a_certificate_expiring_soon_warns(session, account, make_settings, import_certificate):
    arn = import_certificate([HOSTNAME], days=10)
    settings = make_settings("minimal", gateway={"hostname": HOSTNAME, "certificate_arn": arn})
    report = gateway_report(session, settings)
    (line,) = lines(report, "certificate")
    assert line.status is Status.WARN and "expires in 9 days and ACM does not renew it" in line.detail
    assert "import-certificate" in line.fix and not report.blocked


ZONE_ID = "Z0123456789ABCDEFGHIJ"
PUBLIC = {"hostname": "llm.acme-corp.io", "exposure": "public", "allowed_cidrs": ["198.51.100.0/24"]}


@pytest.fixture
def hosted_zone(session, account, request):
    """A hosted zone with the id the settings name (moto takes custom ids through its id manager)."""
    from moto.route53.models import HostedZoneIdentifier
    from moto.utilities.id_generator import moto_id_manager

    route53 = session.client("route53")

    def make(name: str, private: bool = False) -> str:
        for spelled in (name, name + "."):
            moto_id_manager.set_custom_id(HostedZoneIdentifier(ACCOUNT, spelled, None), ZONE_ID)
        extra: dict[str, Any] = {}
        if private:
            vpc = session.client("ec2").describe_vpcs()["Vpcs"][0]["VpcId"]
            extra = {"HostedZoneConfig": {"PrivateZone": True}, "VPC": {"VPCRegion": REGION, "VPCId": vpc}}
        zone = route53.create_hosted_zone(Name=name, CallerReference=name + str(private), **extra)["HostedZone"]
        zone_id = zone["Id"].split("/")[-1]
        request.addfinalizer(lambda: route53.delete_hosted_zone(Id=zone_id))
        for spelled in (name, name + "."):
            moto_id_manager.unset_custom_id(HostedZoneIdentifier(ACCOUNT, spelled, None))
        assert zone_id == ZONE_ID
        return zone_id

    return make


def test_a_public_zone_of_the_hostname_passes(session, account, make_settings, hosted_zone):
    settings = make_settings("minimal", gateway={**PUBLIC, "public_zone_id": hosted_zone("acme-corp.io")})
    (line,) = lines(gateway_report(session, settings), "public-zone")
    assert (
        line.status is Status.OK and line.detail == f"gateway.public_zone_id: {ZONE_ID} is the public zone acme-corp.io"
    )


def test_a_private_zone_or_another_domain_fails(session, account, make_settings, hosted_zone):
    hosted_zone("other-corp.io", private=True)
    settings = make_settings("minimal", gateway={**PUBLIC, "public_zone_id": ZONE_ID})
    report = gateway_report(session, settings)
    (line,) = lines(report, "public-zone")
    assert line.status is Status.FAIL and report.blocked
    assert "it is a private zone" in line.detail
    assert "gateway.hostname llm.acme-corp.io is not inside its domain other-corp.io" in line.detail


def test_a_missing_zone_fails(session, account, make_settings):
    settings = make_settings("minimal", gateway={**PUBLIC, "public_zone_id": "Z0NOSUCHZONE0"})
    (line,) = lines(gateway_report(session, settings), "public-zone")
    assert line.status is Status.FAIL and "Z0NOSUCHZONE0 is not a hosted zone of this account" in line.detail


def orderable(cls: str, versions: list[str], multi_az: bool = True) -> Any:
    return {
        "OrderableDBInstanceOptions": [
            {"Engine": "postgres", "EngineVersion": v, "DBInstanceClass": cls, "MultiAZCapable": multi_az}
            for v in versions
        ]
    }


def offerings(node_type: str, count: int) -> dict[str, Any]:
    return {
        "ReservedCacheNodesOfferings": [
            {"ReservedCacheNodesOfferingId": f"off-{i}", "CacheNodeType": node_type, "ProductDescription": "redis"}
            for i in range(count)
        ]
    }


def state_clients(session, cls: str, versions: list[str], node_type: str, count: int, multi_az: bool = True):
    rds = stubbed(
        session,
        "rds",
        [
            (
                "describe_orderable_db_instance_options",
                {"Engine": "postgres", "DBInstanceClass": cls},
                orderable(cls, versions, multi_az),
            )
        ],
    )
    elasticache = stubbed(
        session,
        "elasticache",
        [
            (
                "describe_reserved_cache_nodes_offerings",
                {"CacheNodeType": node_type, "MaxRecords": 20},
                offerings(node_type, count),
            )
        ],
    )
    return {"rds": rds, "elasticache": elasticache}


def test_the_postgres_major_is_the_one_the_kit_deploys():
    from components.aws.gateway_state import POSTGRES_ENGINE_VERSION

    assert POSTGRES_ENGINE_VERSION.split(".")[0] == preflight.POSTGRES_MAJOR


def test_database_class_and_valkey_node_type_offered_pass(session, account, make_settings):
    # moto's RDS lists orderable options only for Aurora and Neptune, and its ElastiCache has no reserved
    # offerings: both are stubbed.
    clients = state_clients(session, "db.t4g.medium", ["16.9", "17.2", "17.6"], "cache.t4g.small", 3)
    report = gateway_report(session, make_settings("moderate"), **clients)
    (database,) = lines(report, "database")
    assert database.status is Status.OK
    assert database.detail == "gateway.database.instance_class: db.t4g.medium is orderable for PostgreSQL 17.6"
    (valkey,) = lines(report, "valkey")
    assert valkey.status is Status.OK and "ElastiCache sells cache.t4g.small in us-east-1" in valkey.detail
    for client in clients.values():
        client.stubber.assert_no_pending_responses()


def test_a_class_not_orderable_for_postgres_17_fails_and_an_unknown_node_type_warns(session, account, make_settings):
    clients = state_clients(session, "db.t4g.medium", ["16.9"], "cache.t4g.small", 0)
    report = gateway_report(session, make_settings("moderate"), **clients)
    (database,) = lines(report, "database")
    assert database.status is Status.FAIL and report.blocked
    assert "gateway.database.instance_class: db.t4g.medium is not orderable for RDS PostgreSQL 17" in database.detail
    assert "describe-orderable-db-instance-options" in database.fix
    (valkey,) = lines(report, "valkey")
    assert valkey.status is Status.WARN and "no reserved-node offering" in valkey.detail


def test_multi_az_needs_a_multi_az_capable_class(session, account, make_settings):
    clients = state_clients(session, "db.m7g.large", ["17.6"], "cache.m7g.large", 1, multi_az=False)
    (database,) = lines(gateway_report(session, make_settings("enterprise"), **clients), "database")
    assert database.status is Status.FAIL and "not Multi-AZ" in database.detail


def model_details(model_id: str, status: str = "ACTIVE", inference: tuple[str, ...] = ("ON_DEMAND",)) -> dict:
    return {
        "modelDetails": {
            "modelArn": f"arn:aws:bedrock:{REGION}::foundation-model/{model_id}",
            "modelId": model_id,
            "inferenceTypesSupported": list(inference),
            "modelLifecycle": {"status": status},
        }
    }


def availability(model_id: str, entitlement: str = "AVAILABLE", authorization: str = "AUTHORIZED") -> dict:
    return {
        "modelId": model_id,
        "agreementAvailability": {"status": "AVAILABLE"},
        "authorizationStatus": authorization,
        "entitlementAvailability": entitlement,
        "regionAvailability": "AVAILABLE",
    }


def bedrock_client(session, *answers: tuple[str, dict[str, Any] | str]) -> Any:
    # moto's Bedrock has no foundation models: GetFoundationModel and GetFoundationModelAvailability are stubbed.
    params = {
        "get_foundation_model": {"modelIdentifier": BEDROCK_MODEL},
        "get_foundation_model_availability": {"modelId": BEDROCK_MODEL},
    }
    return stubbed(session, "bedrock", [(op, params[op], answer) for op, answer in answers])


def test_an_active_on_demand_bedrock_model_passes(session, account, make_settings):
    bedrock = bedrock_client(
        session,
        ("get_foundation_model", model_details(BEDROCK_MODEL)),
        ("get_foundation_model_availability", availability(BEDROCK_MODEL)),
    )
    settings = make_settings("minimal", **BEDROCK)
    assert settings.bedrock_models_in_use == (BEDROCK_MODEL,)
    (line,) = lines(gateway_report(session, settings, bedrock=bedrock), "bedrock")
    assert line.status is Status.OK
    assert f"{BEDROCK_MODEL} ACTIVE, on demand in us-east-1; access: authorization AUTHORIZED" in line.detail
    bedrock.stubber.assert_no_pending_responses()


@pytest.mark.parametrize(
    ("answers", "status", "text"),
    [
        (
            [("get_foundation_model", "ResourceNotFoundException")],
            Status.FAIL,
            f"{BEDROCK_MODEL} is not a Bedrock foundation model in us-east-1",
        ),
        (
            [("get_foundation_model", model_details(BEDROCK_MODEL, inference=("INFERENCE_PROFILE",)))],
            Status.FAIL,
            "cannot be invoked on demand in us-east-1 (it supports INFERENCE_PROFILE)",
        ),
        (
            [
                ("get_foundation_model", model_details(BEDROCK_MODEL, status="LEGACY")),
                ("get_foundation_model_availability", availability(BEDROCK_MODEL)),
            ],
            Status.WARN,
            f"{BEDROCK_MODEL} is LEGACY in us-east-1",
        ),
        (
            [
                ("get_foundation_model", model_details(BEDROCK_MODEL)),
                ("get_foundation_model_availability", availability(BEDROCK_MODEL, "NOT_AVAILABLE", "NOT_AUTHORIZED")),
            ],
            Status.WARN,
            "access: authorization NOT_AUTHORIZED, entitlement NOT_AVAILABLE",
        ),
        (
            [
                ("get_foundation_model", model_details(BEDROCK_MODEL)),
                ("get_foundation_model_availability", "AccessDeniedException"),
            ],
            Status.OK,
            "access could not be read (GetFoundationModelAvailability: AccessDeniedException)",
        ),
    ],
)
def test_bedrock_models_missing_not_on_demand_legacy_or_without_access(
    session, account, make_settings, answers, status, text
):
    settings = make_settings("minimal", **BEDROCK)
    (line,) = lines(gateway_report(session, settings, bedrock=bedrock_client(session, *answers)), "bedrock")
    assert line.status is status and text in line.detail, line


DOCKER_HUB = "arn:aws:secretsmanager:us-east-1:111122223333:secret:ecr-pullthroughcache/docker-hub"
NO_NAT = {"network": {"nat": "none"}, "cluster": {"image_cache": {"docker_hub_secret_arn": DOCKER_HUB}}}


def bedrock_ok(session) -> Any:
    return bedrock_client(
        session,
        ("get_foundation_model", model_details(BEDROCK_MODEL)),
        ("get_foundation_model_availability", availability(BEDROCK_MODEL)),
    )


def test_every_interface_endpoint_offered_in_the_zones_passes(session, account, make_settings):
    settings = make_settings("minimal", **NO_NAT, **BEDROCK)
    assert "bedrock-runtime" in [e.value for e in settings.interface_endpoints]
    report = gateway_report(session, settings, bedrock=bedrock_ok(session))
    endpoint_lines = lines(report, "endpoint")
    assert [c.detail.split(":")[0] for c in endpoint_lines] == sorted(e.value for e in settings.interface_endpoints)
    assert all(c.status is Status.OK for c in endpoint_lines), report.render()
    assert "bedrock-runtime: offered in use1-az1, use1-az2" in [c.detail for c in endpoint_lines]


def answer_endpoint_services(client: Any, zones: Mapping[str, list[str]]) -> None:
    """Endpoint services as a region that offers only `zones` (service suffix -> zone names) answers them:
    an unknown service name fails the whole call with InvalidServiceName, as EC2 does."""

    def handler(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        details = []
        body = params.get("body", {})  # the EC2 query form: ServiceName.1, ServiceName.2, ...
        for name in [v for k, v in sorted(body.items()) if k.startswith("ServiceName.")]:
            suffix = name.removeprefix(f"com.amazonaws.{REGION}.")
            if suffix not in zones:
                error = {
                    "Error": {
                        "Code": "InvalidServiceName",
                        "Message": f"The Vpc Endpoint Service '{name}' does not exist",
                    }
                }
                return AWSResponse("", 400, {}, None), error  # type: ignore[arg-type]
            details.append({"ServiceName": name, "AvailabilityZones": zones[suffix]})
        return AWSResponse("", 200, {}, None), {"ServiceDetails": details}  # type: ignore[arg-type]

    client.meta.events.register("before-call.ec2.DescribeVpcEndpointServices", handler)


def test_bedrock_runtime_missing_in_a_zone_fails_and_exits_3(
    session, account, make_settings, monkeypatch, tmp_path, capsys
):
    import yaml

    settings = make_settings("minimal", **NO_NAT, **BEDROCK)
    everywhere = ["us-east-1a", "us-east-1b", "us-east-1c"]  # use1-az6, use1-az1, use1-az2 in moto's account
    zones = {e.value: everywhere for e in settings.interface_endpoints}
    zones["bedrock-runtime"] = ["us-east-1a", "us-east-1b"]  # not us-east-1c: use1-az2
    zones.pop("sqs")  # and the region does not have sqs

    def open_clients(profile: str | None, region: str) -> aws.Clients:
        quotas = [(ON_DEMAND_STANDARD, 64), (ON_DEMAND_G, 64), (NETWORK_INTERFACES, 5000)]
        clients = aws.Clients(
            session,
            {
                "service-quotas": quota_client(session, quotas),
                "eks": eks_client(session),
                "bedrock": bedrock_ok(session),
            },
        )
        answer_endpoint_services(clients("ec2"), zones)
        return clients

    # The command, on a stack file of these settings in a scratch project.
    import shutil

    shutil.copy(preflight.PROJECT_ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copytree(preflight.PROJECT_ROOT / "stacks" / "presets", tmp_path / "stacks" / "presets")
    # The key as `pulumi config set --secret --path` writes it (the settings refuse one in plain text).
    gateway = {**BEDROCK["gateway"], "keys": {"internal": {"key": {"secure": "v1:abc=="}}}}
    cluster = {**NO_NAT["cluster"], "public_cidrs": ["8.8.4.0/24"]}  # the preset's documentation CIDR, filled
    stack = {**NO_NAT, **BEDROCK, "gateway": gateway, "cluster": cluster}
    config = {"modelyard:preset": "minimal", **{f"modelyard:{k}": v for k, v in stack.items()}}
    (tmp_path / "stacks" / "Pulumi.test.yaml").write_text(yaml.safe_dump({"config": config}))
    monkeypatch.setattr(aws, "open_clients", open_clients)
    assert main(["preflight", "--stack", "test", "--project-dir", str(tmp_path)]) == 3
    out = capsys.readouterr().out
    assert "FAIL  endpoint: bedrock-runtime: com.amazonaws.us-east-1.bedrock-runtime is not offered in use1-az2" in out
    assert "or set network.nat (single or per-zone) so the gateway reaches Bedrock's public endpoint" in out
    assert "FAIL  endpoint: sqs: com.amazonaws.us-east-1.sqs is not offered in us-east-1" in out
    assert "OK    endpoint: sts: offered in use1-az1, use1-az2" in out


def test_s3_ranges_inside_the_table_pass_and_a_range_it_lacks_warns(session, account, make_settings):
    settings = make_settings("minimal")
    # moto's com.amazonaws.us-east-1.s3: 52.216.0.0/15, 3.5.0.0/19, 54.231.0.0/16, each in the kit's table.
    check = preflight.Preflight(settings, aws.Clients(session))
    check.check_s3_ranges()
    (line,) = lines(check.report, "s3-ranges")
    assert line.status is Status.OK, line
    assert "the 3 ranges of com.amazonaws.us-east-1.s3 are inside the kit's table (published 2026-08-22)" in line.detail

    ec2 = session.client("ec2", region_name=REGION)
    stubber = Stubber(ec2)
    name = "com.amazonaws.us-east-1.s3"
    stubber.add_response(
        "describe_managed_prefix_lists",
        {"PrefixLists": [{"PrefixListId": "pl-63a5400a", "PrefixListName": name}]},
        {"Filters": [{"Name": "prefix-list-name", "Values": [name]}]},
    )
    stubber.add_response(
        "get_managed_prefix_list_entries",
        {"Entries": [{"Cidr": "52.216.0.0/15"}, {"Cidr": "16.15.0.0/22"}, {"Cidr": "15.197.8.0/22"}]},
        {"PrefixListId": "pl-63a5400a"},
    )
    stubber.activate()
    check = preflight.Preflight(settings, aws.Clients(session, {"ec2": ec2}))
    check.check_s3_ranges()
    (line,) = lines(check.report, "s3-ranges")
    assert line.status is Status.WARN and not check.report.blocked
    assert "2 of the 3 ranges" in line.detail and "15.197.8.0/22, 16.15.0.0/22" in line.detail
    assert "python -m components.catalog.s3_ranges" in line.fix
    stubber.assert_no_pending_responses()


def test_s3_ranges_are_not_checked_without_tenants(session, account, make_settings):
    settings = make_settings("minimal", models={"llama-8b": None}, tenants={"internal": None})
    check = preflight.Preflight(settings, aws.Clients(session))
    check.check_s3_ranges()
    assert not lines(check.report, "s3-ranges")
