"""FSx for Lustre for the enterprise preset (docs/storage.md, "FSx for Lustre"): the file system, its network and KMS
access, the CSI add-on, the per-namespace read-only volumes, its price, its cold start, and the settings it refuses."""

from __future__ import annotations

import json
from typing import Any

import kubernetes_validate
import pytest

from components.aws.addons import ADDON_VERSIONS
from components.errors import InputError
from components.sizing.cold_start import WeightsLoad, estimate, fsx_read_gb_per_second
from tests.conftest import by_type


def _one(plan: dict[str, Any], type_token: str) -> dict[str, Any]:
    (resource,) = by_type(plan, type_token)
    return resource


def _by_key(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["key"]: r for r in plan["resources"]}


def test_the_file_system_is_persistent_2_encrypted_in_the_pools_zone_protected_and_retained(plans) -> None:
    plan = plans["core"]
    fs = _one(plan, "aws:fsx/lustreFileSystem:LustreFileSystem")
    inputs = fs["inputs"]
    assert inputs["deploymentType"] == "PERSISTENT_2" and inputs["storageType"] == "SSD"
    assert inputs["storageCapacity"] == 4800 and inputs["perUnitStorageThroughput"] == 1000
    assert fs["protect"] is True and fs["retain_on_delete"] is True
    # The model bucket's key, not an AWS-managed one.
    assert inputs["kmsKeyId"].startswith("arn:aws:kms:us-east-1:123456789012:key/")
    assert "model-files" in {r["name"] for r in plan["resources"]}
    # One subnet: the private subnet of use1-az4, the zone of the h100-efa pool whose model reads from it.
    subnets = {
        r["inputs"].get("availabilityZoneId"): r
        for r in by_type(plan, "aws:ec2/subnet:Subnet")
        if "private" in r["name"]
    }
    assert isinstance(inputs["subnetIds"], str)
    assert "use1-az4" in subnets
    assert inputs["rootSquashConfiguration"]["rootSquash"] == "65534:65534"
    assert inputs["automaticBackupRetentionDays"] == 0


