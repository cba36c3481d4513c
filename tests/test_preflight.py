"""`modelyard preflight` against moto's server on 127.0.0.1 (STS, EC2 regions, zones, offerings with GPU types,
addresses, network interfaces, S3) and botocore's Stubber where moto has no API: EC2's service quotas, EKS
DescribeClusterVersions; DescribeCapacityReservations is answered through botocore's before-call hook."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
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


def test_missing_credentials_exit_3_with_the_fix(session, account, monkeypatch, capsys):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key)
    assert main(["preflight", "--stack", "pilot"]) == 3
    err = capsys.readouterr().err
    assert "Unable to locate credentials" in err and "--profile" in err and "aws sts get-caller-identity" in err


def test_an_unknown_profile_is_bad_input(session, account, capsys):
    assert main(["preflight", "--stack", "pilot", "--profile", "nope"]) == 2
    assert "--profile" in capsys.readouterr().err


def test_an_unknown_stack_is_bad_input(session, account, capsys):
    assert main(["preflight", "--stack", "no-such-stack"]) == 2


def test_the_command_exits_3_when_something_blocks_and_0_when_not(session, account, monkeypatch, capsys):

    def open_with(quotas):
        return lambda profile, region: aws.Clients(
            session, {"service-quotas": quota_client(session, quotas), "eks": eks_client(session)}
        )

    monkeypatch.setattr(aws, "open_clients", open_with(pilot_quotas(g=0)))
    assert main(["preflight", "--stack", "pilot"]) == 3
    out = capsys.readouterr().out
    assert "FAIL  quota: Running On-Demand G and VT instances (L-DB2E81BA): current value 0, needed value 8" in out
    assert "--desired-value 8" in out
    monkeypatch.setattr(aws, "open_clients", open_with(pilot_quotas()))
    assert main(["preflight", "--stack", "pilot"]) == 0
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
    clients = aws.Clients(session, {"service-quotas": quota_client(session, quotas), "eks": eks_client(session)})
    report = run_preflight(settings, clients)
    failed = [c.detail for c in report.checks if c.status is Status.FAIL]
    # moto's offerings: p5en.48xlarge only in use1-az2 and use1-az6; everything else passes.
    assert failed == ["pools.h200: p5en.48xlarge is not offered in use1-az1, use1-az4 (offered in use1-az2, use1-az6)"]
    (eip,) = lines(report, "elastic-ip")
    assert "network.nat is none" in eip.detail


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
