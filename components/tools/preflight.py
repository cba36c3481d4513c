"""`modelyard preflight --stack S [--profile P]`: what would make `pulumi up` fail, checked before spending.

Each check prints one line, OK, WARN or FAIL, and every FAIL carries its fix (for a quota, the exact
increase request). Exit codes: 0 nothing blocks, 3 something blocks (or no credentials), 2 bad input.
WARN never blocks: it marks what could not be checked, or a risk (docs/preflight.md, one section per check).
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import botocore.exceptions

from components.catalog import InstanceType, instances, s3_ranges
from components.errors import ExitCode, InputError, Problem
from components.settings import Settings
from components.settings.types import EKS_VERSIONS, Capacity, NatMode, TenantEgress
from components.tools import aws
from components.tools.aws import Clients, caller_identity, error_code, http_status, model_bucket_name

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class Status(StrEnum):
    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Check:
    name: str  # which check: credentials, region, zone, offering, quota, elastic-ip, ..., bucket, reservation, endpoint
    status: Status
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class Quota:
    service: str
    code: str
    name: str


# EC2 vCPU quotas per instance class and purchase option (Service Quotas, service code ec2). G and VT share one.
ON_DEMAND_G = Quota("ec2", "L-DB2E81BA", "Running On-Demand G and VT instances")
ON_DEMAND_P = Quota("ec2", "L-417A185B", "Running On-Demand P instances")
SPOT_G = Quota("ec2", "L-3819A6DF", "All G and VT Spot Instance Requests")
SPOT_P = Quota("ec2", "L-7212CCBC", "All P Spot Instance Requests")
ON_DEMAND_STANDARD = Quota("ec2", "L-1216C47A", "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances")
ELASTIC_IPS = Quota("ec2", "L-0263D0A3", "EC2-VPC Elastic IPs")
NETWORK_INTERFACES = Quota("vpc", "L-DF5E4CA3", "Network interfaces per Region")

VCPU_QUOTAS: Mapping[tuple[str, bool], Quota] = {
    ("G", False): ON_DEMAND_G,
    ("G", True): SPOT_G,
    ("P", False): ON_DEMAND_P,
    ("P", True): SPOT_P,
}

# Network interfaces the kit's stack uses besides its nodes' (an estimate; docs/preflight.md):
# the EKS control plane places up to 4 in the cluster's subnets, and load balancers take about 3 more.
ENI_CONTROL_PLANE_AND_BALANCERS = 7
# Per node, the VPC CNI attaches the primary interface and keeps one warm secondary interface.
ENIS_PER_NODE = 2

# gateway.certificate_arn: a certificate that expires within this many days gets a WARN (an imported one is not
# renewed by ACM; the NLB keeps serving it until it expires).
CERTIFICATE_WARN_DAYS = 30
# The gateway's database: RDS for PostgreSQL at this major version (components/aws/gateway_state.py
# POSTGRES_ENGINE_VERSION; not imported, it pulls in pulumi_aws; a test keeps the two equal).
POSTGRES_MAJOR = "17"


def certificate_covers(names: Iterable[str], hostname: str) -> bool:
    """Whether a certificate for `names` (its domain name and SANs) is valid for `hostname`: an exact name, or a
    wildcard standing for exactly one leftmost label (*.example.com covers llm.example.com, not example.com nor
    a.llm.example.com)."""
    host = hostname.lower().rstrip(".")
    for name in names:
        name = name.lower().rstrip(".")
        if name == host:
            return True
        if name.startswith("*.") and "." in host and host.split(".", 1)[1] == name[2:] and host.split(".", 1)[0]:
            return True
    return False


def in_zone(hostname: str, zone_name: str) -> bool:
    """Whether `hostname` is the zone's apex or a name below it (Route 53 zone names end with a dot)."""
    host, zone = hostname.lower().rstrip("."), zone_name.lower().rstrip(".")
    return host == zone or host.endswith("." + zone)


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)

    def add(self, name: str, status: Status, detail: str, fix: str = "") -> None:
        self.checks.append(Check(name, status, detail, fix))

    @property
    def blocked(self) -> bool:
        return any(c.status is Status.FAIL for c in self.checks)

    def render(self) -> str:
        lines = []
        for check in self.checks:
            lines.append(f"  {check.status.value:<5} {check.name}: {check.detail}")
            if check.fix:
                lines.append(f"        fix: {check.fix}")
        failed = sum(c.status is Status.FAIL for c in self.checks)
        warned = sum(c.status is Status.WARN for c in self.checks)
        lines.append(
            f"{len(self.checks)} checks: {len(self.checks) - failed - warned} OK, {warned} WARN, {failed} FAIL"
            + (" -- fix the FAIL lines before `pulumi up`" if failed else "")
        )
        return "\n".join(lines) + "\n"


def _quota_class(instance: InstanceType) -> str | None:
    """G (G and VT) or P, the EC2 vCPU quota class of a GPU instance family; None for others."""
    family = instance.family.lower()
    if family.startswith(("g", "vt")):
        return "G"
    if family.startswith("p"):
        return "P"
    return None


# Instance families on the Standard on-demand quota (A, C, D, H, I, M, R, T, Z).
_STANDARD_LETTERS = frozenset("acdhimrtz")


def _quota_of_type(type_name: str, spot: bool) -> Quota | None:
    """The vCPU quota a running instance of this type counts against (None: one the stack does not use)."""
    family = type_name.split(".")[0].lower()
    if family.startswith(("g", "vt")):
        return VCPU_QUOTAS[("G", spot)]
    if family.startswith("p"):
        return VCPU_QUOTAS[("P", spot)]
    if not spot and family[:1] in _STANDARD_LETTERS and not family.startswith(("inf", "trn", "dl", "hpc", "mac")):
        return ON_DEMAND_STANDARD
    return None


