"""Cost of one stack: AWS priced from the plan's resources and from what controllers will create, plus
people, tools and hidden costs. The result is the plan JSON's `cost` object (design.md, Cost).

AWS lines come from two places:
  plan      every resource of plan["resources"] is priced from its planned inputs (PRICERS), or listed as
            free with the reason (FREE_TYPES, component resources, providers), or listed as "not priced"
            with zero: never skipped silently
  settings  what controllers create outside Pulumi: GPU nodes (Karpenter) from the pools and models through
            sizing, their root volumes, the gateway's load balancer, monitoring volumes; and usage (GB
            through NAT, endpoints, logs, to the internet), each an explicit setting under cost
Money is Decimal, rounded to cents per line; totals are sums of the rounded lines.
"""

from __future__ import annotations

import functools
import json
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from components import catalog
from components.cost.prices import QUALITIES, Price, PriceBook, default_book
from components.errors import InputError, Problem
from components.settings.model import Capacity, CostSettings, PoolKind, Settings

CURRENCY = "USD"
HOURS_PER_MONTH = Decimal(730)  # AWS's convention for a month of hours
MONTHS_PER_YEAR = 12
CENT = Decimal("0.01")
HOME_REGION = "us-east-1"  # where every price of the book was read
DEFAULT_REGION_MULTIPLIER = Decimal("1.1")

# The preset bands (design.md; facts.md §5: Devansh, "The Real Cost of Open-Source LLMs", via a 2025 report).
BANDS: Mapping[str, tuple[Decimal, Decimal]] = {
    "minimal": (Decimal(125_000), Decimal(190_000)),
    "moderate": (Decimal(500_000), Decimal(820_000)),
    "enterprise": (Decimal(6_000_000), Decimal(12_000_000)),
}
BAND_SOURCE = (
    "Devansh, 'The Real Cost of Open-Source LLMs' (Artificial Intelligence Made Simple), as cited by an "
    "AI Observability Market Research Report 2025 (facts.md section 5)"
)

# Resource types that cost nothing by themselves, and why (the reason is printed, not hidden).
FREE_TYPES: Mapping[str, str] = {
    "aws:ec2/vpc:Vpc": "VPCs are free",
    "aws:ec2/subnet:Subnet": "subnets are free",
    "aws:ec2/routeTable:RouteTable": "route tables are free",
    "aws:ec2/route:Route": "routes are free",
    "aws:ec2/routeTableAssociation:RouteTableAssociation": "route table associations are free",
    "aws:ec2/internetGateway:InternetGateway": "internet gateways are free (traffic is priced as egress)",
    "aws:ec2/securityGroup:SecurityGroup": "security groups are free",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": "security groups are free",
    "aws:ec2/securityGroupRule:SecurityGroupRule": "security group rules are free",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": "security group rules are free",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": "security group rules are free",
    "aws:ec2/flowLog:FlowLog": "billed as ingest on its log group",
    "aws:ec2/launchTemplate:LaunchTemplate": "launch templates are free",
    "aws:ec2/placementGroup:PlacementGroup": "placement groups are free",
    "aws:iam/role:Role": "IAM is free",
    "aws:iam/policy:Policy": "IAM is free",
    "aws:iam/rolePolicy:RolePolicy": "IAM is free",
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": "IAM is free",
    "aws:iam/instanceProfile:InstanceProfile": "IAM is free",
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": "IAM is free",
    "aws:kms/alias:Alias": "aliases are free (the key is priced)",
    "aws:eks/addon:Addon": "EKS add-ons are free (their pods run on priced nodes)",
    "aws:eks/accessEntry:AccessEntry": "access entries are free",
    "aws:eks/accessPolicyAssociation:AccessPolicyAssociation": "access entries are free",
    "aws:eks/podIdentityAssociation:PodIdentityAssociation": "Pod Identity is free",
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": "bucket settings are free (the bucket is priced)",
    "aws:s3/bucketPolicy:BucketPolicy": "bucket settings are free (the bucket is priced)",
    "aws:s3/bucketVersioning:BucketVersioning": "bucket settings are free (the bucket is priced)",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": (
        "bucket settings are free (the bucket is priced)"
    ),
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": (
        "bucket settings are free (the bucket is priced)"
    ),
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": "bucket settings are free (the bucket is priced)",
    "aws:s3/bucketLogging:BucketLogging": "bucket settings are free (the log bucket is priced)",
    "aws:s3/bucketNotification:BucketNotification": "bucket settings are free (the bucket is priced)",
    "aws:acm/certificate:Certificate": "public ACM certificates are free (c3x-pricing-api, 2026)",
    "aws:ecr/pullThroughCacheRule:PullThroughCacheRule": "no rule fee; cached images are ECR storage (unverified)",
    "aws:ecr/repositoryCreationTemplate:RepositoryCreationTemplate": "templates are free",
    "aws:cloudwatch/eventRule:EventRule": "rules on AWS service events are free",
    "aws:cloudwatch/eventTarget:EventTarget": "rules on AWS service events are free",
    "aws:sqs/queue:Queue": "within the 1M requests a month free tier (an assumption for the interruption queue)",
    "aws:sqs/queuePolicy:QueuePolicy": "queue policies are free",
    "aws:secretsmanager/secretVersion:SecretVersion": "the secret is priced",
    "aws:route53/record:Record": "queries are a usage line (not modelled for private zones)",
    "aws:guardduty/detectorFeature:DetectorFeature": "billed per monitored vCPU on the detector line",
    "aws:codebuild/project:Project": "billed per build minute while the deploy runner runs (not modelled)",
    "aws:ecr/lifecyclePolicy:LifecyclePolicy": "lifecycle policies are free",
    "pulumi:pulumi:StackReference": "a read of another stack's outputs",
}