def test_lustre_ports_are_open_to_the_nodes_and_the_servers_only(plans) -> None:
    plan = plans["core"]
    rules = [
        r
        for r in by_type(plan, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if r["name"].startswith("model-files-lustre")
    ]
    ports = sorted({(r["inputs"]["fromPort"], r["inputs"]["toPort"]) for r in rules})
    assert ports == [(988, 988), (1018, 1023)]
    for rule in rules:
        assert rule["inputs"]["ipProtocol"] == "tcp"
        assert "cidrIpv4" not in rule["inputs"] and "referencedSecurityGroupId" in rule["inputs"]
    cluster = _one(plan, "aws:eks/cluster:Cluster")
    sources = {r["inputs"]["referencedSecurityGroupId"] for r in rules}
    group = next(r for r in by_type(plan, "aws:ec2/securityGroup:SecurityGroup") if r["name"] == "model-files-lustre")
    assert len(sources) == 2 and cluster is not None  # the nodes' (cluster) group and the file servers' own
    fs = _one(plan, "aws:fsx/lustreFileSystem:LustreFileSystem")
    assert len(fs["inputs"]["securityGroupIds"]) == 1
    assert group["key"] in fs["depends_on"]


def test_the_bucket_is_linked_read_only_with_new_pushes_imported(plans) -> None:
    plan = plans["core"]
    dra = _one(plan, "aws:fsx/dataRepositoryAssociation:DataRepositoryAssociation")
    inputs = dra["inputs"]
    assert inputs["fileSystemPath"] == "/models"
    assert inputs["dataRepositoryPath"].startswith("s3://modelyard-core-models-") and inputs[
        "dataRepositoryPath"
    ].endswith("/models/")
    assert sorted(inputs["s3"]["autoImportPolicy"]["events"]) == ["CHANGED", "DELETED", "NEW"]
    assert "autoExportPolicy" not in inputs["s3"]  # the servers only read: nothing goes back to the bucket
    assert inputs["deleteDataInFilesystem"] is False
    assert dra["protect"] is True and dra["retain_on_delete"] is True


def test_the_associations_role_may_only_decrypt_this_buckets_objects(plans) -> None:
    plan = plans["core"]
    grant = _one(plan, "aws:kms/grant:Grant")
    inputs = grant["inputs"]
    assert inputs["operations"] == ["Decrypt"]
    assert "/s3.data-source.lustre.fsx.amazonaws.com/AWSServiceRoleForFSxS3Access_fs-" in inputs["granteePrincipal"]
    (constraint,) = inputs["constraints"]
    assert constraint["encryptionContextEquals"] == {"aws:s3:arn": "arn:aws:s3:::modelyard-core-models-123456789012"}
    dra = _one(plan, "aws:fsx/dataRepositoryAssociation:DataRepositoryAssociation")
    assert dra["key"] in grant["depends_on"]  # FSx creates the role with the association


def test_the_fsx_csi_add_on_is_pinned_with_a_describe_only_role(plans) -> None:
    plan = plans["core"]
    addons = {a["inputs"]["addonName"]: a for a in by_type(plan, "aws:eks/addon:Addon")}
    fsx = addons["aws-fsx-csi-driver"]
    assert fsx["inputs"]["addonVersion"] == ADDON_VERSIONS["1.33"]["aws-fsx-csi-driver"]
    (association,) = fsx["inputs"]["podIdentityAssociations"]
    assert association["serviceAccount"] == "fsx-csi-controller-sa"
    policy = next(r for r in by_type(plan, "aws:iam/rolePolicy:RolePolicy") if r["name"] == "cluster-fsx-csi")
    statements = json.loads(policy["inputs"]["policy"])["Statement"]
    assert [s["Action"] for s in statements] == ["fsx:DescribeFileSystems"]
    for stack in ("pilot", "product"):  # no file system, no driver
        assert "aws-fsx-csi-driver" not in {
            a["inputs"]["addonName"] for a in by_type(plans[stack], "aws:eks/addon:Addon")
        }
        assert not by_type(plans[stack], "aws:fsx/lustreFileSystem:LustreFileSystem")


def test_each_namespace_gets_a_read_only_volume_and_claim_bound_to_each_other(plans) -> None:
    plan = plans["core"]
    objects = [m["object"] for m in plan["manifests"]]
    (volume,) = [o for o in objects if o["kind"] == "PersistentVolume"]
    (claim,) = [o for o in objects if o["kind"] == "PersistentVolumeClaim"]
    fs = _one(plan, "aws:fsx/lustreFileSystem:LustreFileSystem")
    assert volume["spec"]["accessModes"] == ["ReadOnlyMany"] and volume["spec"]["csi"]["readOnly"] is True
    assert volume["spec"]["csi"]["driver"] == "fsx.csi.aws.com"
    assert volume["spec"]["csi"]["volumeHandle"].startswith("fs-") and volume["spec"]["csi"]["volumeHandle"].endswith(
        "::tenant-core"
    )
    attributes = volume["spec"]["csi"]["volumeAttributes"]
    assert attributes["dnsname"].endswith(".fsx.us-east-1.amazonaws.com") and attributes["mountname"]
    assert volume["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert volume["spec"]["claimRef"] == {"namespace": "tenant-core", "name": "model-files"}
    assert claim["metadata"]["namespace"] == "tenant-core" and claim["spec"]["volumeName"] == volume["metadata"]["name"]
    assert claim["spec"]["storageClassName"] == "" == volume["spec"]["storageClassName"]
    assert fs is not None
    for obj in (volume, claim):
        kubernetes_validate.validate(obj, "1.33.0", strict=True)


def test_the_file_system_is_priced_in_the_core_plan(plans) -> None:
    (line,) = [ln for ln in plans["core"]["cost"]["lines"] if ln["item"].startswith("FSx for Lustre")]
    assert line["status"] == "priced" and line["monthly"] == "2880.00"  # 4800 GB x $0.600 (1000 MB/s/TiB)


def test_fsx_cold_start_reads_at_the_file_systems_throughput() -> None:
    # 4800 GiB at 1000 MB/s per TiB: a 4,687.5 MB/s baseline, budgeted at half for one start.
    assert fsx_read_gb_per_second(4687.5) == pytest.approx(2.34375)
    fsx = estimate(811.8, WeightsLoad.FSX, fsx_throughput_mb_per_second=4687.5)
    copy = estimate(811.8, WeightsLoad.COPY)
    assert fsx.engine_seconds == 600 + 347  # 811.8 GB / 2.34 GB/s, then the engine's start
    assert fsx.weights_seconds == 30  # the quick check of the files on the mount
    assert fsx.total_seconds < copy.total_seconds
    smaller = estimate(811.8, WeightsLoad.FSX, fsx_throughput_mb_per_second=1200 * 125 / 1024)
    assert smaller.total_seconds > fsx.total_seconds  # less throughput, slower start
    with pytest.raises(ValueError):
        estimate(811.8, WeightsLoad.FSX)


@pytest.mark.parametrize(
    ("overrides", "path", "words"),
    [
        ({"storage": {"fsx": {"storage_capacity_gib": 3000}}}, "storage.fsx.storage_capacity_gib", "multiple of 2400"),
        ({"storage": {"fsx": {"throughput_per_tib": 200}}}, "storage.fsx.throughput_per_tib", "not allowed"),
        ({"storage": {"fsx": {"zone_id": "use1-az9"}}}, "storage.fsx.zone_id", "not one of network.zone_ids"),
        # Llama 3.1 405B's 756 GiB and DeepSeek-R1's 627 GiB do not fit 1200 GiB together.
        (
            {
                "storage": {"fsx": {"storage_capacity_gib": 1200}},
                "models": {"deepseek-r1": {"weights": {"load": "fsx"}}},
            },
            "storage.fsx.storage_capacity_gib",
            "cannot hold",
        ),
        ({"storage": {"fsx": None}}, "models.llama-405b.weights.load", "needs the stack's FSx"),
        ({"models": {"llama-405b": {"weights": {"load": None}}}}, "storage.fsx", "no model reads"),
    ],
)
def test_bad_fsx_settings_are_refused_naming_the_key(make_settings, overrides, path, words) -> None:
    with pytest.raises(InputError) as refused:
        make_settings("enterprise", **overrides)
    messages = [f"{p.path}: {p.message}" for p in refused.value.problems]
    assert any(m.startswith(f"modelyard:{path}:") and words in m for m in messages), messages
