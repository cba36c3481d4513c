"""`modelyard orphans` against moto on 127.0.0.1 (the Resource Groups Tagging API over EC2, ELBv2, S3, KMS and
CloudWatch Logs; EC2's own describes): what a stack leaves behind, sorted into made outside Pulumi, managed,
retained on delete (with how to delete it on purpose) and the state backend; another stack's resources left out."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from components.cli import main
from components.tools import bootstrap, orphans
from components.tools.aws import Clients

ACCOUNT = "123456789012"
REGION = "us-east-1"
CLUSTER = "modelyard-pilot"


def kit_tags(component: str, stack: str = "pilot") -> dict[str, str]:
    return {"modelyard:project": "modelyard", "modelyard:stack": stack, "modelyard:component": component}


def ec2_tags(kind: str, tags: dict[str, str]) -> list[dict[str, Any]]:
    return [{"ResourceType": kind, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]


@pytest.fixture(scope="module")
def session(moto_endpoint: str) -> boto3.Session:
    return boto3.Session(region_name=REGION)


@pytest.fixture
def account(moto_endpoint: str, session: boto3.Session, monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.Session]:
    urllib.request.urlopen(urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")).close()
    for module in (orphans, bootstrap):
        monkeypatch.setattr(module.aws, "open_clients", lambda profile, region: Clients(session))
    yield session


def leave_a_stack_behind(session: boto3.Session) -> dict[str, str]:
    """What a destroyed-too-early pilot leaves: a Karpenter node and a PVC's volume, a CNI interface, the Load
    Balancer Controller's balancer and target group, a log group Pulumi had not yet removed, the retained model
    bucket and key; a key the destroy scheduled for deletion; a volume of another stack."""
    ec2, s3, kms, logs, elb = (session.client(s) for s in ("ec2", "s3", "kms", "logs", "elbv2"))
    vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.40.0.0/20", AvailabilityZone="us-east-1a")["Subnet"]
    subnet2 = ec2.create_subnet(VpcId=vpc, CidrBlock="10.40.16.0/20", AvailabilityZone="us-east-1b")["Subnet"]
    node_tags = {**kit_tags("gpu-pools"), f"kubernetes.io/cluster/{CLUSTER}": "owned",
                 "eks:eks-cluster-name": CLUSTER, "karpenter.sh/nodepool": "l40s"}  # fmt: skip
    node = ec2.run_instances(
        ImageId="ami-12c6146b", MinCount=1, MaxCount=1, InstanceType="g6e.xlarge", SubnetId=subnet["SubnetId"],
        TagSpecifications=ec2_tags("instance", node_tags),
    )["Instances"][0]["InstanceId"]  # fmt: skip
    pvc = ec2.create_volume(
        Size=100, AvailabilityZone="us-east-1a",
        TagSpecifications=ec2_tags("volume", {f"kubernetes.io/cluster/{CLUSTER}": "owned",
                                              "kubernetes.io/created-for/pvc/name": "prometheus-db"}),
    )["VolumeId"]  # fmt: skip
    eni = ec2.create_network_interface(
        SubnetId=subnet["SubnetId"],
        TagSpecifications=ec2_tags("network-interface", {"cluster.k8s.amazonaws.com/name": CLUSTER}),
    )["NetworkInterface"]["NetworkInterfaceId"]
    balancer = elb.create_load_balancer(
        Name="k8s-gateway-abc", Subnets=[subnet["SubnetId"], subnet2["SubnetId"]], Type="network",
        Scheme="internal", Tags=[{"Key": "elbv2.k8s.aws/cluster", "Value": CLUSTER}],
    )["LoadBalancers"][0]["LoadBalancerArn"]  # fmt: skip
    elb.create_target_group(
        Name="k8s-gateway-tg", Protocol="TCP", Port=4000, VpcId=vpc, TargetType="ip",
        Tags=[{"Key": "elbv2.k8s.aws/cluster", "Value": CLUSTER}],
    )  # fmt: skip
    logs.create_log_group(logGroupName=f"/aws/eks/{CLUSTER}/cluster", tags=kit_tags("cluster"))
    bucket = f"modelyard-pilot-models-{ACCOUNT}"
    s3.create_bucket(Bucket=bucket)
    tag_set = [{"Key": k, "Value": v} for k, v in kit_tags("model-storage").items()]
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tag_set})
    as_kms = [{"TagKey": k, "TagValue": v} for k, v in kit_tags("model-storage").items()]
    key = kms.create_key(Description="models", Tags=as_kms)["KeyMetadata"]["KeyId"]
    cluster_tags = [{"TagKey": k, "TagValue": v} for k, v in kit_tags("cluster").items()]
    doomed = kms.create_key(Description="eks secrets", Tags=cluster_tags)["KeyMetadata"]["KeyId"]
    kms.schedule_key_deletion(KeyId=doomed, PendingWindowInDays=7)
    ec2.create_volume(
        Size=10, AvailabilityZone="us-east-1a", TagSpecifications=ec2_tags("volume", kit_tags("gpu-pools", "product"))
    )
    return {"node": node, "pvc": pvc, "eni": eni, "balancer": balancer, "bucket": bucket, "key": key, "doomed": doomed}


def test_orphans_sorts_what_a_stack_left_and_says_how_to_delete_the_retained(account, capsys):
    left = leave_a_stack_behind(account)
    assert main(["bootstrap", "--stack", "pilot"]) == 0
    capsys.readouterr()
    assert main(["orphans", "--stack", "pilot", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["schema"] == "modelyard.orphans/v1"
    found = {(o["group"], o["kind"], o["name"]) for o in document["orphans"]}
    state_bucket = f"modelyard-pilot-pulumi-state-{ACCOUNT}"
    assert {
        ("outside-pulumi", "ec2:instance", left["node"]),
        ("outside-pulumi", "ec2:volume", left["pvc"]),
        ("outside-pulumi", "ec2:network-interface", left["eni"]),
        ("managed", "logs:log-group", f"/aws/eks/{CLUSTER}/cluster"),
        ("retained", "s3:bucket", left["bucket"]),
        ("retained", "kms:key", left["key"]),
        ("state", "s3:bucket", state_bucket),
    } <= found
    kinds = {(o["group"], o["kind"]) for o in document["orphans"]}
    assert ("outside-pulumi", "elasticloadbalancing:loadbalancer") in kinds
    assert ("outside-pulumi", "elasticloadbalancing:targetgroup") in kinds
    names = {o["name"] for o in document["orphans"]}
    assert left["doomed"] not in names  # pending deletion: on its way out
    assert all(o["kind"] != "ec2:volume" or o["name"] == left["pvc"] for o in document["orphans"])  # not product's
    groups = [o["group"] for o in document["orphans"]]
    assert groups == sorted(groups, key=[g.value for g in orphans.GROUP_ORDER].index)  # the destroy order
    by_name = {o["name"]: o for o in document["orphans"]}
    assert by_name[left["bucket"]]["how_to_delete"].endswith(f"aws s3api delete-bucket --bucket {left['bucket']} "
                                                             "--region us-east-1")  # fmt: skip
    assert f"aws kms schedule-key-deletion --key-id {left['key']}" in by_name[left["key"]]["how_to_delete"]

    assert main(["orphans", "--stack", "pilot"]) == 0
    text = capsys.readouterr().out
    assert text.index("made outside Pulumi") < text.index("managed by Pulumi") < text.index("retained on delete")
    assert f"aws ec2 terminate-instances --instance-ids {left['node']}" in text


def test_a_clean_account_has_nothing_left(account, capsys):
    assert main(["orphans", "--stack", "pilot"]) == 0
    assert "nothing of this stack is left in the region" in capsys.readouterr().out


def test_the_plan_names_what_is_retained():
    plan = {
        "resources": [
            {"type": "aws:rds/instance:Instance", "retain_on_delete": True,
             "inputs": {"tags": {"modelyard:component": "gateway"}}},
            {"type": "aws:s3/bucket:Bucket", "retain_on_delete": False,
             "inputs": {"tags": {"modelyard:component": "deploy-runner"}}},
        ]
    }  # fmt: skip
    retained = orphans.retained_in_plan(plan)
    assert retained == {("rds:db", "gateway")}
    assert orphans.classify({"modelyard:component": "gateway"}, "rds:db", retained) is orphans.Group.RETAINED
    assert orphans.classify({"modelyard:component": "deploy-runner"}, "s3:bucket", retained) is orphans.Group.MANAGED
    assert orphans.arn_kind("arn:aws:rds:us-east-1:1:db:modelyard-core-gateway") == ("rds:db", "modelyard-core-gateway")
    assert orphans.arn_kind("arn:aws:s3:::b") == ("s3:bucket", "b")
    assert orphans.arn_kind("arn:aws:logs:us-east-1:1:log-group:/aws/eks/c/cluster:*") == (
        "logs:log-group",
        "/aws/eks/c/cluster",
    )


def test_a_pvcs_volume_carries_the_stacks_tags_and_is_found(account, plans, capsys):
    """The EBS CSI add-on's configuration in the plan gives every volume the driver creates the stack's tags and the
    cluster's: tagged as the driver tags them (its tagging page: CSIVolumeName, ebs.csi.aws.com/cluster, the PVC's
    name, `--extra-tags` and `--k8s-tag-cluster-id`), the volume is found; without that configuration it is not."""
    (addon,) = [r for r in plans["pilot"]["resources"] if r["name"] == "cluster-aws-ebs-csi-driver"]
    controller = json.loads(addon["inputs"]["configurationValues"])["controller"]
    assert controller["k8sTagClusterId"] == CLUSTER
    assert controller["extraVolumeTags"]["modelyard:stack"] == "pilot"
    driver = {"CSIVolumeName": "pvc-a3ab0567", "ebs.csi.aws.com/cluster": "true",
              "kubernetes.io/created-for/pvc/name": "prometheus-db"}  # fmt: skip
    ec2 = account.client("ec2")
    untagged = ec2.create_volume(Size=50, AvailabilityZone="us-east-1a", TagSpecifications=ec2_tags("volume", driver))
    tags = {
        **driver,
        **controller["extraVolumeTags"],
        f"kubernetes.io/cluster/{controller['k8sTagClusterId']}": "owned",
    }
    volume = ec2.create_volume(Size=50, AvailabilityZone="us-east-1a", TagSpecifications=ec2_tags("volume", tags))
    capsys.readouterr()
    assert main(["orphans", "--stack", "pilot", "--json"]) == 0
    found = {(o["group"], o["kind"], o["name"]) for o in json.loads(capsys.readouterr().out)["orphans"]}
    assert ("outside-pulumi", "ec2:volume", volume["VolumeId"]) in found
    assert not [name for _, _, name in found if name == untagged["VolumeId"]]