def pool_zones(settings: Settings, pool_name: str) -> tuple[str, ...]:
    return settings.pools[pool_name].zone_ids or settings.network.zone_ids


def pool_peak(settings: Settings, pool_name: str, quota_class: str | None = None) -> tuple[int, int]:
    """(nodes, vCPUs) a pool reaches at its GPU ceiling, with its hungriest instance type.

    Nodes = ceil(max_gpus / GPUs per instance); vCPUs = nodes x vCPUs per instance. With several types
    (Karpenter picks) the worst case counts: the type with the most vCPUs for the ceiling, among the
    types of `quota_class` when given (a pool mixing G and P types can land wholly on either).
    """
    pool = settings.pools[pool_name]
    catalog = instances()
    worst = (0, 0)
    for type_name in pool.instance_types:
        instance = catalog[type_name]
        if quota_class is not None and _quota_class(instance) != quota_class:
            continue
        nodes = math.ceil(pool.max_gpus / max(instance.gpu_count, 1))
        worst = max(worst, (nodes * instance.vcpu, nodes))
    vcpus, nodes = worst
    return nodes, vcpus


def vcpu_needs(settings: Settings) -> dict[Quota, tuple[int, list[str]]]:
    """vCPUs each EC2 quota must allow at the stack's GPU ceilings, with the pools that need them.

    Reservation pools count as on-demand (instances in an on-demand capacity reservation count against
    the on-demand quota); capacity-block pools are left out (docs/preflight.md). System nodes count
    against the Standard on-demand quota at their maximum.
    """
    needs: dict[Quota, tuple[int, list[str]]] = {}
    catalog = instances()

    def add(quota: Quota, vcpus: int, who: str) -> None:
        total, pools = needs.get(quota, (0, []))
        needs[quota] = (total + vcpus, [*pools, who])

    for name, pool in sorted(settings.pools.items()):
        if pool.capacity is Capacity.CAPACITY_BLOCK:
            continue
        classes = {_quota_class(catalog[t]) for t in pool.instance_types} - {None}
        for cls in sorted(c for c in classes if c):
            _, vcpus = pool_peak(settings, name, cls)
            add(VCPU_QUOTAS[(cls, pool.capacity is Capacity.SPOT)], vcpus, f"pools.{name}")
    system = settings.cluster.system_nodes
    if system.instance_type in catalog:
        add(ON_DEMAND_STANDARD, system.max_nodes * catalog[system.instance_type].vcpu, "cluster.system_nodes")
    return needs


def nat_gateways(settings: Settings) -> int:
    return {NatMode.NONE: 0, NatMode.SINGLE: 1, NatMode.PER_ZONE: len(settings.network.zone_ids)}[settings.network.nat]


def eni_need(settings: Settings) -> int:
    """Network interfaces the stack may use at its ceilings (an estimate, docs/preflight.md)."""
    nodes = settings.cluster.system_nodes.max_nodes + sum(pool_peak(settings, name)[0] for name in settings.pools)
    endpoints = len(settings.interface_endpoints) * len(settings.network.zone_ids)
    return nodes * ENIS_PER_NODE + endpoints + nat_gateways(settings) + ENI_CONTROL_PLANE_AND_BALANCERS


def increase_command(quota: Quota, desired: int, region: str) -> str:
    return (
        f"aws service-quotas request-service-quota-increase --service-code {quota.service} "
        f"--quota-code {quota.code} --desired-value {desired} --region {region}"
    )