# Stateful resource types (the diff warns loudly when one is replaced or removed).
STATEFUL_TYPES = frozenset(
    {
        "aws:s3/bucket:Bucket",
        "aws:s3/bucketV2:BucketV2",
        "aws:eks/cluster:Cluster",
        "aws:cloudwatch/logGroup:LogGroup",
        "aws:kms/key:Key",
        "aws:rds/instance:Instance",
        "aws:rds/cluster:Cluster",
        "aws:elasticache/replicationGroup:ReplicationGroup",
        "aws:elasticache/cluster:Cluster",
        "aws:elasticache/serverlessCache:ServerlessCache",
        "aws:fsx/lustreFileSystem:LustreFileSystem",
        "aws:ebs/volume:Volume",
        "aws:ecr/repository:Repository",
        "aws:ec2/vpc:Vpc",
        "aws:ec2/subnet:Subnet",
        "aws:secretsmanager/secret:Secret",
        "aws:route53/zone:Zone",
    }
)


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def money(value: Decimal) -> str:
    """Money in JSON: an exact decimal string with two places (JSON numbers would be floats)."""
    return str(cents(value))


def _d(value: float | int) -> Decimal:
    return Decimal(str(value))


def _int(value: Any, default: int) -> int:
    """An integer input, or the default where it is absent or unknown until apply."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    return int(value)


@dataclass(frozen=True, kw_only=True)
class Line:
    id: str  # stable across plans: what the diff matches on
    category: str  # aws, people, tools, hidden
    group: str  # within aws: compute, network, storage, observability, security, platform, usage
    item: str
    monthly: Decimal
    source: str
    quality: str
    basis: str
    status: str = "priced"  # priced, not priced (unknown type), unpriced (no sourced price)
    resource: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "category": self.category,
            "group": self.group,
            "item": self.item,
            "monthly": money(self.monthly),
            "source": self.source,
            "quality": self.quality,
            "basis": self.basis,
            "status": self.status,
            "resource": self.resource,
        }


@dataclass
class Pricer:
    """Prices with the region rule applied; remembers every price and assumption used."""

    book: PriceBook
    settings: CostSettings
    region: str
    zones: int = 2  # the stack's zones: an endpoint's zone count where its subnets are unknown
    used: dict[str, Price] = field(default_factory=dict)
    assumptions: dict[str, str] = field(default_factory=dict)
    # Root volume (GB) by launch-template key: node groups with a template take their disk size from it.
    template_disks: dict[str, int] = field(default_factory=dict)

    @property
    def region_multiplier(self) -> Decimal:
        chosen = self.settings.region_price_multiplier
        if chosen is not None:
            return _d(chosen)
        return Decimal(1) if self.region == HOME_REGION else DEFAULT_REGION_MULTIPLIER

    def price(self, key: str) -> Decimal:
        p = self.book[key]
        self.used[key] = p
        return p.usd * self.region_multiplier

    def cite(self, *keys: str) -> tuple[str, str]:
        """(source text, worst quality) for the prices behind a line."""
        prices = [self.book[k] for k in keys]
        text = "; ".join(dict.fromkeys(p.cite for p in prices))
        quality = max((p.quality for p in prices), key=QUALITIES.index)
        return text, quality

    def assume(self, setting: str) -> Decimal:
        """A usage setting used in a line, recorded as an assumption."""
        value = getattr(self.settings, setting)
        self.assumptions[f"cost.{setting}"] = str(value)
        return _d(value)

    def aws(
        self,
        *,
        id: str,
        group: str,
        item: str,
        monthly: Decimal,
        keys: Iterable[str],
        basis: str,
        resource: str | None = None,
    ) -> Line:
        source, quality = self.cite(*keys)
        if self.region_multiplier != 1:
            basis += f"; x{self.region_multiplier} region rule ({self.region})"
        return Line(
            id=id,
            category="aws",
            group=group,
            item=item,
            monthly=cents(monthly),
            source=source,
            quality=quality,
            basis=basis,
            resource=resource,
        )


# --- resources of the plan ------------------------------------------------------------------------


def _eks_cluster(r: Mapping[str, Any], p: Pricer) -> list[Line]:
    key = "eks_cluster_hour"
    monthly = p.price(key) * HOURS_PER_MONTH
    return [
        p.aws(
            id=r["key"],
            group="platform",
            item=f"EKS control plane {r['inputs'].get('name', r['name'])}",
            monthly=monthly,
            keys=[key],
            basis=f"{p.book[key].usd}/hr x 730 h (standard support, version {r['inputs'].get('version', '?')})",
            resource=r["key"],
        )
    ]


def _node_group(r: Mapping[str, Any], p: Pricer) -> list[Line]:
    inputs = r["inputs"]
    types = inputs.get("instanceTypes") or []
    desired = _int((inputs.get("scalingConfig") or {}).get("desiredSize"), 0)
    name = (inputs.get("labels") or {}).get("modelyard.dev/pool") or r["name"]
    if not types:
        return [_not_priced(r, "a node group without instanceTypes")]
    instance = catalog.instances().get(types[0])
    if instance is None or instance.on_demand_usd_per_hour is None:
        return [_unpriced(r, f"{types[0]}: no sourced on-demand price")]
    hourly = instance.on_demand_usd_per_hour * p.region_multiplier * (1 - _d(p.settings.compute_discount))
    template_disk = next((p.template_disks[k] for k in r.get("depends_on", []) if k in p.template_disks), None)
    disk = template_disk if template_disk is not None else _int(inputs.get("diskSize"), 20)
    disk_basis = "from its launch template" if template_disk is not None else "EKS default disk size unless set"
    gp3 = p.price("ebs_gp3_gb_month")
    source = _instance_source(instance)
    lines = [
        Line(
            id=r["key"],
            category="aws",
            group="compute",
            item=f"node group {name}: {desired} x {types[0]}",
            monthly=cents(hourly * desired * HOURS_PER_MONTH),
            source=source[0],
            quality=source[1],
            basis=f"{desired} x {instance.on_demand_usd_per_hour}/hr x 730 h{_discount_text(p)}{_region_text(p)}",
            resource=r["key"],
        ),
        p.aws(
            id=f"{r['key']}#volumes",
            group="storage",
            item=f"node group {name}: root volumes",
            monthly=gp3 * disk * desired,
            keys=["ebs_gp3_gb_month"],
            basis=f"{desired} x {disk} GB gp3 ({disk_basis})",
            resource=r["key"],
        ),
    ]
    return lines


def _nat_gateway(r: Mapping[str, Any], p: Pricer, *, count: int) -> list[Line]:
    gb = p.assume("nat_gb_per_month") / count
    monthly = p.price("nat_gateway_hour") * HOURS_PER_MONTH + p.price("nat_gateway_gb") * gb
    return [
        p.aws(
            id=r["key"],
            group="network",
            item=f"NAT gateway {r['name']}",
            monthly=monthly,
            keys=["nat_gateway_hour", "nat_gateway_gb"],
            basis=f"730 h + {cents(gb)} GB processed (cost.nat_gb_per_month split over {count})",
            resource=r["key"],
        )
    ]


def _eip(r: Mapping[str, Any], p: Pricer) -> list[Line]:
    return [
        p.aws(
            id=r["key"],
            group="network",
            item=f"public IPv4 {r['name']}",
            monthly=p.price("public_ipv4_hour") * HOURS_PER_MONTH,
            keys=["public_ipv4_hour"],
            basis="one public IPv4 address x 730 h",
            resource=r["key"],
        )
    ]


def _vpc_endpoint(r: Mapping[str, Any], p: Pricer, *, count: int) -> list[Line]:
    inputs = r["inputs"]
    service = str(inputs.get("serviceName", r["name"])).split(".", 3)[-1]  # com.amazonaws.<region>.<service>
    kind = str(inputs.get("vpcEndpointType", "Gateway"))
    if kind != "Interface":
        return [
            Line(
                id=r["key"],
                category="aws",
                group="network",
                item=f"{kind.lower()} endpoint {service}",
                monthly=Decimal(0),
                source="AWS: gateway endpoints (S3, DynamoDB) have no charge",
                quality="O",
                basis="free",
                resource=r["key"],
            )
        ]
    subnets = inputs.get("subnetIds")
    zones = len(subnets) if isinstance(subnets, list) and subnets else p.zones
    gb = p.assume("endpoint_gb_per_month") / count
    monthly = p.price("interface_endpoint_hour") * HOURS_PER_MONTH * zones + p.price("interface_endpoint_gb") * gb
    return [
        p.aws(
            id=r["key"],
            group="network",
            item=f"interface endpoint {service} ({zones} zones)",
            monthly=monthly,
            keys=["interface_endpoint_hour", "interface_endpoint_gb"],
            basis=f"{zones} zones x 730 h + {cents(gb)} GB (cost.endpoint_gb_per_month split over {count})",
            resource=r["key"],
        )
    ]


def _log_group(r: Mapping[str, Any], p: Pricer) -> list[Line]:
    inputs = r["inputs"]
    name = str(inputs.get("name", r["name"]))
    retention = _int(inputs.get("retentionInDays"), 0)
    months = Decimal(retention) / 30 if retention else Decimal(12)
    gb = p.assume("log_gb_per_month")
    vended = "flow-log" in name
    ingest_key = "logs_vended_ingest_gb" if vended else "logs_ingest_gb"
    monthly = p.price(ingest_key) * gb + p.price("logs_storage_gb_month") * gb * months
    kept = f"{retention} days" if retention else "never expires: 12 months counted"
    return [
        p.aws(
            id=r["key"],
            group="observability",
            item=f"log group {name}",
            monthly=monthly,
            keys=[ingest_key, "logs_storage_gb_month"],
            basis=f"{gb} GB/month ingested (cost.log_gb_per_month) + storage of {cents(months)} months ({kept})",
            resource=r["key"],
        )
    ]


def _flat(
    r: Mapping[str, Any], p: Pricer, *, group: str, what: str, price: str, basis: str, name_input: str = ""
) -> list[Line]:
    """One resource at one monthly unit price (a KMS key, a hosted zone, a health check, an alarm)."""
    name = r["inputs"].get(name_input, r["name"]) if name_input else r["name"]
    return [
        p.aws(
            id=r["key"],
            group=group,
            item=f"{what} {name}",
            monthly=p.price(price),
            keys=[price],
            basis=basis,
            resource=r["key"],
        )
    ]


def _bucket(r: Mapping[str, Any], p: Pricer, *, settings: Settings) -> list[Line]:
    name = str(r["inputs"].get("bucket") or r["name"])
    if "model" not in name or "log" in name or "trail" in name:
        gb = p.assume("log_gb_per_month")
        basis = f"{gb} GB of access logs (cost.log_gb_per_month)"
    else:
        gb = _storage_gb(settings)
        basis = f"{gb} GB: the served models' weights, two revisions each"
    return [
        p.aws(
            id=r["key"],
            group="storage",
            item=f"S3 bucket {name}",
            monthly=p.price("s3_standard_gb_month") * gb,
            keys=["s3_standard_gb_month"],
            basis=basis,
            resource=r["key"],
        )
    ]


def _ebs_volume(r: Mapping[str, Any], p: Pricer) -> list[Line]:
    inputs = r["inputs"]
    size = _d(_int(inputs.get("size"), 0))
    iops = max(0, _int(inputs.get("iops"), 3000) - 3000)
    mbps = max(0, _int(inputs.get("throughput"), 125) - 125)
    monthly = (
        p.price("ebs_gp3_gb_month") * size + p.price("ebs_gp3_iops_month") * iops + p.price("ebs_gp3_mbps_month") * mbps
    )
    return [
        p.aws(
            id=r["key"],
            group="storage",
            item=f"EBS volume {r['name']}",
            monthly=monthly,
            keys=["ebs_gp3_gb_month", "ebs_gp3_iops_month", "ebs_gp3_mbps_month"],
            basis=f"{size} GB gp3 + {iops} IOPS + {mbps} MB/s above baseline",
            resource=r["key"],
        )
    ]


def _fsx(r: Mapping[str, Any], p: Pricer) -> list[Line]:
    inputs = r["inputs"]
    size = _d(_int(inputs.get("storageCapacity"), 0))
    tier = _int(inputs.get("perUnitStorageThroughput"), 125)
    key = f"fsx_lustre_{tier}_gb_month"
    if key not in p.book.prices:
        return [_unpriced(r, f"FSx for Lustre at {tier} MB/s/TiB has no price in the book")]
    return [
        p.aws(
            id=r["key"],
            group="storage",
            item=f"FSx for Lustre {r['name']} ({tier} MB/s/TiB)",
            monthly=p.price(key) * size,
            keys=[key],
            basis=f"{size} GB",
            resource=r["key"],
        )
    ]


def _load_balancer(r: Mapping[str, Any], p: Pricer) -> list[Line]:
    kind = str(r["inputs"].get("loadBalancerType", "application"))
    return [_lb_line(p, id=r["key"], item=f"load balancer {r['name']}", network=kind == "network", resource=r["key"])]


def _lb_line(p: Pricer, *, id: str, item: str, network: bool, resource: str | None, basis: str = "") -> Line:
    prefix = "nlb" if network else "alb"
    hour, lcu = f"{prefix}_hour", f"{prefix}_lcu_hour"
    monthly = (p.price(hour) + p.price(lcu)) * HOURS_PER_MONTH
    text = f"{'NLB' if network else 'ALB'}: 730 h + 1 {'NLCU' if network else 'LCU'} on average (assumption)"
    return p.aws(
        id=id,
        group="network",
        item=item,
        monthly=monthly,
        keys=[hour, lcu],
        basis=text + (f"; {basis}" if basis else ""),
        resource=resource,
    )


def _rds(r: Mapping[str, Any], p: Pricer) -> list[Line]:
    inputs = r["inputs"]
    klass = str(inputs.get("instanceClass", ""))
    key = f"rds_{klass}_hour"
    if key not in p.book.prices:
        return [_unpriced(r, f"RDS {klass or '(no class)'} has no price in the book")]
    multi = bool(inputs.get("multiAz"))
    factor = p.price("rds_multi_az_factor") / p.region_multiplier if multi else Decimal(1)
    storage = _d(_int(inputs.get("allocatedStorage"), 20))
    keys = [key, "rds_gp3_gb_month"] + (["rds_multi_az_factor"] if multi else [])
    monthly = (p.price(key) * HOURS_PER_MONTH + p.price("rds_gp3_gb_month") * storage) * factor
    return [
        p.aws(
            id=r["key"],
            group="platform",
            item=f"RDS {klass}{' Multi-AZ' if multi else ''} {r['name']}",
            monthly=monthly,
            keys=keys,
            basis=f"730 h + {storage} GB gp3{' x2 Multi-AZ' if multi else ''}",
            resource=r["key"],
        )
    ]


def _elasticache(r: Mapping[str, Any], p: Pricer) -> list[Line]:
    inputs = r["inputs"]
    node = str(inputs.get("nodeType", ""))
    count = _int(inputs.get("numCacheClusters"), _int(inputs.get("numCacheNodes"), 1))
    key = f"elasticache_{node}_hour"
    if key not in p.book.prices:
        return [_unpriced(r, f"ElastiCache {node or '(no node type)'} has no price in the book")]
    return [
        p.aws(
            id=r["key"],
            group="platform",
            item=f"ElastiCache {count} x {node} {r['name']}",
            monthly=p.price(key) * HOURS_PER_MONTH * count,
            keys=[key],
            basis=f"{count} nodes x 730 h",
            resource=r["key"],
        )
    ]


def _ecr_repository(r: Mapping[str, Any], p: Pricer) -> list[Line]:
    return [
        p.aws(
            id=r["key"],
            group="platform",
            item=f"ECR repository {r['name']}",
            monthly=p.price("ecr_gb_month") * 20,
            keys=["ecr_gb_month"],
            basis="20 GB of images (assumption: two vLLM images of ~10 GB)",
            resource=r["key"],
        )
    ]


def _trail(r: Mapping[str, Any], p: Pricer) -> list[Line]:
    inputs = r["inputs"]
    data = "Data" in json.dumps(inputs.get("advancedEventSelectors") or inputs.get("eventSelectors") or [])
    name = inputs.get("name", r["name"])
    if not data:
        return [
            Line(
                id=r["key"],
                category="aws",
                group="security",
                item=f"CloudTrail trail {name}",
                monthly=Decimal(0),
                source="AWS: the first copy of management events is free",
                quality="O",
                basis="management events only",
                resource=r["key"],
            )
        ]
    events = p.assume("trail_data_events_per_month")
    return [
        p.aws(
            id=r["key"],
            group="security",
            item=f"CloudTrail trail {name} (data events)",
            monthly=p.price("cloudtrail_data_events_100k") * events / 100_000,
            keys=["cloudtrail_data_events_100k"],
            basis=f"{events:,} data events a month (cost.trail_data_events_per_month); its log files are on the "
            "trail bucket line",
            resource=r["key"],
        )
    ]


def _secret(r: Mapping[str, Any], p: Pricer) -> list[Line]:
    return [_not_priced(r, "Secrets Manager ($0.40/secret-month) is not in the price book yet")]


def _guardduty(r: Mapping[str, Any], p: Pricer, *, vcpus: int) -> list[Line]:
    return [
        p.aws(
            id=r["key"],
            group="security",
            item="GuardDuty EKS Runtime Monitoring",
            monthly=p.price("guardduty_eks_vcpu_month") * vcpus,
            keys=["guardduty_eks_vcpu_month"],
            basis=f"{vcpus} vCPUs of always-on nodes",
            resource=r["key"],
        )
    ]


def _zero_line(r: Mapping[str, Any], status: str, why: str) -> Line:
    """A visible $0 line for what the model cannot price, never a silent gap."""
    return Line(
        id=r["key"],
        category="aws",
        group=status,
        item=f"{r['type']} {r['name']}",
        monthly=Decimal(0),
        source="-",
        quality="U",
        basis=f"{status}: {why}",
        status=status,
        resource=r["key"],
    )


def _not_priced(r: Mapping[str, Any], why: str) -> Line:
    """A resource type the model has no rule for."""
    return _zero_line(r, "not priced", why)


def _unpriced(r: Mapping[str, Any], why: str) -> Line:
    """A known type without a sourced price (p5e)."""
    return _zero_line(r, "unpriced", why)


Pricing = Callable[[Mapping[str, Any], Pricer], list[Line]]

PRICERS: Mapping[str, Pricing] = {
    "aws:eks/cluster:Cluster": _eks_cluster,
    "aws:eks/nodeGroup:NodeGroup": _node_group,
    "aws:ec2/eip:Eip": _eip,
    "aws:cloudwatch/logGroup:LogGroup": _log_group,
    "aws:kms/key:Key": functools.partial(
        _flat,
        group="security",
        what="KMS key",
        price="kms_key_month",
        basis="one customer managed key (requests not counted)",
    ),
    "aws:ebs/volume:Volume": _ebs_volume,
    "aws:fsx/lustreFileSystem:LustreFileSystem": _fsx,
    "aws:lb/loadBalancer:LoadBalancer": _load_balancer,
    "aws:alb/loadBalancer:LoadBalancer": _load_balancer,
    "aws:rds/instance:Instance": _rds,
    "aws:elasticache/replicationGroup:ReplicationGroup": _elasticache,
    "aws:elasticache/cluster:Cluster": _elasticache,
    "aws:route53/zone:Zone": functools.partial(
        _flat,
        group="network",
        what="Route 53 zone",
        price="route53_zone_month",
        basis="one hosted zone",
        name_input="name",
    ),
    "aws:route53/healthCheck:HealthCheck": functools.partial(
        _flat,
        group="network",
        what="Route 53 health check",
        price="route53_health_check_month",
        basis="one AWS-endpoint or CloudWatch-alarm health check",
    ),
    "aws:cloudwatch/metricAlarm:MetricAlarm": functools.partial(
        _flat,
        group="observability",
        what="CloudWatch alarm",
        price="cloudwatch_alarm_month",
        basis="one standard-resolution alarm",
    ),
    "aws:ecr/repository:Repository": _ecr_repository,
    "aws:secretsmanager/secret:Secret": _secret,
    "aws:cloudtrail/trail:Trail": _trail,
}
# Priced with the whole plan in view (usage split over several resources, or depending on the nodes).
PLAN_WIDE = frozenset(
    {
        "aws:ec2/natGateway:NatGateway",
        "aws:ec2/vpcEndpoint:VpcEndpoint",
        "aws:s3/bucket:Bucket",
        "aws:s3/bucketV2:BucketV2",
        "aws:guardduty/detector:Detector",
    }
)


def _free_reason(r: Mapping[str, Any]) -> str | None:
    if not r.get("custom", True):
        return "a component: groups resources, costs nothing itself"
    if r["type"].startswith("pulumi:providers:"):
        return "a provider: configuration only"
    if r["type"] in FREE_TYPES:
        return FREE_TYPES[r["type"]]
    if r["type"].startswith("kubernetes:"):
        return "a Kubernetes object: runs on priced nodes (load balancers it asks for are priced from the manifests)"
    return None


def _instance_source(instance: catalog.InstanceType) -> tuple[str, str]:
    key = instance.sources.get("price", "")
    source = catalog.sources().get(key)
    if source is None:
        return key or "-", "U"
    return f"{source.key} {source.date} ({source.quality.value})", source.quality.value


def _discount_text(p: Pricer) -> str:
    return f" x (1 - {p.settings.compute_discount} cost.compute_discount)" if p.settings.compute_discount else ""


def _region_text(p: Pricer) -> str:
    return f"; x{p.region_multiplier} region rule ({p.region})" if p.region_multiplier != 1 else ""


def _storage_gb(settings: Settings) -> Decimal:
    from components.sizing.core import weights_gb

    total = 0.0
    seen: set[tuple[str, str]] = set()
    for m in settings.models.values():
        model = catalog.resolve_model(m.model)
        dtype = m.dtype or model.native_dtype
        if (model.name, dtype) in seen:
            continue
        seen.add((model.name, dtype))
        total += weights_gb(model, dtype)[0] * 2
    return Decimal(math.ceil(total))


def plan_lines(plan: Mapping[str, Any], settings: Settings, p: Pricer) -> tuple[list[Line], list[dict[str, Any]]]:
    """AWS lines for the plan's resources, and the free types with their counts and reasons."""
    lines: list[Line] = []
    free: Counter[tuple[str, str]] = Counter()
    resources = plan["resources"]
    by_type: dict[str, list[Mapping[str, Any]]] = {}
    for r in resources:
        by_type.setdefault(r["type"], []).append(r)
        if r["type"] == "aws:ec2/launchTemplate:LaunchTemplate":
            for mapping in r["inputs"].get("blockDeviceMappings") or []:
                size = (mapping.get("ebs") or {}).get("volumeSize")
                if isinstance(size, (int, float)):
                    p.template_disks[r["key"]] = int(size)
    for r in resources:
        reason = _free_reason(r)
        if reason is not None:
            free[(r["type"], reason)] += 1
        elif r["type"] in PRICERS:
            lines += PRICERS[r["type"]](r, p)
        elif r["type"] == "aws:ec2/natGateway:NatGateway":
            lines += _nat_gateway(r, p, count=len(by_type[r["type"]]))
        elif r["type"] == "aws:ec2/vpcEndpoint:VpcEndpoint":
            interface = [e for e in by_type[r["type"]] if e["inputs"].get("vpcEndpointType") == "Interface"]
            lines += _vpc_endpoint(r, p, count=max(1, len(interface)))
        elif r["type"] in ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"):
            lines += _bucket(r, p, settings=settings)
        elif r["type"] == "aws:guardduty/detector:Detector":
            lines += _guardduty(r, p, vcpus=_always_on_vcpus(plan, settings))
        else:
            lines.append(_not_priced(r, "the cost model has no rule for this type yet"))
    free_list = [
        {"type": t, "count": n, "reason": reason} for (t, reason), n in sorted(free.items(), key=lambda kv: kv[0])
    ]
    return lines, free_list