class Preflight:
    """All checks for one stack, against one account (clients already built)."""

    def __init__(self, settings: Settings, clients: Clients) -> None:
        self.settings = settings
        self.clients = clients
        self.region = settings.region
        self.report = Report()
        self._quota_cache: dict[Quota, float | None] = {}
        self._zone_cache: dict[str, dict[str, str]] | None = None

    # --- each check -------------------------------------------------------------------------------
    def run(self) -> Report:
        identity = caller_identity(self.clients)  # raises EnvironmentBlocked: nothing else can run
        self.report.add("credentials", Status.OK, f"{identity['arn']} (account {identity['account']})")
        if not self.check_region():
            return self.report
        for check in (
            self.check_zones,
            self.check_offerings,
            self.check_vcpu_quotas,
            self.check_elastic_ip,
            self.check_network_interfaces,
            self.check_eks_version,
            lambda: self.check_bucket(identity["account"]),
            self.check_reservations,
            self.check_certificate,
            self.check_public_zone,
            self.check_database,
            self.check_valkey,
            self.check_bedrock,
            self.check_endpoints,
            self.check_s3_ranges,
        ):
            try:
                check()
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
                code = error_code(exc) if isinstance(exc, botocore.exceptions.ClientError) else type(exc).__name__
                what = getattr(check, "__name__", "check").removeprefix("check_").replace("_", "-")
                self.report.add(
                    what if what != "<lambda>" else "bucket",
                    Status.FAIL,
                    f"could not be checked: {code}: {exc}",
                    "give the caller read access (docs/preflight.md lists the permissions) and run again",
                )
        return self.report

    def check_region(self) -> bool:
        try:
            answer = self.clients("ec2").describe_regions(AllRegions=True)
        except botocore.exceptions.ClientError as exc:
            self.report.add(
                "region",
                Status.FAIL,
                f"{self.region}: cannot list regions ({error_code(exc)})",
                "grant ec2:DescribeRegions to the caller",
            )
            return False
        regions = {r["RegionName"]: r.get("OptInStatus", "opt-in-not-required") for r in answer["Regions"]}
        if self.region not in regions:
            self.report.add(
                "region",
                Status.FAIL,
                f"{self.region} is not a region of this account's partition",
                "set modelyard:region to a region `aws ec2 describe-regions` lists",
            )
            return False
        if regions[self.region] == "not-opted-in":
            self.report.add(
                "region",
                Status.FAIL,
                f"{self.region} is an opt-in region not enabled in this account",
                f"aws account enable-region --region-name {self.region}",
            )
            return False
        self.report.add("region", Status.OK, f"{self.region} ({regions[self.region]})")
        return True

    def _zones(self) -> dict[str, dict[str, str]]:
        """The region's zones by zone id (ZoneName, State, ...), asked once."""
        if self._zone_cache is None:
            answer = self.clients("ec2").describe_availability_zones(AllAvailabilityZones=True)
            self._zone_cache = {z["ZoneId"]: z for z in answer["AvailabilityZones"]}
        return self._zone_cache

    def check_zones(self) -> None:
        wanted = set(self.settings.network.zone_ids)
        for pool in self.settings.pools.values():
            wanted.update(pool.zone_ids)
        zones = self._zones()
        for zone_id in sorted(wanted):
            zone = zones.get(zone_id)
            if zone is None:
                self.report.add(
                    "zone",
                    Status.FAIL,
                    f"{zone_id} is not a zone of {self.region}",
                    f"pick zone ids from `aws ec2 describe-availability-zones --region {self.region}` "
                    "(network.zone_ids, pools.<pool>.zone_ids)",
                )
            elif zone.get("State") != "available":
                self.report.add(
                    "zone",
                    Status.FAIL,
                    f"{zone_id} ({zone['ZoneName']}) is {zone.get('State')}",
                    "choose another zone in network.zone_ids",
                )
            else:
                self.report.add("zone", Status.OK, f"{zone_id} is {zone['ZoneName']} in this account")

    def _offered(self, types: Iterable[str]) -> dict[str, set[str]]:
        """Zone ids of the region where each instance type is offered."""
        offered: dict[str, set[str]] = defaultdict(set)
        paginator = self.clients("ec2").get_paginator("describe_instance_type_offerings")
        pages = paginator.paginate(
            LocationType="availability-zone-id",
            Filters=[{"Name": "instance-type", "Values": sorted(set(types))}],
        )
        for page in pages:
            for offering in page["InstanceTypeOfferings"]:
                offered[offering["InstanceType"]].add(offering["Location"])
        return offered

    def check_offerings(self) -> None:
        types = {t for pool in self.settings.pools.values() for t in pool.instance_types}
        if not types:
            return
        offered = self._offered(types)
        for name, pool in sorted(self.settings.pools.items()):
            zones = pool_zones(self.settings, name)
            for type_name in pool.instance_types:
                missing = [z for z in zones if z not in offered.get(type_name, set())]
                if not missing:
                    self.report.add("offering", Status.OK, f"pools.{name}: {type_name} in {', '.join(zones)}")
                    continue
                elsewhere = sorted(offered.get(type_name, set()))
                where = f"offered in {', '.join(elsewhere)}" if elsewhere else f"not offered anywhere in {self.region}"
                covered = [z for z in missing if any(z in offered.get(other, set()) for other in pool.instance_types)]
                # An elastic pool with another type offered in that zone still gets nodes there.
                status = Status.WARN if len(covered) == len(missing) and len(pool.instance_types) > 1 else Status.FAIL
                self.report.add(
                    "offering",
                    status,
                    f"pools.{name}: {type_name} is not offered in {', '.join(missing)} ({where})",
                    f"set pools.{name}.zone_ids to zones where it is offered, or choose another instance type"
                    if status is Status.FAIL
                    else "",
                )

    def quota_value(self, quota: Quota) -> float | None:
        """The account's applied value, else AWS's default; None when Service Quotas cannot say."""
        if quota not in self._quota_cache:
            client = self.clients("service-quotas")
            value: float | None
            try:
                value = client.get_service_quota(ServiceCode=quota.service, QuotaCode=quota.code)["Quota"]["Value"]
            except botocore.exceptions.ClientError as exc:
                if error_code(exc) != "NoSuchResourceException":
                    raise
                try:
                    answer = client.get_aws_default_service_quota(ServiceCode=quota.service, QuotaCode=quota.code)
                    value = answer["Quota"]["Value"]
                except botocore.exceptions.ClientError:
                    value = None
            self._quota_cache[quota] = value
        return self._quota_cache[quota]

    def _quota_line(
        self, name: str, quota: Quota, needed: int, current: float | None, why: str, in_use: int = 0
    ) -> None:
        label = f"{quota.name} ({quota.code})"
        using = f", {in_use} in use by other instances" if in_use else ""
        if current is None:
            self.report.add(name, Status.WARN, f"{label}: Service Quotas has no value; needed {needed} {why}")
        elif current - in_use >= needed:
            self.report.add(name, Status.OK, f"{label}: {current:g}{using}, needed {needed} {why}")
        else:
            held = f" with {in_use} vCPUs in use by other instances leaves {current - in_use:g};" if in_use else ","
            self.report.add(
                name,
                Status.FAIL,
                f"{label}: current value {current:g}{held} needed value {needed} {why}",
                increase_command(quota, in_use + needed, self.region),
            )

    def vcpus_in_use(self) -> dict[Quota, int]:
        """vCPUs of pending and running instances per vCPU quota, leaving out this stack's own nodes
        (tagged modelyard:stack=<stack>): they are already part of what the stack needs."""
        ec2 = self.clients("ec2")
        counts: dict[tuple[Quota, str], int] = defaultdict(int)
        filters = [{"Name": "instance-state-name", "Values": ["pending", "running"]}]
        for page in ec2.get_paginator("describe_instances").paginate(Filters=filters):
            for reservation in page["Reservations"]:
                for instance in reservation["Instances"]:
                    tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
                    if (
                        tags.get("modelyard:stack") == self.settings.deployment
                        and tags.get("modelyard:project", self.settings.project) == self.settings.project
                    ):
                        continue
                    quota = _quota_of_type(instance["InstanceType"], instance.get("InstanceLifecycle") == "spot")
                    if quota is not None:
                        counts[(quota, instance["InstanceType"])] += 1
        catalog = instances()
        vcpus = {t: catalog[t].vcpu for _, t in counts if t in catalog}
        unknown = sorted({t for _, t in counts if t not in vcpus})
        if unknown:
            for page in ec2.get_paginator("describe_instance_types").paginate(InstanceTypes=unknown):
                for info in page["InstanceTypes"]:
                    vcpus[info["InstanceType"]] = int(info["VCpuInfo"]["DefaultVCpus"])
        used: dict[Quota, int] = defaultdict(int)
        for (quota, type_name), count in counts.items():
            used[quota] += count * vcpus.get(type_name, 0)
        return dict(used)

    def check_vcpu_quotas(self) -> None:
        needs = vcpu_needs(self.settings)
        in_use = self.vcpus_in_use()
        # Sorted, so the calls come in a stable order (tests stub them with botocore's Stubber).
        for quota in sorted(needs, key=lambda q: (q.service, q.code)):
            needed, who = needs[quota]
            try:
                current = self.quota_value(quota)
            except botocore.exceptions.ClientError as exc:
                self.report.add(
                    "quota",
                    Status.WARN,
                    f"{quota.name} ({quota.code}): cannot read ({error_code(exc)})",
                    "grant servicequotas:GetServiceQuota to the caller",
                )
                continue
            self._quota_line("quota", quota, needed, current, f"vCPUs for {', '.join(who)}", in_use.get(quota, 0))
        for name, pool in sorted(self.settings.pools.items()):
            if pool.capacity is Capacity.CAPACITY_BLOCK:
                self.report.add("quota", Status.OK, f"pools.{name}: a capacity block, no vCPU quota counted")

    def _headroom(self, name: str, quota: Quota, in_use: int, needed: int, what: str, release: str) -> None:
        try:
            current = self.quota_value(quota)
        except botocore.exceptions.ClientError as exc:
            self.report.add(name, Status.WARN, f"{quota.name} ({quota.code}): cannot read ({error_code(exc)})")
            return
        label = f"{quota.name} ({quota.code})"
        if current is None:
            self.report.add(name, Status.WARN, f"{label}: no value; {in_use} in use, {needed} needed for {what}")
        elif current - in_use >= needed:
            self.report.add(name, Status.OK, f"{label}: {current:g}, {in_use} in use, {needed} needed for {what}")
        else:
            self.report.add(
                name,
                Status.FAIL,
                f"{label}: current value {current:g} with {in_use} in use leaves {current - in_use:g}; "
                f"needed value {needed} for {what}",
                f"{release}, or: {increase_command(quota, math.ceil(in_use + needed), self.region)}",
            )

    def check_elastic_ip(self) -> None:
        needed = nat_gateways(self.settings)
        if needed == 0:
            self.report.add("elastic-ip", Status.OK, "network.nat is none: no Elastic IP needed")
            return
        in_use = len(self.clients("ec2").describe_addresses().get("Addresses", []))
        self._headroom(
            "elastic-ip",
            ELASTIC_IPS,
            in_use,
            needed,
            f"{needed} NAT gateway{'s' if needed > 1 else ''} (network.nat {self.settings.network.nat.value})",
            "release unassociated addresses (`aws ec2 describe-addresses`, `aws ec2 release-address`)",
        )

    def check_network_interfaces(self) -> None:
        paginator = self.clients("ec2").get_paginator("describe_network_interfaces")
        in_use = sum(len(page["NetworkInterfaces"]) for page in paginator.paginate())
        self._headroom(
            "network-interfaces",
            NETWORK_INTERFACES,
            in_use,
            eni_need(self.settings),
            "nodes at the pools' ceilings, endpoints, NAT, control plane (estimate)",
            "delete unused interfaces (`aws ec2 describe-network-interfaces --filters Name=status,Values=available`)",
        )

    def check_eks_version(self) -> None:
        version = self.settings.cluster.version
        client = self.clients("eks")
        try:
            if not hasattr(client, "describe_cluster_versions"):  # boto3 older than the API (late 2024)
                raise botocore.exceptions.ParamValidationError(report="DescribeClusterVersions is not in this boto3")
            answer = client.describe_cluster_versions(clusterVersions=[version], includeAll=True)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            code = error_code(exc) if isinstance(exc, botocore.exceptions.ClientError) else type(exc).__name__
            known = version in EKS_VERSIONS
            self.report.add(
                "eks-version",
                Status.WARN,
                f"{version}: EKS could not be asked (DescribeClusterVersions: {code}); falling back to the kit's "
                f"table, which {'pins add-ons for' if known else 'does not know'} {version}",
                f"check with `aws eks describe-cluster-versions --cluster-versions {version} --region {self.region}`",
            )
            return
        entries = [v for v in answer.get("clusterVersions", []) if v.get("clusterVersion") == version]
        if not entries:
            self.report.add(
                "eks-version",
                Status.FAIL,
                f"EKS in {self.region} does not offer Kubernetes {version}",
                "set cluster.version to a version `aws eks describe-cluster-versions` lists and the kit supports",
            )
            return
        entry = entries[0]
        status = str(entry.get("versionStatus") or entry.get("status") or "").upper().replace("-", "_")
        end = entry.get("endOfStandardSupportDate")
        if status == "STANDARD_SUPPORT":
            self.report.add(
                "eks-version",
                Status.OK,
                f"{version}: standard support" + (f" until {end:%Y-%m-%d}" if hasattr(end, "strftime") else ""),
            )
        elif status == "EXTENDED_SUPPORT":
            self.report.add(
                "eks-version",
                Status.WARN,
                f"{version}: extended support only (costs more per hour)",
                "plan an upgrade of cluster.version",
            )
        else:
            self.report.add(
                "eks-version",
                Status.FAIL,
                f"{version}: {status.lower() or 'unsupported'} in EKS",
                "set cluster.version to a supported version",
            )

    def check_bucket(self, account_id: str) -> None:
        name = model_bucket_name(self.settings.project, self.settings.deployment, account_id)
        s3 = self.clients("s3")
        try:
            s3.head_bucket(Bucket=name)
        except botocore.exceptions.ClientError as exc:
            status = http_status(exc)
            if status == 404 or error_code(exc) in ("404", "NoSuchBucket"):
                self.report.add("bucket", Status.OK, f"{name} is free: `pulumi up` creates it")
            elif status == 403:
                self.report.add(
                    "bucket",
                    Status.FAIL,
                    f"{name} exists and this caller may not read it (403): another account "
                    "owns it, or a policy denies s3:ListBucket",
                    "if the caller lacks s3:ListBucket, grant it; if another account holds the name, deploy "
                    "under another project name (Pulumi.yaml name), which changes the bucket's name",
                )
            else:
                self.report.add("bucket", Status.FAIL, f"{name}: HeadBucket answered {status} {error_code(exc)}")
            return
        try:
            tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=name).get("TagSet", [])}
        except botocore.exceptions.ClientError:
            tags = {}
        if tags.get("modelyard:stack") == self.settings.deployment:
            self.report.add(
                "bucket", Status.OK, f"{name} exists and is this stack's (modelyard:stack={self.settings.deployment})"
            )
        else:
            self.report.add(
                "bucket",
                Status.FAIL,
                f"{name} exists in this account but is not tagged modelyard:stack={self.settings.deployment}",
                "`pulumi import` it into the stack, or empty and delete it if it is left over",
            )

    def check_reservations(self) -> None:
        pools = {name: p for name, p in self.settings.pools.items() if p.reservation_id}
        if not pools:
            return
        ec2 = self.clients("ec2")
        for name, pool in sorted(pools.items()):
            rid = str(pool.reservation_id)
            try:
                found = ec2.describe_capacity_reservations(CapacityReservationIds=[rid])["CapacityReservations"]
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
                code = error_code(exc) if isinstance(exc, botocore.exceptions.ClientError) else type(exc).__name__
                if code.startswith("InvalidCapacityReservationId"):
                    found = []
                else:
                    self.report.add(
                        "reservation",
                        Status.WARN,
                        f"pools.{name}: {rid} cannot be read ({code})",
                        "grant ec2:DescribeCapacityReservations to the caller",
                    )
                    continue
            if not found:
                self.report.add(
                    "reservation",
                    Status.FAIL,
                    f"pools.{name}: capacity reservation {rid} does not exist in {self.region}",
                    f"check the id with `aws ec2 describe-capacity-reservations --region {self.region}` "
                    f"(pools.{name}.reservation_id)",
                )
                continue
            reservation = found[0]
            problems = []
            zones = pool_zones(self.settings, name)
            zone = reservation.get("AvailabilityZoneId", "")
            if zone not in zones:
                problems.append(
                    f"it sits in {zone or reservation.get('AvailabilityZone')}, not in the pool's zones "
                    f"({', '.join(zones)})"
                )
            if reservation.get("InstanceType") not in pool.instance_types:
                problems.append(
                    f"it reserves {reservation.get('InstanceType')}, the pool runs {', '.join(pool.instance_types)}"
                )
            state = reservation.get("State", "")
            if state not in ("active", "scheduled", "pending"):
                problems.append(f"its state is {state}")
            if problems:
                self.report.add(
                    "reservation",
                    Status.FAIL,
                    f"pools.{name}: {rid}: " + "; ".join(problems),
                    f"set pools.{name}.zone_ids to [{zone}] and instance_types to the reserved type, "
                    "or use a reservation that matches",
                )
            else:
                self.report.add(
                    "reservation",
                    Status.OK,
                    f"pools.{name}: {rid} {state}, {reservation.get('InstanceType')} in {zone}",
                )

    # --- the gateway's AWS side: only what the stack's settings use ------------------------------------
    def check_certificate(self) -> None:
        arn = self.settings.gateway.certificate_arn
        hostname = self.settings.gateway.hostname
        if not arn:
            return
        try:
            cert = self.clients("acm").describe_certificate(CertificateArn=arn)["Certificate"]
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) not in ("ResourceNotFoundException", "InvalidArnException"):
                raise
            self.report.add(
                "certificate",
                Status.FAIL,
                f"gateway.certificate_arn: {arn} does not exist in {self.region} ({error_code(exc)})",
                f"import or issue the certificate in {self.region} and set gateway.certificate_arn to its ARN "
                f"(`aws acm list-certificates --region {self.region}`)",
            )
            return
        names = [cert.get("DomainName", ""), *cert.get("SubjectAlternativeNames", [])]
        names = list(dict.fromkeys(n for n in names if n))
        status = str(cert.get("Status", ""))
        not_after = cert.get("NotAfter")
        days = (not_after - datetime.now(UTC)).total_seconds() / 86400 if isinstance(not_after, datetime) else None
        problems = []
        if status != "ISSUED":
            problems.append(f"its status is {status or 'unknown'}, not ISSUED")
        if days is not None and days <= 0:
            problems.append(f"it expired on {not_after:%Y-%m-%d}")
        if hostname and not certificate_covers(names, hostname):
            problems.append(f"it does not cover gateway.hostname {hostname} (it names {', '.join(names) or 'nothing'})")
        if problems:
            self.report.add(
                "certificate",
                Status.FAIL,
                f"gateway.certificate_arn: {arn}: " + "; ".join(problems),
                f"set gateway.certificate_arn to an ISSUED certificate in {self.region} whose name or SANs cover "
                f"{hostname} (a wildcard covers one label)",
            )
            return
        kind = str(cert.get("Type", ""))
        until = f", valid until {not_after:%Y-%m-%d}" if isinstance(not_after, datetime) else ""
        detail = f"gateway.certificate_arn: {kind.lower() or 'certificate'} {status}{until}, covers {hostname}"
        renews = kind != "IMPORTED" and cert.get("RenewalEligibility") == "ELIGIBLE"
        if days is not None and days < CERTIFICATE_WARN_DAYS and not renews:
            self.report.add(
                "certificate",
                Status.WARN,
                f"{detail}; it expires in {math.floor(days)} days and ACM does not renew it",
                "re-import a renewed certificate under the same ARN (`aws acm import-certificate "
                "--certificate-arn ...`) before it expires",
            )
        else:
            self.report.add("certificate", Status.OK, detail)

    def check_public_zone(self) -> None:
        zone_id = self.settings.gateway.public_zone_id
        hostname = self.settings.gateway.hostname
        if not zone_id:
            return
        try:
            zone = self.clients("route53").get_hosted_zone(Id=zone_id)["HostedZone"]
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) not in ("NoSuchHostedZone", "InvalidInput"):
                raise
            self.report.add(
                "public-zone",
                Status.FAIL,
                f"gateway.public_zone_id: {zone_id} is not a hosted zone of this account ({error_code(exc)})",
                "set gateway.public_zone_id to the public hosted zone of the hostname's domain "
                "(`aws route53 list-hosted-zones`)",
            )
            return
        name = str(zone.get("Name", ""))
        problems = []
        if zone.get("Config", {}).get("PrivateZone"):
            problems.append(
                "it is a private zone (records there are not resolvable from the internet, and ACM "
                "cannot validate through it)"
            )
        if hostname and not in_zone(hostname, name):
            problems.append(f"gateway.hostname {hostname} is not inside its domain {name.rstrip('.')}")
        if problems:
            self.report.add(
                "public-zone",
                Status.FAIL,
                f"gateway.public_zone_id: {zone_id} ({name.rstrip('.')}): " + "; ".join(problems),
                "set gateway.public_zone_id to a public hosted zone whose domain holds gateway.hostname",
            )
        else:
            self.report.add(
                "public-zone", Status.OK, f"gateway.public_zone_id: {zone_id} is the public zone {name.rstrip('.')}"
            )

    def check_database(self) -> None:
        database = self.settings.gateway.database
        if database is None:
            return
        cls = database.instance_class
        options = []
        pages = self.clients("rds").get_paginator("describe_orderable_db_instance_options")
        for page in pages.paginate(Engine="postgres", DBInstanceClass=cls):
            options += [
                o
                for o in page.get("OrderableDBInstanceOptions", [])
                if str(o.get("EngineVersion", "")).split(".")[0] == POSTGRES_MAJOR
            ]
        versions = sorted(
            {str(o.get("EngineVersion")) for o in options}, key=lambda v: [int(x) for x in v.split(".") if x.isdigit()]
        )
        if not options:
            self.report.add(
                "database",
                Status.FAIL,
                f"gateway.database.instance_class: {cls} is not orderable for RDS PostgreSQL {POSTGRES_MAJOR} in "
                f"{self.region}",
                "set gateway.database.instance_class to a class `aws rds describe-orderable-db-instance-options "
                f"--engine postgres --db-instance-class <class> --region {self.region}` lists for {POSTGRES_MAJOR}.x",
            )
        elif database.multi_az and not any(o.get("MultiAZCapable") for o in options):
            self.report.add(
                "database",
                Status.FAIL,
                f"gateway.database: {cls} is orderable for PostgreSQL {POSTGRES_MAJOR} but not Multi-AZ in "
                f"{self.region}",
                "choose another gateway.database.instance_class, or set gateway.database.multi_az to false",
            )
        else:
            self.report.add(
                "database",
                Status.OK,
                f"gateway.database.instance_class: {cls} is orderable for PostgreSQL {versions[-1]}"
                + (" (Multi-AZ)" if database.multi_az else ""),
            )

    def check_valkey(self) -> None:
        redis = self.settings.gateway.redis
        if redis is None:
            return
        # ElastiCache has no API listing the node types offered per engine and region; its reserved-node
        # offerings are listed per node type and region, so a type with an offering is sold there (docs).
        node_type = redis.node_type
        answer = self.clients("elasticache").describe_reserved_cache_nodes_offerings(
            CacheNodeType=node_type, MaxRecords=20
        )
        if answer.get("ReservedCacheNodesOfferings"):
            self.report.add(
                "valkey",
                Status.OK,
                f"gateway.redis.node_type: ElastiCache sells {node_type} in {self.region} (per-engine offerings "
                "cannot be read: Valkey runs on every current-generation type)",
            )
        else:
            self.report.add(
                "valkey",
                Status.WARN,
                f"gateway.redis.node_type: {node_type} has no reserved-node offering in {self.region}: it may not "
                "be sold there (ElastiCache has no API for on-demand node types per region)",
                "check the type in the region's ElastiCache pricing or console; set gateway.redis.node_type to a "
                "current-generation type (cache.t4g, cache.m7g, cache.r7g)",
            )

    def check_bedrock(self) -> None:
        models = self.settings.bedrock_models_in_use
        if not models:
            return
        client = self.clients("bedrock")
        for model_id in models:
            try:
                details = client.get_foundation_model(modelIdentifier=model_id)["modelDetails"]
            except botocore.exceptions.ClientError as exc:
                if error_code(exc) not in ("ResourceNotFoundException", "ValidationException"):
                    raise
                self.report.add(
                    "bedrock",
                    Status.FAIL,
                    f"gateway.fallbacks: {model_id} is not a Bedrock foundation model in {self.region} "
                    f"({error_code(exc)})",
                    f"set gateway.fallbacks.<model>.model to a model id `aws bedrock list-foundation-models --region "
                    f"{self.region}` lists",
                )
                continue
            lifecycle = str(details.get("modelLifecycle", {}).get("status", ""))
            inference = [str(t) for t in details.get("inferenceTypesSupported", [])]
            if "ON_DEMAND" not in inference:
                self.report.add(
                    "bedrock",
                    Status.FAIL,
                    f"gateway.fallbacks: {model_id} cannot be invoked on demand in {self.region} (it supports "
                    f"{', '.join(inference) or 'no inference type'}); the gateway's role invokes foundation models "
                    "by id, and cross-region inference profiles are refused",
                    "choose a fallback model whose inferenceTypesSupported lists ON_DEMAND in the stack's region",
                )
                continue
            access = self._bedrock_access(client, model_id)
            if lifecycle != "ACTIVE":
                end = details.get("modelLifecycle", {}).get("endOfLifeTime")
                self.report.add(
                    "bedrock",
                    Status.WARN,
                    f"gateway.fallbacks: {model_id} is {lifecycle or 'not ACTIVE'} in {self.region}"
                    + (f", end of life {end:%Y-%m-%d}" if isinstance(end, datetime) else "")
                    + f"; {access[1]}",
                    "move gateway.fallbacks.<model>.model to an ACTIVE model",
                )
            elif not access[0]:
                self.report.add(
                    "bedrock",
                    Status.WARN,
                    f"gateway.fallbacks: {model_id} ACTIVE, on demand in {self.region}; {access[1]}",
                    "check the model's access in the Bedrock console (Model catalog); for Anthropic, submit the "
                    "use case once per account",
                )
            else:
                self.report.add(
                    "bedrock",
                    Status.OK,
                    f"gateway.fallbacks: {model_id} ACTIVE, on demand in {self.region}; {access[1]}",
                )

    def _bedrock_access(self, client: Any, model_id: str) -> tuple[bool, str]:
        """(looks usable, what Bedrock says of the account's access to a model). GetFoundationModelAvailability
        is the console's call: documented only by its fields, and an entitlement that first invoke creates
        (Marketplace) reads as not available until then; so a doubt only warns."""
        if not hasattr(client, "get_foundation_model_availability"):
            return True, "access not checked (this botocore has no GetFoundationModelAvailability)"
        try:
            answer = client.get_foundation_model_availability(modelId=model_id)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            code = error_code(exc) if isinstance(exc, botocore.exceptions.ClientError) else type(exc).__name__
            return True, f"access could not be read (GetFoundationModelAvailability: {code}); the first call tells"
        facts = {
            "authorization": answer.get("authorizationStatus"),
            "entitlement": answer.get("entitlementAvailability"),
            "agreement": answer.get("agreementAvailability", {}).get("status"),
            "region": answer.get("regionAvailability"),
        }
        seen = ", ".join(f"{k} {v}" for k, v in facts.items() if v)
        good = {"AUTHORIZED", "AVAILABLE", None}
        if all(v in good for v in facts.values()):
            return True, f"access: {seen or 'no answer'}"
        return False, f"access: {seen}"

    def check_endpoints(self) -> None:
        endpoints = self.settings.interface_endpoints
        if not endpoints:
            return
        names = {f"com.amazonaws.{self.region}.{e.value}": e.value for e in endpoints}
        ec2 = self.clients("ec2")
        details: dict[str, dict[str, Any]] = {}
        try:
            for d in ec2.describe_vpc_endpoint_services(ServiceNames=sorted(names))["ServiceDetails"]:
                details[d["ServiceName"]] = d
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) != "InvalidServiceName":
                raise
            # A service the region does not have fails the whole call: ask one by one to name it.
            for name in sorted(names):
                try:
                    for d in ec2.describe_vpc_endpoint_services(ServiceNames=[name])["ServiceDetails"]:
                        details[d["ServiceName"]] = d
                except botocore.exceptions.ClientError as inner:
                    if error_code(inner) != "InvalidServiceName":
                        raise
        zone_ids = self.settings.network.zone_ids
        names_by_id = {zid: str(z.get("ZoneName", "")) for zid, z in self._zones().items()}
        bedrock = ", or set network.nat (single or per-zone) so the gateway reaches Bedrock's public endpoint"
        for name in sorted(names):
            short = names[name]
            detail = details.get(name)
            if detail is None:
                self.report.add(
                    "endpoint",
                    Status.FAIL,
                    f"{short}: {name} is not offered in {self.region}",
                    "deploy to a region that offers it, or leave it out of network.interface_endpoints"
                    + (bedrock if short == "bedrock-runtime" else ""),
                )
                continue
            served = set(detail.get("AvailabilityZoneIds") or [])
            by_name = set(detail.get("AvailabilityZones") or [])
            missing = [z for z in zone_ids if z not in served and names_by_id.get(z) not in by_name]
            if missing:
                self.report.add(
                    "endpoint",
                    Status.FAIL,
                    f"{short}: {name} is not offered in {', '.join(missing)}",
                    "set network.zone_ids to zones where it is offered (`aws ec2 describe-vpc-endpoint-services "
                    f"--service-names {name} --region {self.region}`)"
                    + (bedrock if short == "bedrock-runtime" else ""),
                )
            else:
                self.report.add("endpoint", Status.OK, f"{short}: offered in {', '.join(zone_ids)}")

    def check_s3_ranges(self) -> None:
        """Tenant pods reach S3 only at the kit's dated table of its ranges (components/catalog/s3_ranges.yaml):
        every range the S3 gateway endpoint routes, the managed prefix list com.amazonaws.<region>.s3, should be
        inside one of them, or a weight copy that S3's DNS sends to a missing range cannot connect."""
        if all(t.egress is TenantEgress.NONE for t in self.settings.tenants.values()):
            return
        name = f"com.amazonaws.{self.region}.s3"
        source = s3_ranges.s3_ranges().source
        fix = (
            "regenerate the table from a fresh ip-ranges.json (`python -m components.catalog.s3_ranges "
            "ip-ranges.json`, docs/network.md#s3-address-ranges) and apply the stack again"
        )
        ec2 = self.clients("ec2")
        lists = ec2.describe_managed_prefix_lists(Filters=[{"Name": "prefix-list-name", "Values": [name]}])
        ids = [p["PrefixListId"] for p in lists.get("PrefixLists", [])]
        if not ids:
            self.report.add("s3-ranges", Status.WARN, f"no managed prefix list {name} in {self.region}: not checked")
            return
        entries: list[str] = []
        for page in ec2.get_paginator("get_managed_prefix_list_entries").paginate(PrefixListId=ids[0]):
            entries += [e["Cidr"] for e in page.get("Entries", [])]
        table = [ipaddress.IPv4Network(c) for c in s3_ranges.region_cidrs(self.region)]
        missing = sorted(
            (c for c in entries if not any(ipaddress.IPv4Network(c).subnet_of(t) for t in table)),
            key=ipaddress.IPv4Network,
        )
        if missing:
            self.report.add(
                "s3-ranges",
                Status.WARN,
                f"{len(missing)} of the {len(entries)} ranges of {name} are not in the kit's table of S3 ranges "
                f"(published {source.date}): {', '.join(missing)}; tenant pods cannot reach S3 there",
                fix,
            )
        else:
            self.report.add(
                "s3-ranges",
                Status.OK,
                f"the {len(entries)} ranges of {name} are inside the kit's table (published {source.date})",
            )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelyard preflight",
        description="Check the AWS account before `pulumi up`: credentials, region and zones, GPU instance "
        "offerings, vCPU quotas, Elastic IP and network-interface headroom, EKS version, the model bucket's "
        "name, capacity reservations, and what the gateway uses: its certificate, public zone, database class, "
        "Valkey node type, Bedrock fallback models, interface endpoints per zone; and the S3 ranges tenant pods may "
        "reach. Exit 0: nothing blocks; 3: something blocks; 2: bad input.",
    )
    parser.add_argument("--stack", required=True, help="a stack of stacks/Pulumi.<stack>.yaml")
    parser.add_argument("--profile", help="an AWS CLI profile (default: boto3's credential chain)")
    parser.add_argument(
        "--project-dir",
        type=Path,
        default=PROJECT_ROOT,
        metavar="DIR",
        help="the folder holding Pulumi.yaml and the stacks (default: this kit)",
    )
    return parser


def run_preflight(settings: Settings, clients: Clients) -> Report:
    return Preflight(settings, clients).run()


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    from components.plan.run import load_settings

    _, settings = load_settings(args.project_dir, args.stack)
    from components.settings.placeholders import placeholders

    unfilled = placeholders(settings)  # the offline plan accepts them; an account cannot use them
    if unfilled:
        raise InputError(unfilled)
    unknown = sorted(
        f"pools.{name}.instance_types: {t}"
        for name, pool in settings.pools.items()
        for t in pool.instance_types
        if t not in instances()
    )
    if unknown:
        raise InputError(
            [Problem(path=u.split(": ")[0], message=f"{u.split(': ')[1]} is not in the catalog") for u in unknown]
        )
    clients = aws.open_clients(args.profile, settings.region)
    sys.stdout.write(f"preflight: stack {args.stack}, region {settings.region}\n")
    report = run_preflight(settings, clients)
    sys.stdout.write(report.render())
    return ExitCode.ENVIRONMENT if report.blocked else ExitCode.OK