def _always_on_vcpus(plan: Mapping[str, Any], settings: Settings) -> int:
    total = 0
    for r in plan["resources"]:
        if r["type"] == "aws:eks/nodeGroup:NodeGroup":
            instance = catalog.instances().get((r["inputs"].get("instanceTypes") or [""])[0])
            desired = _int((r["inputs"].get("scalingConfig") or {}).get("desiredSize"), 0)
            total += (instance.vcpu if instance else 0) * desired
    for fleet in gpu_fleets(settings, plan):
        total += fleet.instance.vcpu * fleet.always_nodes
    return total


# --- what controllers create ----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Fleet:
    """The GPU nodes one model needs on its pool."""

    pool: str
    model_key: str
    model: str
    instance: catalog.InstanceType
    always_nodes: int  # for replicas.min (and the pool's min_nodes)
    burst_nodes: int  # more nodes up to replicas.max, within the pool's GPU ceiling
    avg_replicas: Decimal
    output_tokens_per_second: float  # per replica
    throughput_basis: str
    in_plan: bool  # a static pool's node group the plan prices already


def _pick(m: Any, pool: Any) -> tuple[catalog.InstanceType, Any] | None:
    from components.sizing import SizingOption, fit_on

    best: tuple[tuple[bool, Decimal, str], catalog.InstanceType, SizingOption] | None = None
    for type_name in pool.instance_types:
        fit = fit_on(m.model, type_name, dtype=m.dtype, context=m.context, concurrency=m.concurrency)
        if not isinstance(fit, SizingOption):
            continue
        instance = catalog.instances()[type_name]
        price = instance.on_demand_usd_per_hour
        per_replica = price * fit.nodes_per_replica / fit.replicas_per_node if price is not None else Decimal(0)
        rank = (price is None, per_replica, type_name)
        if best is None or rank < best[0]:
            best = (rank, instance, fit)
    return None if best is None else (best[1], best[2])


def gpu_fleets(settings: Settings, plan: Mapping[str, Any] | None = None) -> list[Fleet]:
    """GPU nodes per model: the cheapest priced instance type of the pool that fits (what Karpenter picks)."""
    planned_pools = set()
    for r in (plan or {}).get("resources", []):
        if r["type"] == "aws:eks/nodeGroup:NodeGroup":
            planned_pools.add((r["inputs"].get("labels") or {}).get("modelyard.io/pool"))
    fleets: list[Fleet] = []
    for pool_name, pool in settings.pools.items():
        gpus_left = pool.max_gpus
        pool_fleets: list[Fleet] = []
        for key, m in settings.models.items():
            if m.pool != pool_name:
                continue
            picked = _pick(m, pool)
            if picked is None:
                continue  # settings validation reports a model that fits nowhere
            instance, fit = picked

            def nodes(replicas: int, fit: Any = fit) -> int:
                return math.ceil(replicas / fit.replicas_per_node) * fit.nodes_per_replica

            always = nodes(m.replicas.min)
            most = min(nodes(m.replicas.max), max(always, gpus_left // instance.gpu_count))
            gpus_left -= most * instance.gpu_count
            replicas_max = min(m.replicas.max, most // fit.nodes_per_replica * fit.replicas_per_node)
            avg = _d(m.replicas.min) + _d(settings.cost.burst_share) * max(0, replicas_max - m.replicas.min)
            pool_fleets.append(
                Fleet(
                    pool=pool_name,
                    model_key=key,
                    model=m.model,
                    instance=instance,
                    always_nodes=always,
                    burst_nodes=most - always,
                    avg_replicas=avg,
                    output_tokens_per_second=fit.throughput.output_tokens_per_second,
                    throughput_basis=f"{fit.throughput.source.value}: {fit.throughput.basis}",
                    in_plan=pool_name in planned_pools,
                )
            )
        # Nodes a pool keeps beyond what its models need (min_nodes), on its first fleet's type.
        if pool_fleets and pool.min_nodes > sum(f.always_nodes for f in pool_fleets):
            extra = pool.min_nodes - sum(f.always_nodes for f in pool_fleets)
            first = pool_fleets[0]
            pool_fleets[0] = Fleet(
                **{
                    **first.__dict__,
                    "always_nodes": first.always_nodes + extra,
                    "burst_nodes": max(0, first.burst_nodes - extra),
                }
            )
        fleets += pool_fleets
    return fleets


def _capacity_price(pool: Any, instance: catalog.InstanceType, p: Pricer) -> tuple[Decimal, str, str]:
    """Hourly price of one node for the pool's capacity, with a note and the price source's quality."""
    assert instance.on_demand_usd_per_hour is not None
    base = instance.on_demand_usd_per_hour * p.region_multiplier
    quality = _instance_source(instance)[1]
    if pool.capacity is Capacity.SPOT:
        if instance.spot is None:
            return base, "spot with no sourced discount: priced on-demand", "U"
        spot_source = catalog.sources().get(instance.spot.source)
        spot_quality = spot_source.quality.value if spot_source else "U"
        worst = max(quality, spot_quality, key=QUALITIES.index)
        note = f"spot at the smallest observed discount, {instance.spot.minimum:.0%} off ({instance.spot.source})"
        return base * (1 - _d(instance.spot.minimum)), note, worst
    if pool.capacity is Capacity.CAPACITY_BLOCK:
        return base, "capacity block priced at on-demand (block prices differ; no current source)", "U"
    discount = _d(p.settings.compute_discount)
    note = "on-demand" + (f" x (1 - {discount}) cost.compute_discount" if discount else "")
    if pool.capacity is Capacity.RESERVATION:
        note += "; a reservation bills its nodes whether used or not"
    return base * (1 - discount), note, quality


def fleet_lines(settings: Settings, fleets: list[Fleet], p: Pricer) -> list[Line]:
    lines: list[Line] = []
    burst = _d(settings.cost.burst_share)
    gp3 = p.price("ebs_gp3_gb_month")
    gp3_source, gp3_quality = p.cite("ebs_gp3_gb_month")
    if fleets:
        p.assume("burst_share")
        p.assume("node_volume_gb")
    for f in fleets:
        pool = settings.pools[f.pool]
        line_id = f"controllers/gpu/{f.pool}/{f.model_key}"
        kind = "managed node group" if pool.kind is PoolKind.STATIC else "Karpenter"
        item = f"GPU pool {f.pool} ({kind}): {f.model_key} on {f.instance.name}"
        if f.in_plan:
            lines.append(
                Line(
                    id=line_id,
                    category="aws",
                    group="compute",
                    item=item,
                    monthly=Decimal(0),
                    source="-",
                    quality="M",
                    basis="priced on the node group line of the plan",
                )
            )
            continue
        if f.instance.on_demand_usd_per_hour is None:
            lines.append(
                Line(
                    id=line_id,
                    category="aws",
                    group="unpriced",
                    item=item,
                    monthly=Decimal(0),
                    source="-",
                    quality="U",
                    status="unpriced",
                    basis=f"unpriced: {f.instance.price_note or 'no sourced on-demand price'} "
                    f"({f.always_nodes} always-on + {f.burst_nodes} burst nodes not counted)",
                )
            )
            continue
        hourly, note, quality = _capacity_price(pool, f.instance, p)
        node_hours = (_d(f.always_nodes) + _d(f.burst_nodes) * burst) * HOURS_PER_MONTH
        source = _instance_source(f.instance)[0]
        if pool.capacity is Capacity.SPOT and f.instance.spot is not None:
            spot_source = catalog.sources().get(f.instance.spot.source)
            if spot_source is not None:
                source += f"; {spot_source.key} {spot_source.date} ({spot_source.quality.value})"
        lines.append(
            Line(
                id=line_id,
                category="aws",
                group="compute",
                item=item,
                monthly=cents(hourly * node_hours),
                source=source,
                quality=quality,
                basis=f"{f.always_nodes} nodes always + {f.burst_nodes} more for {burst:.0%} of hours"
                f" (cost.burst_share)"
                f" x {f.instance.on_demand_usd_per_hour}/hr x 730 h; {note}{_region_text(p)}",
            )
        )
        volume_gb = _d(settings.cost.node_volume_gb)
        lines.append(
            Line(
                id=f"{line_id}#volumes",
                category="aws",
                group="storage",
                item=f"GPU pool {f.pool}: {f.model_key} root volumes",
                monthly=cents(gp3 * volume_gb * node_hours / HOURS_PER_MONTH),
                source=gp3_source,
                quality=gp3_quality,
                basis=f"{volume_gb} GB gp3 per node (cost.node_volume_gb) for the same node-hours",
            )
        )
    return lines


def controller_lines(plan: Mapping[str, Any], settings: Settings, p: Pricer) -> list[Line]:
    """Load balancers and volumes controllers create, and usage not tied to one resource."""
    lines: list[Line] = []
    lbs = [
        r
        for r in plan["resources"]
        if r["type"] in ("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer")
    ]
    balanced = []
    for m in plan.get("manifests", []):
        obj = m["object"]
        spec = obj.get("spec") or {}
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        if obj.get("kind") == "Service" and spec.get("type") == "LoadBalancer":
            balanced.append((m, "Service", True))
        elif obj.get("kind") == "Ingress" and (
            spec.get("ingressClassName") == "alb" or annotations.get("kubernetes.io/ingress.class") == "alb"
        ):
            balanced.append((m, "Ingress", False))
    for m, kind, network in balanced:
        name = (m["object"].get("metadata") or {}).get("name", "?")
        lines.append(
            _lb_line(
                p,
                id=f"controllers/lb/{m['source']}/{kind}/{name}",
                item=f"load balancer for {kind} {name}",
                network=network,
                resource=m["source"],
                basis="created by the AWS Load Balancer Controller",
            )
        )
    if settings.models and not lbs and not balanced:
        lines.append(
            _lb_line(
                p,
                id="controllers/lb/gateway",
                item="load balancer of the gateway (expected)",
                network=True,
                resource=None,
                basis="the gateway's Service is not in the plan yet; one internal NLB expected",
            )
        )
    if settings.cost.monitoring_volume_gb:
        gb = _d(settings.cost.monitoring_volume_gb)
        p.assume("monitoring_volume_gb")
        lines.append(
            p.aws(
                id="controllers/volumes/monitoring",
                group="storage",
                item="monitoring volumes (PVCs)",
                monthly=p.price("ebs_gp3_gb_month") * gb,
                keys=["ebs_gp3_gb_month"],
                basis=f"{gb} GB gp3 claimed by Prometheus and Grafana (cost.monitoring_volume_gb)",
            )
        )
    egress = p.assume("egress_gb_per_month")
    lines.append(
        p.aws(
            id="usage/egress",
            group="usage",
            item="data transfer to the internet",
            monthly=p.price("transfer_out_gb") * egress,
            keys=["transfer_out_gb"],
            basis=f"{egress} GB/month (cost.egress_gb_per_month), first tier",
        )
    )
    return lines


# --- people, tools, hidden costs ------------------------------------------------------------------


def people_lines(c: CostSettings) -> list[Line]:
    default_source = CostSettings().usd_per_fte_year_source
    people_quality = "T" if c.usd_per_fte_year_source == default_source else "U"
    monthly = _d(c.fte) * _d(c.usd_per_fte_year) / MONTHS_PER_YEAR
    lines = [
        Line(
            id="people/engineers",
            category="people",
            group="people",
            item=f"{c.fte:g} FTE platform and ML engineers",
            monthly=cents(monthly),
            source=c.usd_per_fte_year_source,
            quality=people_quality,
            basis=f"{c.fte:g} FTE (cost.fte) x ${c.usd_per_fte_year:,.0f}/yr (cost.usd_per_fte_year) / 12",
        ),
        Line(
            id="tools",
            category="tools",
            group="tools",
            item="tools outside AWS (observability, paging, evaluation)",
            monthly=cents(_d(c.tools_usd_per_month)),
            source="setting cost.tools_usd_per_month; the TCO source puts logging and monitoring tools alone at "
            "$250-400/month (facts.md section 5)",
            quality="U",
            basis="cost.tools_usd_per_month",
        ),
    ]
    for key, item in (
        ("evaluation", "evaluation: eval sets, human review, red-teaming"),
        ("compliance", "compliance: audits, penetration tests, licence review"),
        ("upgrades", "upgrades: support contracts, consultants"),
    ):
        value = _d(getattr(c, f"{key}_usd_per_month"))
        lines.append(
            Line(
                id=f"hidden/{key}",
                category="hidden",
                group="hidden",
                item=item,
                monthly=cents(value),
                source=f"setting cost.{key}_usd_per_month (an assumption)",
                quality="U",
                basis=f"cost.{key}_usd_per_month",
            )
        )
    return lines


# --- tokens and break-even ------------------------------------------------------------------------


def token_figures(
    settings: Settings,
    fleets: list[Fleet],
    lines: list[Line],
    monthly_total: Decimal,
    aws_monthly: Decimal,
    book: PriceBook,
) -> dict[str, Any]:
    c = settings.cost
    utilisation = _d(c.utilisation)
    ratio = _d(c.input_tokens_per_output_token)
    seconds = HOURS_PER_MONTH * 3600
    per_model: list[dict[str, Any]] = []
    total_mtok = Decimal(0)
    hosted_cost = Decimal(0)
    hosted_labels: list[str] = []
    gpu_by_id = {ln.id: ln.monthly for ln in lines}
    for f in fleets:
        mtok = _d(f.output_tokens_per_second) * f.avg_replicas * seconds * utilisation / 1_000_000
        total_mtok += mtok
        gpu = gpu_by_id.get(f"controllers/gpu/{f.pool}/{f.model_key}", Decimal(0))
        hosted = book.hosted_open.get(f.model)
        if hosted is not None:
            hosted_cost += mtok * hosted.per_million_output(ratio)
            hosted_labels.append(f"{f.model_key}: {hosted.label} ${hosted.input}/${hosted.output}")
        per_model.append(
            {
                "model": f.model_key,
                "catalog_model": f.model,
                "output_tokens_per_second_per_replica": round(f.output_tokens_per_second, 1),
                "average_replicas": str(f.avg_replicas.normalize()),
                "million_output_tokens_per_month": str(mtok.quantize(Decimal("0.1"))),
                "gpu_per_million_output_tokens": money(gpu / mtok) if mtok else None,
                "throughput_basis": f.throughput_basis,
            }
        )
    if not total_mtok:
        return {"per_million_output_tokens": None, "tokens": None, "break_even": []}
    comparisons = [(a.key, a.label, a.per_million_output(ratio), a.source) for a in book.proprietary.values()]
    if hosted_labels and len(hosted_labels) == len(fleets):
        src = next(iter(book.hosted_open.values())).source
        comparisons.append(
            (
                "hosted-open",
                "hosted open models of the same size (" + "; ".join(hosted_labels) + ")",
                hosted_cost / total_mtok,
                src,
            )
        )
    break_even = []
    for key, label, blended, source in comparisons:
        api_monthly = blended * total_mtok
        break_even.append(
            {
                "api": key,
                "label": label,
                "usd_per_million_output_tokens": money(blended),
                "api_monthly_at_same_volume": money(api_monthly),
                "break_even_million_output_tokens_per_month": str((monthly_total / blended).quantize(Decimal("0.1"))),
                "self_hosting_cheaper": monthly_total < api_monthly,
                "source": f"{source.key} {source.date} ({source.quality})",
            }
        )
    return {
        "per_million_output_tokens": money(monthly_total / total_mtok),
        "tokens": {
            "utilisation": str(utilisation),
            "input_tokens_per_output_token": str(ratio),
            "million_output_tokens_per_month": str(total_mtok.quantize(Decimal("0.1"))),
            "aws_per_million_output_tokens": money(aws_monthly / total_mtok),
            "models": per_model,
        },
        "break_even": break_even,
    }


# --- the whole -------------------------------------------------------------------------------------


def stack_cost(plan: Mapping[str, Any], settings: Settings, book: PriceBook | None = None) -> dict[str, Any]:
    """The plan JSON's `cost` object for one stack."""
    base = book or default_book()
    try:
        book = base.with_overrides(settings.cost.prices)
    except KeyError as exc:
        raise InputError(
            [
                Problem(
                    path=f"cost.prices.{k}", message=f"no such price; choose one of {', '.join(sorted(base.prices))}"
                )
                for k in exc.args[0]
            ]
        ) from None
    p = Pricer(book=book, settings=settings.cost, region=settings.region, zones=len(settings.network.zone_ids))
    resource_lines, free = plan_lines(plan, settings, p)
    fleets = gpu_fleets(settings, plan)
    aws = [*fleet_lines(settings, fleets, p), *resource_lines, *controller_lines(plan, settings, p)]
    others = people_lines(settings.cost)
    lines = aws + others
    aws_monthly = sum((ln.monthly for ln in aws), Decimal(0))
    monthly = sum((ln.monthly for ln in lines), Decimal(0))
    annual = monthly * MONTHS_PER_YEAR
    low, high = BANDS[settings.preset.value]
    tokens = token_figures(settings, fleets, lines, monthly, aws_monthly, book)
    assumed_prices = sorted(
        {f"{k}: ${pr.usd} per {pr.unit} ({pr.source.citation})" for k, pr in p.used.items() if pr.assumed}
    )
    return {
        "currency": CURRENCY,
        "monthly_total": money(monthly),
        "annual_total": money(annual),
        "aws_monthly": money(aws_monthly),
        "aws_annual": money(aws_monthly * MONTHS_PER_YEAR),
        "by_category": {
            cat: money(sum((ln.monthly for ln in lines if ln.category == cat), Decimal(0)))
            for cat in ("aws", "people", "tools", "hidden")
        },
        "band": {
            "preset": settings.preset.value,
            "low": money(low),
            "high": money(high),
            "within": low <= annual <= high,
            "source": BAND_SOURCE,
        },
        "region": settings.region,
        "region_price_multiplier": str(p.region_multiplier),
        "lines": [ln.to_json() for ln in sorted(lines, key=_line_order)],
        "free": free,
        "unpriced": sorted(ln.id for ln in lines if ln.status != "priced"),
        "assumptions": {
            "prices": assumed_prices,
            "usage": dict(sorted(p.assumptions.items())),
            "hours_per_month": str(HOURS_PER_MONTH),
        },
        **tokens,
    }


_CATEGORY_ORDER = {"aws": 0, "people": 1, "tools": 2, "hidden": 3}
_GROUP_ORDER = {
    g: i
    for i, g in enumerate(
        ("compute", "platform", "network", "storage", "observability", "security", "usage", "unpriced", "not priced")
    )
}


def _line_order(ln: Line) -> tuple[int, int, str]:
    return (_CATEGORY_ORDER.get(ln.category, 9), _GROUP_ORDER.get(ln.group, 9), ln.id)
