"""The typed settings of one stack: what `modelyard:*` config means, with defaults and rules.

Every field documents its default and units; `docs/settings.md` is generated from these classes
(`python -m components.settings.reference --write`), and a test keeps it in step. Cross-field rules live in
`components.settings.cross_checks`; this module only declares shapes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from components import catalog
from components.catalog import WeightDtype
from components.contract import ALERT_ROUTES, ChartSource
from components.settings.schema import doc_field
from components.sizing.cold_start import WeightsCheck, WeightsLoad
from components.tagging import tags_for


class Tier(StrEnum):
    """The cost-of-ownership tiers teams budget for; a preset file names the one whose TCO band it is judged
    against (`tier`; the bands: BANDS in components/cost/estimate.py, docs/cost.md)."""

    MINIMAL = "minimal"
    MODERATE = "moderate"
    ENTERPRISE = "enterprise"


class NatMode(StrEnum):
    """How nodes in private subnets reach the internet."""

    NONE = "none"  # no route out: images come through the ECR pull-through cache, AWS APIs through endpoints
    SINGLE = "single"  # one NAT gateway in the first zone: cheap, but a zone outage cuts egress for all
    PER_ZONE = "per-zone"  # one NAT gateway per zone: egress survives the loss of a zone


class InterfaceEndpoint(StrEnum):
    """AWS services reachable through VPC interface endpoints (PrivateLink), by service suffix."""

    ECR_API = "ecr.api"
    ECR_DKR = "ecr.dkr"
    STS = "sts"
    EKS = "eks"
    EKS_AUTH = "eks-auth"
    EC2 = "ec2"
    ELASTIC_LOAD_BALANCING = "elasticloadbalancing"
    SQS = "sqs"
    KMS = "kms"
    LOGS = "logs"
    SSM = "ssm"
    BEDROCK_RUNTIME = "bedrock-runtime"  # the gateway's Bedrock fallbacks (InvokeModel), where there is no NAT
    APS_WORKSPACES = "aps-workspaces"  # Prometheus's remote write to Amazon Managed Service for Prometheus


# What a node with no NAT needs (docs/network.md#endpoints): image pulls (ECR api, dkr; layers come from S3
# through the gateway endpoint), Pod Identity and IRSA (STS, EKS auth), Karpenter (EC2, SQS for the
# interruption queue), the Load Balancer Controller (ELB), envelope encryption (KMS), logs (CloudWatch).
ENDPOINTS_WITHOUT_NAT: tuple[InterfaceEndpoint, ...] = (
    InterfaceEndpoint.ECR_API,
    InterfaceEndpoint.ECR_DKR,
    InterfaceEndpoint.STS,
    InterfaceEndpoint.EKS_AUTH,
    InterfaceEndpoint.EC2,
    InterfaceEndpoint.ELASTIC_LOAD_BALANCING,
    InterfaceEndpoint.SQS,
    InterfaceEndpoint.KMS,
    InterfaceEndpoint.LOGS,
)


class FlowLogTraffic(StrEnum):
    ALL = "ALL"
    ACCEPT = "ACCEPT"
    REJECT = "REJECT"


# A preset's name is its file's name in stacks/presets/ and the value of the modelyard:preset tag.
PRESET_NAME = r"[a-z0-9]([a-z0-9_-]{0,62}[a-z0-9])?"
PRESET_NAME_DOC = "1-64 lower-case letters, digits, '-' and '_', starting and ending with a letter or digit"


# A Pulumi stack name as Pulumi's backends check it (validateStackName, pulumi/pkg/backend): at most 100 letters,
# digits, '_', '.' and '-'. The kit also wants a letter or digit first: the name is part of a file name.
STACK_NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}"
STACK_NAME_DOC = "a Pulumi stack name: 1-100 letters, digits, '_', '.' and '-', starting with a letter or digit"


# The retention periods CloudWatch Logs accepts (PutRetentionPolicy, logs API reference), in days.
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)


class PoolKind(StrEnum):
    """Who adds and removes a pool's nodes."""

    ELASTIC = "elastic"  # Karpenter NodePool: scales with pending pods, to zero, within max_gpus
    STATIC = "static"  # EKS managed node group: fixed or reserved capacity, min_nodes always running


class Capacity(StrEnum):
    """How a pool's instances are bought."""

    ON_DEMAND = "on-demand"
    # Interruptible, priced at the catalog's sourced discounts (docs/sources.md#spot-and-commitment-discounts);
    # elastic pools only.
    SPOT = "spot"
    RESERVATION = "reservation"  # an on-demand capacity reservation (ODCR): one zone, static pools
    CAPACITY_BLOCK = "capacity-block"  # a Capacity Block for ML: a paid, time-boxed block in one zone


class Interconnect(StrEnum):
    STANDARD = "standard"
    EFA = "efa"  # Elastic Fabric Adapter, for models split across nodes: one zone, EFA-capable types


class DataPolicy(StrEnum):
    """Whether a tenant's prompts may leave the VPC."""

    IN_VPC = "in-vpc"  # never: no fallback to a proprietary API, whatever the gateway allows
    EXTERNAL_ALLOWED = "external-allowed"  # the gateway may fall back to an allowed proprietary API


class TenantEgress(StrEnum):
    """Where a tenant's pods may open connections besides DNS, the gateway, the Pod Identity agent and their own
    namespace (docs/security.md#tenant-egress)."""

    NONE = "none"  # nothing else: for tenants that own no model servers (those copy their weights from S3)
    S3 = "s3"  # HTTPS to the S3 address ranges of the stack's region only (components/catalog/s3_ranges.yaml)
    INTERNET = "internet"  # HTTPS to any public address too (with NAT); only for data external-allowed


class EndpointAccess(StrEnum):
    """Who can reach the cluster's Kubernetes API endpoint."""

    PRIVATE = "private"  # only from inside the VPC (a deploy runner there, or a VPN/peering path)
    PUBLIC_AND_PRIVATE = "public-and-private"  # nodes use the private endpoint; the public one admits public_cidrs


class Layers(StrEnum):
    """How a deployment's two layers (AWS resources, Kubernetes objects) map to Pulumi stacks (docs/deploy.md)."""

    ONE_STACK = "one-stack"  # one stack holds both: whoever runs `pulumi up` must reach the API endpoint
    SPLIT = "split"  # this stack: the AWS layer and a deploy runner in the VPC; the Kubernetes layer: its own stack


class StackLayer(StrEnum):
    """What one stack builds (set by the kit from deploy.layers and `modelyard:layer_of`, not a config key)."""

    ALL = "all"
    AWS = "aws"
    KUBERNETES = "kubernetes"


class RunnerCompute(StrEnum):
    """CodeBuild compute types for the deploy runner (docs/deploy.md)."""

    SMALL = "BUILD_GENERAL1_SMALL"  # 2 vCPU, 3 GB: enough for `pulumi up` of the Kubernetes layer
    MEDIUM = "BUILD_GENERAL1_MEDIUM"  # 4 vCPU, 7 GB


class ExtraLogType(StrEnum):
    """Control-plane log types beyond the api, audit and authenticator logs the kit always enables."""

    CONTROLLER_MANAGER = "controllerManager"
    SCHEDULER = "scheduler"


# Kubernetes versions the kit's add-on table (components/aws/addons.py) has pinned add-ons for.
EKS_VERSIONS = ("1.33",)

_ARN = r"arn:aws(-[a-z]+)*:iam::\d{12}:(role|user)/[\w+=,.@/-]+"
# A secret setting other than a gateway key (which has its own rule). At least 8 characters: the kit looks for each
# secret in every other setting, where someone may have pasted it, and a shorter one would match ordinary words.
_SECRET = r"[\x21-\x7e]{8,4096}"
_SECRET_DOC = "8 to 4096 printable characters without spaces"
_ACM_CERTIFICATE_ARN = r"arn:aws(-[a-z]+)*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]{36}"
_TAG_KEY = r"(?!aws:)[\w .:/=+\-@]{1,128}"


@dataclass(frozen=True, kw_only=True)
class FlowLogSettings:
    retention_days: int = doc_field("days CloudWatch keeps VPC flow logs", default=90, allowed=LOG_RETENTION_DAYS)
    traffic: FlowLogTraffic = doc_field("which traffic is logged", default=FlowLogTraffic.ALL)


@dataclass(frozen=True, kw_only=True)
class NetworkSettings:
    cidr: str = doc_field(
        "the VPC's IPv4 range, a private /16 to /20. It belongs to the stack, not the tier: no preset sets it, "
        'and a change replaces the VPC and everything in it (docs/upgrades.md, "Changing tier"): set it in the '
        "stack file",
        default="10.40.0.0/16",
        pattern=r"\d{1,3}(\.\d{1,3}){3}/\d{1,2}",
        pattern_doc="an IPv4 CIDR such as 10.0.0.0/16",
    )
    zone_ids: tuple[str, ...] = doc_field(
        "2 or 3 availability-zone IDs of the region (IDs, e.g. use1-az1, name the same zone in every account)"
    )
    nat: NatMode = doc_field(
        "NAT gateways for egress from private subnets. Like cidr it belongs to the stack: `modelyard init` pins the "
        "preset's in the stack file, so that a move to another preset keeps it; a change to none deletes the public "
        'subnets and NAT gateways (docs/upgrades.md, "Changing tier")',
        default=NatMode.SINGLE,
    )
    interface_endpoints: tuple[InterfaceEndpoint, ...] | None = doc_field(
        "interface endpoints to create; null: when nat is none, all that a node without NAT needs, plus "
        "bedrock-runtime when a tenant may fall back to Bedrock (gateway.fallbacks) and aps-workspaces with "
        "monitoring.remote_write; else none",
        default=None,
    )
    flow_logs: FlowLogSettings = doc_field("VPC flow logs to CloudWatch", default_factory=FlowLogSettings)
    s3_endpoint_buckets: tuple[str, ...] = doc_field(
        "other S3 buckets of the region that nodes and pods may use through the S3 gateway endpoint (as IAM "
        "allows); the endpoint admits only these, the stack's own buckets and the AWS-owned ones nodes read "
        "(ECR image layers, Amazon Linux repositories; docs/network.md#the-s3-gateway-endpoints-policy)",
        default=(),
        pattern=r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]",
        pattern_doc="an S3 bucket name: 3-63 lower-case letters, digits, '.' and '-'",
    )


@dataclass(frozen=True, kw_only=True)
class PoolSettings:
    instance_types: tuple[str, ...] = doc_field(
        "GPU instance types from the catalog (several only for elastic pools, where Karpenter picks)"
    )
    max_gpus: int = doc_field("the pool's GPU ceiling: its budget limit, in GPUs", minimum=1, maximum=4096)
    kind: PoolKind = doc_field("who scales the pool", default=PoolKind.ELASTIC)
    capacity: Capacity = doc_field("how instances are bought", default=Capacity.ON_DEMAND)
    min_nodes: int = doc_field(
        "nodes kept running (elastic: 0 lets the pool scale to zero)", default=0, minimum=0, maximum=512
    )
    zone_ids: tuple[str, ...] = doc_field(
        "zones the pool may use, a subset of network.zone_ids; empty: all of them", default=()
    )
    reservation_id: str | None = doc_field(
        "the capacity reservation or capacity block id (cr-...) for capacity reservation or capacity-block",
        default=None,
        pattern=r"cr-[0-9a-f]{17}",
        pattern_doc="a capacity reservation id such as cr-0123456789abcdef0",
    )
    interconnect: Interconnect = doc_field("network between the pool's nodes", default=Interconnect.STANDARD)
    node_launch_seconds: int | None = doc_field(
        "seconds from Karpenter's launch request to a node advertising its GPUs, as your team measured it (e.g. "
        "with awslabs/node-latency-for-k8s); the cold-start estimate, the rollout deadline and `modelyard simulate` "
        "use it; null: the catalog's figure for the pool's slowest instance family (an unverified 300 s budget)",
        default=None,
        minimum=10,
        maximum=3600,
    )


@dataclass(frozen=True, kw_only=True)
class ReplicaSettings:
    min: int = doc_field("replicas always running", default=1, minimum=1, maximum=256)
    max: int = doc_field("replicas the autoscaler may reach", default=1, minimum=1, maximum=256)


@dataclass(frozen=True, kw_only=True)
class ModelWeightsSettings:
    """How a model's weights reach its GPUs at every replica start (docs/serving.md, "Cold starts")."""

    load: WeightsLoad | None = doc_field(
        "copy: an init container copies the checkpoint to the node's NVMe, vLLM reads the local files; stream: vLLM "
        "streams the safetensors from S3 into GPU memory (--load-format runai_streamer), no copy and no local disk; "
        "fsx: vLLM reads the files from the stack's FSx for Lustre file system, mounted read-only (needs "
        "storage.fsx); null: stream for a replica on one node, copy for one spanning several (streaming is refused "
        "there)",
        default=None,
    )
    check: WeightsCheck = doc_field(
        "before vLLM starts, against the revision's manifest.json (`models push` hashed every byte at upload): "
        "quick: every file present with its size and SHA-256 record, and the manifest's own SHA-256; full: every "
        "byte hashed again (the copy, or a full read of the bucket's objects: minutes for the largest models)",
        default=WeightsCheck.QUICK,
    )


# FSx for Lustre PERSISTENT_2 (SSD): MB/s of throughput per TiB of storage that AWS allows (FSx API reference,
# UpdateFileSystemLustreConfiguration.PerUnitStorageThroughput: 125, 250, 500 and 1000 for PERSISTENT_2 SSD).
FSX_THROUGHPUT_PER_TIB = (125, 250, 500, 1000)
# Storage capacity AWS allows for PERSISTENT_2 SSD (FSx API reference, CreateFileSystem.StorageCapacity): 1200 GiB,
# 2400 GiB, then increments of 2400 GiB. The largest a file system may start with without a quota increase is not
# checked here.
FSX_FIRST_CAPACITIES_GIB = (1200, 2400)
FSX_CAPACITY_STEP_GIB = 2400


@dataclass(frozen=True, kw_only=True)
class FsxSettings:
    """An FSx for Lustre file system (PERSISTENT_2, SSD) whose /models is linked to the model bucket's models/ prefix,
    mounted read-only by the servers of the models with `weights.load: fsx` (docs/storage.md, "FSx for Lustre")."""

    storage_capacity_gib: int = doc_field(
        "storage, GiB: 1200, 2400 or a multiple of 2400 (what AWS allows for PERSISTENT_2 SSD); it holds the "
        "checkpoints the servers read, and sets the throughput",
        default=2400,
        minimum=1200,
        maximum=2_457_600,
    )
    throughput_per_tib: int = doc_field(
        "provisioned read and write throughput, MB/s per TiB of storage (PERSISTENT_2 SSD): 125, 250, 500 or 1000; "
        "the file system's baseline is this times the capacity in TiB",
        default=1000,
        allowed=FSX_THROUGHPUT_PER_TIB,
    )
    zone_id: str | None = doc_field(
        "the zone (a network.zone_ids entry) the file system's single subnet is in: Lustre serves from one zone; "
        "pods in other zones mount it across zones (slower, and inter-zone traffic is billed); null: the first "
        "network zone that every pool of an fsx model may use, else the first network zone",
        default=None,
    )

    @property
    def throughput_mb_per_second(self) -> float:
        """The file system's baseline throughput, MB/s: the per-TiB figure times the capacity in TiB."""
        return self.throughput_per_tib * self.storage_capacity_gib / 1024


@dataclass(frozen=True, kw_only=True)
class StorageReplicaSettings:
    """A copy of the model bucket in another region, kept by S3 replication (docs/regions.md)."""

    tenants: tuple[str, ...] = doc_field(
        "tenants (keys of tenants) whose prefix tenants/<tenant>/ is replicated there as well as models/; a tenant "
        "pinned to regions (tenants.<t>.regions) only to one of its regions",
        default=(),
    )
    models: tuple[str, ...] = doc_field(
        "models (keys of models) whose weights are replicated there, each under its own prefix "
        "models/<catalog name>/: the models the replica's region serves; empty: all of models/",
        default=(),
    )
    cell: str | None = doc_field(
        "the cell of a deployment across regions (the stack holding its AWS layer, in this region) whose own model "
        "bucket is the replica: replication writes into that bucket with that cell's key, read through a stack "
        "reference (docs/regions.md), and the cell's servers read the weights there; null: this stack creates the "
        "replica's bucket and key",
        default=None,
        pattern=STACK_NAME,
        pattern_doc=STACK_NAME_DOC,
    )


@dataclass(frozen=True, kw_only=True)
class StorageSettings:
    fsx: FsxSettings | None = doc_field(
        "an FSx for Lustre file system linked to the model bucket (servers with weights.load fsx read from it); "
        "null: none",
        default=None,
    )
    replicas: Mapping[str, StorageReplicaSettings] = doc_field(
        "by AWS region (not the stack's): a replica of the model bucket there (its own KMS key, versioned, private, "
        "TLS only, kept), filled by S3 replication of models/ and of the tenants' prefixes it lists; new objects only "
        "(docs/regions.md#existing-objects); empty: no replica",
        default_factory=lambda: MappingProxyType({}),
    )


@dataclass(frozen=True, kw_only=True)
class ServingImageSettings:
    """A vLLM image of your own in place of the kit's pinned one: built FROM it (the same vLLM version), e.g. to
    add aws-ofi-nccl for NCCL over EFA. The kit's flags, scripts and metric names are that version's."""

    registry: str = doc_field(
        "registry host and path prefix, such as 111122223333.dkr.ecr.us-east-1.amazonaws.com/ml",
        pattern=r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?(/[a-z0-9._-]+)*",
        pattern_doc="a registry host (lower case) with an optional port and path prefix",
    )
    repository: str = doc_field(
        "repository within the registry, such as vllm-openai-efa",
        pattern=r"[a-z0-9]+([._/-][a-z0-9]+)*",
        pattern_doc="lower-case letters and digits separated by . _ / -",
    )
    tag: str = doc_field(
        "the image's tag (shown in the pod spec; the digest is what is pulled)",
        pattern=r"(?!latest$)[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}",
        pattern_doc="a Docker tag other than latest: letters, digits, _ . -, at most 128, not starting with . or -",
    )
    digest: str = doc_field(
        "the image's digest: an image is pinned, never pulled by tag alone",
        pattern=r"sha256:[0-9a-f]{64}",
        pattern_doc="sha256:<64 lower-case hex>",
    )


# A revision is a folder of the bucket and a Kubernetes label value (REVISION_LABEL on the servers).
REVISION_PATTERN = r"[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?"
REVISION_PATTERN_DOC = "1-63 letters, digits, '.', '_' or '-', beginning and ending with a letter or digit"


@dataclass(frozen=True, kw_only=True)
class CanarySettings:
    """A second server set for a new revision beside the stable one (docs/lifecycle.md): same pool, same served name,
    a share of the model's traffic at the gateway. Promote: set the model's `revision` to this one and drop `canary`;
    roll back: drop `canary`."""

    revision: str = doc_field(
        "the candidate revision, pushed to models/<name>/<revision>/ like the stable one (differs from `revision`)",
        pattern=REVISION_PATTERN,
        pattern_doc=REVISION_PATTERN_DOC,
    )
    weight: int = doc_field(
        "percent of the model's requests the gateway sends to the canary (the stable servers get the rest)",
        minimum=1,
        maximum=99,
    )
    replicas: ReplicaSettings = doc_field(
        "the canary's own replica counts (its GPUs count against the pool's max_gpus and the owner's gpu_quota)",
        default_factory=ReplicaSettings,
    )


@dataclass(frozen=True, kw_only=True)
class ModelSettings:
    model: str = doc_field("a model of the catalog, by name or Hugging Face repository id")
    pool: str = doc_field("the GPU pool (a key of pools) the model's replicas run on")
    revision: str = doc_field(
        "the revision pushed to models/<name>/<revision>/ in the model bucket",
        default="main",
        pattern=REVISION_PATTERN,
        pattern_doc=REVISION_PATTERN_DOC,
    )
    dtype: WeightDtype | None = doc_field(
        "weight precision served (fp8 needs L4, L40S, H100, H200 or B200); null: the model's native precision",
        default=None,
    )
    context: int = doc_field(
        "maximum tokens per sequence (prompt + output), vLLM --max-model-len",
        default=8192,
        minimum=512,
        maximum=1_048_576,
    )
    concurrency: int = doc_field(
        "sequences served at once per replica, vLLM --max-num-seqs", default=16, minimum=1, maximum=1024
    )
    replicas: ReplicaSettings = doc_field("replica counts", default_factory=ReplicaSettings)
    owner: str | None = doc_field(
        "the tenant whose namespace, GPU quota and storage role the servers use; null: the only tenant that "
        "lists the model (required when several do)",
        default=None,
    )
    await_ready: bool = doc_field(
        "`pulumi up` waits until the servers are ready (up to image pull + weight copy + load); false for a "
        "first `up` before the weights are pushed: the servers then wait for their manifest, `up` does not",
        default=True,
    )
    weights: ModelWeightsSettings = doc_field(
        "how the weights reach the GPUs at each start, and how they are checked",
        default_factory=ModelWeightsSettings,
    )
    image: ServingImageSettings | None = doc_field(
        "a vLLM image built FROM the kit's pinned one (docs/serving.md), e.g. with aws-ofi-nccl for a multi-node "
        "model's NCCL over EFA; null: the kit's pinned image",
        default=None,
    )
    canary: CanarySettings | None = doc_field(
        "a canary of a new revision beside the stable servers, with a share of the traffic; null: none",
        default=None,
    )


@dataclass(frozen=True, kw_only=True)
class TenantSettings:
    models: tuple[str, ...] = doc_field("models (keys of models) the tenant may call")
    gpu_quota: int = doc_field("GPUs the tenant's namespace may request", default=0, minimum=0, maximum=4096)
    principals: tuple[str, ...] = doc_field(
        "IAM role or user ARNs of the team, given access to its namespace",
        default=(),
        pattern=_ARN,
        pattern_doc="an IAM role or user ARN",
    )
    dedicated_pool: str | None = doc_field("a pool (a key of pools) only this tenant may use", default=None)
    data: DataPolicy = doc_field("whether prompts may leave the VPC", default=DataPolicy.IN_VPC)
    regions: tuple[str, ...] = doc_field(
        "AWS regions the tenant's models may be served in and its data (prompts, tenants/<tenant>/) kept in "
        "(residency, docs/regions.md); a stack in another region, a replica of its prefix elsewhere, and a fallback "
        "to an API outside the stack's region are refused; empty: not pinned",
        default=(),
    )
    egress: TenantEgress = doc_field(
        "where the tenant's pods may connect besides DNS, the gateway, the Pod Identity agent and their namespace: "
        "none; s3 (HTTPS to the region's S3 ranges, what model servers need to copy their weights); internet "
        "(HTTPS to any public address as well: needs network.nat and data external-allowed)",
        default=TenantEgress.S3,
    )
    rpm_limit: int | None = doc_field(
        "requests a minute the gateway admits from all the tenant's keys together, per gateway replica (all "
        "replicas together with gateway.redis); null: its share of the GPUs, gateway.tenant_limits.rpm_per_gpu x "
        'gpu_quota (docs/gateway.md, "Limits")',
        default=None,
        minimum=1,
        maximum=10_000_000,
    )
    tpm_limit: int | None = doc_field(
        "tokens (prompt + output) a minute the gateway admits from all the tenant's keys together, as rpm_limit; "
        "null: gateway.tenant_limits.tpm_per_gpu x gpu_quota",
        default=None,
        minimum=1,
        maximum=10_000_000_000,
    )
    unlimited: bool = doc_field(
        "deliberately admit any rate from the tenant's keys: no rpm or tpm limit, set or derived (excludes "
        "rpm_limit and tpm_limit); the tenant can then take every GPU of the models it calls",
        default=False,
    )

    def rate_limits(self, per_gpu: TenantLimitSettings) -> tuple[int | None, int | None]:
        """(rpm, tpm) all the tenant's keys together may send: its own limits, else per_gpu's rates x gpu_quota;
        (None, None) only when it is unlimited."""
        if self.unlimited:
            return None, None
        rpm = self.rpm_limit if self.rpm_limit is not None else per_gpu.rpm_per_gpu * self.gpu_quota
        tpm = self.tpm_limit if self.tpm_limit is not None else per_gpu.tpm_per_gpu * self.gpu_quota
        return rpm, tpm


@dataclass(frozen=True, kw_only=True)
class TenantLimitSettings:
    """A tenant's share of the GPUs as gateway limits, for tenants that set none (docs/gateway.md, "Limits")."""

    rpm_per_gpu: int = doc_field(
        "requests a minute a tenant's keys may send per GPU of its gpu_quota (default: what one L40S serves of "
        "Llama 3.1 8B, 484.0 output tokens/s x 60 / 150 output tokens a request, rounded down)",
        default=190,
        minimum=1,
        maximum=100_000,
    )
    tpm_per_gpu: int = doc_field(
        "tokens (prompt + output) a minute a tenant's keys may send per GPU of its gpu_quota (default: one L40S on "
        "Llama 3.1 8B, 484.0 output tokens/s x 60 x (1 + 3 prompt tokens per output token), rounded down)",
        default=110_000,
        minimum=1,
        maximum=100_000_000,
    )


class GatewayExposure(StrEnum):
    """Who can reach the gateway's endpoint."""

    INTERNAL = "internal"  # inside the VPC (and what is peered or VPN-connected to it)
    PUBLIC = "public"  # the internet, through a public load balancer


class FallbackProvider(StrEnum):
    """Proprietary APIs the gateway can fall back to."""

    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    BEDROCK = "bedrock"  # Amazon Bedrock in the stack's region, called with the gateway's AWS role


@dataclass(frozen=True, kw_only=True)
class FallbackSettings:
    provider: FallbackProvider = doc_field("the API a failing self-hosted model falls back to")
    model: str = doc_field(
        "the provider's model id (gpt-4o, claude-sonnet-4-5, anthropic.claude-3-5-sonnet-20240620-v1:0)",
        pattern=r"[A-Za-z0-9._:/@-]{1,128}",
        pattern_doc="1-128 letters, digits and ._:/@-",
    )
    api_key: str | None = doc_field(
        "the provider's API key, as a Pulumi secret (`secure:`); kept in a Secret of its own; openai and "
        "anthropic only",
        default=None,
        pattern=_SECRET,
        pattern_doc=_SECRET_DOC,
        secret=True,
    )


@dataclass(frozen=True, kw_only=True)
class GatewayKeySettings:
    """One API key of the gateway: an application's or a team's, calling for one tenant."""

    key: str = doc_field(
        "the key clients send (`Authorization: Bearer <key>`), as a Pulumi secret (`secure:`); the cluster keeps "
        "only its SHA-256 digest, in a Secret of its own",
        pattern=r"[\x21-\x7e]{20,256}",
        pattern_doc="20 to 256 printable characters without spaces, such as sk-$(openssl rand -hex 24)",
        secret=True,
    )
    tenant: str | None = doc_field(
        "the tenant the key calls for (a key of tenants): its models, its limits, its data policy; null: the "
        "tenant with the key's own name",
        default=None,
    )
    rpm_limit: int | None = doc_field(
        "requests a minute the gateway admits from this key, per gateway replica (all replicas together with "
        "gateway.redis), within its tenant's rpm_limit; null: only the tenant's limit",
        default=None,
        minimum=1,
        maximum=10_000_000,
    )
    tpm_limit: int | None = doc_field(
        "tokens (prompt + output) a minute the gateway admits from this key, as rpm_limit; null: only the "
        "tenant's limit",
        default=None,
        minimum=1,
        maximum=10_000_000_000,
    )


@dataclass(frozen=True, kw_only=True)
class GatewayDatabaseSettings:
    """RDS PostgreSQL for LiteLLM's teams, budgets and spend (components/aws/gateway_state.py)."""

    instance_class: str = doc_field(
        "RDS instance class; one the cost model prices (components/cost/prices.yaml rds_<class>_hour)",
        default="db.t4g.medium",
        pattern=r"db\.[a-z0-9]+\.[a-z0-9]+",
        pattern_doc="an RDS instance class such as db.t4g.medium",
    )
    storage_gb: int = doc_field(
        "gp3 storage, GiB (RDS PostgreSQL takes 20 to 65,536)", default=20, minimum=20, maximum=65536
    )
    backup_days: int = doc_field(
        "days automated backups (point-in-time recovery) are kept", default=7, minimum=1, maximum=35
    )
    multi_az: bool = doc_field(
        "a synchronous standby in another zone that RDS fails over to (about twice the price)", default=False
    )


@dataclass(frozen=True, kw_only=True)
class GatewayRedisSettings:
    """ElastiCache (Valkey) shared by the gateway's replicas for their rate-limit counters."""

    node_type: str = doc_field(
        "ElastiCache node type; one the cost model prices (components/cost/prices.yaml elasticache_valkey_<type>_hour)",
        default="cache.t4g.small",
        pattern=r"cache\.[a-z0-9]+\.[a-z0-9]+",
        pattern_doc="an ElastiCache node type such as cache.t4g.small",
    )
    nodes: int = doc_field(
        "nodes: one primary and its replicas, spread over the zones; 2 or more for automatic failover",
        default=2,
        minimum=1,
        maximum=6,
    )
    snapshot_days: int = doc_field("days daily snapshots are kept", default=1, minimum=1, maximum=35)


@dataclass(frozen=True, kw_only=True)
class GatewaySettings:
    """The LiteLLM gateway: one OpenAI-compatible endpoint for every tenant (docs/gateway.md)."""

    exposure: GatewayExposure = doc_field(
        "who can reach the endpoint's load balancer (with hostname): internal, an NLB in the private subnets; "
        "public, an internet-facing NLB in the public subnets (needs public_zone_id and allowed_cidrs)",
        default=GatewayExposure.INTERNAL,
    )
    hostname: str | None = doc_field(
        "the endpoint's DNS name (llm.example.com): the kit creates an NLB with a TLS listener on 443, its "
        "certificate and DNS record (internal: a private hosted zone of exactly this name, attached to the VPC); "
        "null: no load balancer, the gateway is an in-cluster Service only",
        default=None,
        pattern=r"(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?",
        pattern_doc="a lower-case DNS name of two labels or more, such as llm.example.com",
    )
    certificate_arn: str | None = doc_field(
        "an ACM certificate for hostname, in the stack's region (imported, or issued by ACM Private CA); null: "
        "the kit requests a public ACM certificate, validated by DNS in public_zone_id",
        default=None,
        pattern=_ACM_CERTIFICATE_ARN,
        pattern_doc="an ACM certificate ARN such as arn:aws:acm:us-east-1:111122223333:certificate/<uuid>",
    )
    public_zone_id: str | None = doc_field(
        "a Route 53 public hosted zone of hostname's domain: where the kit validates the certificate it requests "
        "and, with exposure public, where the endpoint's record goes",
        default=None,
        pattern=r"Z[A-Z0-9]{1,31}",
        pattern_doc="a Route 53 hosted zone id such as Z0123456789ABCDEFGHIJ",
    )
    allowed_cidrs: tuple[str, ...] = doc_field(
        "IPv4 CIDRs admitted on 443 by the load balancer's security group; empty with exposure internal: the "
        "VPC's CIDR (private ranges only); required with exposure public (public ranges; 0.0.0.0/0 only with "
        "allow_public_world)",
        default=(),
        pattern=r"\d{1,3}(\.\d{1,3}){3}/\d{1,2}",
        pattern_doc="an IPv4 CIDR such as 198.51.100.0/24",
    )
    allow_public_world: bool = doc_field(
        "deliberately admit the whole internet (0.0.0.0/0) to a public endpoint: the tenants' keys are then its "
        "only guard",
        default=False,
    )
    replicas: int = doc_field(
        "gateway replicas, spread across zones",
        default=2,
        minimum=1,
        maximum=20,
    )
    keys: Mapping[str, GatewayKeySettings] = doc_field(
        "API keys by name (one per application or team; the name shows in metrics as api_key_alias), each "
        "calling for one tenant; a tenant without a key cannot call the gateway",
        default_factory=lambda: MappingProxyType({}),
        key_pattern=r"[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?",
        key_pattern_doc="a name like a tenant's: 1-40 lower-case letters, digits and -",
    )
    master_key: str | None = doc_field(
        "the proxy admin's key, as a Pulumi secret (`secure:`), in a Secret of its own; null: no admin key",
        default=None,
        pattern=_SECRET,
        pattern_doc=_SECRET_DOC,
        secret=True,
    )
    fallbacks: Mapping[str, FallbackSettings] = doc_field(
        "by model (a key of models): the proprietary model its requests fall back to when the self-hosted "
        "servers fail, for tenants with data external-allowed only",
        default_factory=lambda: MappingProxyType({}),
    )
    tenant_limits: TenantLimitSettings = doc_field(
        "each tenant's rpm and tpm limits where it sets none: rates per GPU of its gpu_quota",
        default_factory=TenantLimitSettings,
    )
    model_rpm: Mapping[str, int] = doc_field(
        "by model (a key of models): requests a minute the gateway sends to its servers, all tenants together, "
        "per gateway replica (all replicas together with gateway.redis); a model not listed is not limited",
        default_factory=lambda: MappingProxyType({}),
        minimum=1,
        maximum=10_000_000,
    )
    database: GatewayDatabaseSettings | None = doc_field(
        "PostgreSQL for tenant budgets and spend (LiteLLM teams, docs/gateway.md); null: none, static keys only",
        default=None,
    )
    redis: GatewayRedisSettings | None = doc_field(
        "Valkey (Redis protocol) for rate limits shared by all gateway replicas; null: each replica counts alone",
        default=None,
    )

    def key_tenants(self) -> Mapping[str, str]:
        """Key name -> the tenant it calls for."""
        return {name: key.tenant or name for name, key in self.keys.items()}


@dataclass(frozen=True, kw_only=True)
class SystemNodeSettings:
    instance_type: str = doc_field(
        "instance type of the on-demand system node group (add-ons, controllers): a system type of the catalog",
        default="m7i.large",
    )
    min_nodes: int = doc_field("fewest system nodes", default=2, minimum=1, maximum=10)
    max_nodes: int = doc_field("most system nodes", default=4, minimum=1, maximum=10)
    desired_nodes: int = doc_field(
        "system nodes at creation (later changes in AWS are kept: the kit ignores drift here)",
        default=2,
        minimum=1,
        maximum=10,
    )


class ImageCacheMode(StrEnum):
    """Whether images are pulled through the account's ECR pull-through cache."""

    AUTO = "auto"  # on when network.nat is none (nodes cannot reach public registries), off otherwise
    ON = "on"
    OFF = "off"


@dataclass(frozen=True, kw_only=True)
class ImageCacheSettings:
    mode: ImageCacheMode = doc_field("when to pull through the cache", default=ImageCacheMode.AUTO)
    docker_hub_secret_arn: str | None = doc_field(
        "Secrets Manager ARN (name starting ecr-pullthroughcache/) of Docker Hub credentials; without it "
        "Docker Hub images (vLLM, LiteLLM) cannot be cached",
        default=None,
        pattern=r"arn:aws(-[a-z]+)*:secretsmanager:[a-z0-9-]+:\d{12}:secret:ecr-pullthroughcache/[A-Za-z0-9/_+=.@-]+",
        pattern_doc="a Secrets Manager secret ARN whose name starts with ecr-pullthroughcache/",
    )
    github_secret_arn: str | None = doc_field(
        "Secrets Manager ARN (name starting ecr-pullthroughcache/) of GitHub Container Registry credentials",
        default=None,
        pattern=r"arn:aws(-[a-z]+)*:secretsmanager:[a-z0-9-]+:\d{12}:secret:ecr-pullthroughcache/[A-Za-z0-9/_+=.@-]+",
        pattern_doc="a Secrets Manager secret ARN whose name starts with ecr-pullthroughcache/",
    )


@dataclass(frozen=True, kw_only=True)
class ClusterSettings:
    version: str = doc_field("the EKS Kubernetes version (minor), pinned", default="1.33", allowed=EKS_VERSIONS)
    endpoint: EndpointAccess = doc_field(
        "API endpoint access; the private endpoint is always on", default=EndpointAccess.PRIVATE
    )
    public_cidrs: tuple[str, ...] = doc_field(
        "IPv4 CIDRs admitted to the public endpoint (required with public-and-private; 0.0.0.0/0 only with "
        "allow_public_world)",
        default=(),
        pattern=r"\d{1,3}(\.\d{1,3}){3}/\d{1,2}",
        pattern_doc="an IPv4 CIDR such as 203.0.113.0/24",
    )
    private_access_cidrs: tuple[str, ...] = doc_field(
        "private IPv4 CIDRs admitted to the private endpoint on 443: where `pulumi up` runs for a private "
        "cluster (a runner inside the VPC, or a network joined by VPN, Direct Connect or peering)",
        default=(),
        pattern=r"\d{1,3}(\.\d{1,3}){3}/\d{1,2}",
        pattern_doc="an IPv4 CIDR such as 10.60.0.0/16",
    )
    allow_public_world: bool = doc_field(
        "deliberately admit the whole internet (0.0.0.0/0) to the public API endpoint; never in production",
        default=False,
    )
    admins: tuple[str, ...] = doc_field(
        "IAM role or user ARNs given cluster-admin through access entries (the deploying principal is admin already)",
        default=(),
        pattern=_ARN,
        pattern_doc="an IAM role or user ARN",
    )
    log_retention_days: int = doc_field(
        "days CloudWatch keeps control-plane logs", default=90, allowed=LOG_RETENTION_DAYS
    )
    extra_log_types: tuple[ExtraLogType, ...] = doc_field(
        "control-plane log types beyond api, audit and authenticator (always on)", default=()
    )
    system_nodes: SystemNodeSettings = doc_field(
        "the small managed node group for add-ons and controllers", default_factory=SystemNodeSettings
    )
    image_cache: ImageCacheSettings = doc_field(
        "the ECR pull-through cache nodes pull public images through", default_factory=lambda: ImageCacheSettings()
    )


_KMS_KEY_ARN = r"arn:aws(-[a-z]+)*:kms:[a-z0-9-]+:\d{12}:key/[0-9a-f-]{36}"


# The traffic profiles the kit ships (components/simulate/data/<name>.csv, written by components.simulate.generate).
SHIPPED_TRAFFIC = ("bursty", "diurnal", "steady")


@dataclass(frozen=True, kw_only=True)
class TrafficSettings:
    """A traffic profile the plan replays against the stack (docs/simulate.md#6-in-pull-requests)."""

    trace: str | None = doc_field(
        "a shipped profile (steady, diurnal, bursty) or a trace file's path from the project folder (.csv: the "
        "Azure LLM inference trace; .jsonl); the plan's cost then carries the simulated TTFT attainment and cost per "
        "token, and the plan diff of a pull request their change; null: none",
        default=None,
        pattern=r"[A-Za-z0-9_][A-Za-z0-9_./-]*",
        pattern_doc="a profile name or a relative path",
    )
    model: str | None = doc_field(
        "the model every request of the trace goes to (a key of models); null: the stack's only model, or the "
        "JSONL's own",
        default=None,
    )
    tenant: str | None = doc_field(
        "the tenant every request comes from (a key of tenants); null: the only tenant that calls the model, or "
        "the JSONL's own",
        default=None,
    )
    rate_scale: float = doc_field("arrivals x this (docs/simulate.md)", default=1.0, minimum=0.01, maximum=1000)


# An image reference pinned by digest: [registry/]repository[:tag]@sha256:<64 hex>.
IMAGE_BY_DIGEST = (
    r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?(/[a-z0-9._-]+)+(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"@sha256:[0-9a-f]{64}"
)
IMAGE_BY_DIGEST_DOC = "an image pinned by digest: <registry>/<repository>[:<tag>]@sha256:<64 lower-case hex>"
# Five cron fields (minute hour day-of-month month day-of-week), as a Kubernetes CronJob's schedule takes them.
CRON_SCHEDULE = r"[0-9*/,-]+( [0-9*/,-]+){2} [0-9A-Za-z*/,-]+ [0-9A-Za-z*/,-]+"
CRON_SCHEDULE_DOC = "five cron fields: minute hour day-of-month month day-of-week, such as 0 */6 * * *"


@dataclass(frozen=True, kw_only=True)
class QualityModelSettings:
    """One model whose answers the quality CronJob grades on every run (docs/lifecycle.md#quality-in-production)."""

    set: str = doc_field(
        "the eval set: the name of a JSONL file in components/tools/evalsets/ (the kit ships general: 24 items); "
        "validated when the settings are built, mounted into the runner from a ConfigMap",
        default="general",
        pattern=r"[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?",
        pattern_doc="a file name without .jsonl: lower-case letters, digits, '-' and '_'",
    )
    min_pass_rate: float = doc_field(
        "the alert ModelQualityBelowThreshold fires when a run passes fewer of the set's items than this share "
        "(0.9: 90%)",
        default=0.9,
        minimum=0.01,
        maximum=1,
    )
    max_drop: float = doc_field(
        "the alert ModelQualityDropped fires when a revision's pass rate falls more than this below its best of the "
        "last 7 days, and CanaryQualityWorse when a canary's is more than this below its stable revision's (0.1: 10 "
        "points, more than 2 of the general set's 24 items; a larger set tells smaller drops from noise)",
        default=0.1,
        minimum=0.01,
        maximum=1,
    )


@dataclass(frozen=True, kw_only=True)
class QualitySettings:
    """Quality in production (docs/lifecycle.md#quality-in-production): a CronJob runs eval sets through the
    gateway on a schedule (each revision of a model with a canary alone) and pushes pass rates to a Pushgateway that
    Prometheus scrapes; alerts fire on a rate below its model's min_pass_rate or fallen by more than max_drop. Off
    (null) in the shipped presets."""

    image: str = doc_field(
        "the eval runner's image, built by your team from deploy/eval-runner/Dockerfile and pushed to a registry "
        "the nodes can pull from (the kit cannot ship a built image)",
        pattern=IMAGE_BY_DIGEST,
        pattern_doc=IMAGE_BY_DIGEST_DOC,
    )
    key: str = doc_field(
        "the gateway key the runner calls with (a key of gateway.keys): its tenant must be allowed every model "
        "listed here (and so their <model>@<revision> names); its value is copied into a Secret of the quality "
        "namespace"
    )
    schedule: str = doc_field(
        "when the CronJob runs (UTC); each run sends every item of every model's set once",
        default="0 */6 * * *",
        pattern=CRON_SCHEDULE,
        pattern_doc=CRON_SCHEDULE_DOC,
    )
    models: Mapping[str, QualityModelSettings] = doc_field(
        "models graded on every run, by key of models: the name clients call, or with a canary each revision alone "
        "(<model>@<revision>, stable and canary)",
        default_factory=lambda: MappingProxyType({}),
    )
    timeout_seconds: int = doc_field(
        "seconds one request may take; a run may take at most this times the number of items, plus a minute, "
        "before Kubernetes stops it (activeDeadlineSeconds)",
        default=120,
        minimum=5,
        maximum=600,
    )


@dataclass(frozen=True, kw_only=True)
class DeploySettings:
    """Where `pulumi up` of each layer runs (docs/deploy.md)."""

    layers: Layers = doc_field(
        "one-stack: this stack holds the AWS and Kubernetes layers; split: this stack holds the AWS layer and a "
        "deploy runner inside the VPC, and the Kubernetes layer is its own stack (kubernetes_stack)",
        default=Layers.ONE_STACK,
    )
    kubernetes_stack: str | None = doc_field(
        "split only: the stack that holds the Kubernetes layer, whose stack file says `modelyard:layer_of: "
        "<this stack>`; null: `<this stack>-k8s`",
        default=None,
        pattern=STACK_NAME,
        pattern_doc=STACK_NAME_DOC,
    )
    state_bucket: str | None = doc_field(
        "split only: the S3 bucket of the Pulumi state backend the runner logs in to (`pulumi login "
        "s3://<bucket>`); the runner may read and write only this bucket's `.pulumi/` prefix",
        default=None,
        pattern=r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]",
        pattern_doc="an S3 bucket name",
    )
    secrets_key_arn: str | None = doc_field(
        "split only: the KMS key of the stacks' `awskms://` secrets provider; the runner may use only this key",
        default=None,
        pattern=_KMS_KEY_ARN,
        pattern_doc="a KMS key ARN such as arn:aws:kms:us-east-1:111122223333:key/<uuid>",
    )
    runner_compute: RunnerCompute = doc_field(
        "split only: the CodeBuild compute type of the deploy runner", default=RunnerCompute.SMALL
    )
    runner_timeout_minutes: int = doc_field(
        "split only: how long one run of the Kubernetes layer may take (model servers wait for weights and "
        "image pulls)",
        default=120,
        minimum=15,
        maximum=480,
    )
    runner_image_tag: str | None = doc_field(
        "split only: the tag of the runner's image in its ECR repository (tags there are immutable); null: the "
        "kit's version. Set a new one to ship a rebuilt image (a chart or lock bump) without a new kit version",
        default=None,
        pattern=r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}",
        pattern_doc="a Docker tag: letters, digits, _ . -, at most 128, not starting with . or -",
    )
    global_stack: str | None = doc_field(
        "the global stack this deployment is a cell of (docs/regions.md): the stack whose file sets "
        "`modelyard:global` and points one DNS name at every cell's gateway. A cell needs gateway.hostname; it "
        "creates an alarm on its gateway load balancer's healthy targets (the entry's health check reads it) and "
        "exports what the global stack reads (CellOutputs); null: not a cell",
        default=None,
        pattern=STACK_NAME,
        pattern_doc=STACK_NAME_DOC,
    )
    charts: ChartSource = doc_field(
        "where the Kubernetes provider takes the upstream Helm charts from at preview and up: upstream, their "
        "repositories (whoever runs Pulumi needs a way out); bundled, the charts baked into the deploy runner's "
        "image (split only; required by a split deployment without NAT)",
        default=ChartSource.UPSTREAM,
    )


@dataclass(frozen=True, kw_only=True)
class BudgetSettings:
    """Spend alarms (docs/cost.md#spend-alarms): an AWS Budget over the stack's tagged cost and a Cost Anomaly
    Detection monitor, both notifying an encrypted SNS topic and the e-mails listed here."""

    monthly_usd: float | None = doc_field(
        "the monthly AWS cost budget of the stack's tagged resources (modelyard:stack, activated as a cost "
        "allocation tag), USD; alerts at 80% and 100% of it spent and 100% forecast; null: no budget. The plan "
        "warns when it is below the plan's AWS estimate plus margin_percent, and prints that amount",
        default=None,
        minimum=1,
        maximum=100_000_000,
    )
    margin_percent: float = doc_field(
        "headroom above the plan's monthly AWS estimate that monthly_usd should leave (usage varies)",
        default=20,
        minimum=0,
        maximum=500,
    )
    anomaly_usd: float | None = doc_field(
        "Cost Anomaly Detection over the stack's tagged cost: alert at once on an anomaly whose total impact "
        "reaches this many USD; null: no anomaly monitor",
        default=100,
        minimum=1,
        maximum=1_000_000,
    )
    emails: tuple[str, ...] = doc_field(
        "addresses the budget e-mails directly and that the spend topic sends anomaly alerts to (each confirms "
        "the subscription once); the topic takes other subscribers too",
        default=(),
        pattern=r"[^@\s]+@[^@\s]+\.[^@\s]+",
        pattern_doc="an e-mail address",
    )


@dataclass(frozen=True, kw_only=True)
class CostSettings:
    """Usage assumptions, people and hidden costs of the TCO (docs/cost.md explains every line)."""

    fte: float = doc_field(
        "engineers who build and run the platform, in full-time equivalents", default=0.5, minimum=0, maximum=500
    )
    usd_per_fte_year: float = doc_field(
        "loaded cost of one engineer a year; default: BLS median pay of computer and information research "
        "scientists $145,080 (May 2023) x 1.42, wages to wages + benefits from BLS ECEC (June 2025)",
        default=207_000,
        minimum=0,
    )
    usd_per_fte_year_source: str = doc_field(
        "where usd_per_fte_year comes from, printed beside the people line",
        default="BLS OOH median pay, computer and information research scientists, $145,080 (May 2023) x 1.42 "
        "from BLS ECEC private industry wages 70.2% of employer cost (June 2025); derived, before equity and "
        "recruiting",
    )
    tools_usd_per_month: float = doc_field(
        "tools bought outside AWS (observability, paging, evaluation SaaS); default: the $250-400 a month "
        "of logging and monitoring tools of the TCO tiers' source",
        default=300,
        minimum=0,
    )
    evaluation_usd_per_month: float = doc_field(
        "hidden cost: model evaluation (eval sets, human review, red-teaming) outside the team's time",
        default=0,
        minimum=0,
    )
    compliance_usd_per_month: float = doc_field(
        "hidden cost: audits, penetration tests, licence and legal review attributed to the platform",
        default=0,
        minimum=0,
    )
    upgrades_usd_per_month: float = doc_field(
        "hidden cost: support contracts or consultants for EKS, driver and vLLM upgrades", default=0, minimum=0
    )
    burst_share: float = doc_field(
        "share of the month that replicas above replicas.min run (0: never, 1: always at replicas.max)",
        default=0.25,
        minimum=0,
        maximum=1,
    )
    utilisation: float = doc_field(
        "share of the serving capacity turned into output tokens, for cost per token and break-even",
        default=0.5,
        minimum=0.01,
        maximum=1,
    )
    input_tokens_per_output_token: float = doc_field(
        "prompt tokens per output token of the traffic, to price the same traffic on an API",
        default=3.0,
        minimum=0,
        maximum=1000,
    )
    compute_discount: float = doc_field(
        "discount on EC2 instances from Savings Plans or an agreement (0.3: 30% off on-demand)",
        default=0,
        minimum=0,
        maximum=0.9,
    )
    nat_gb_per_month: float = doc_field("GB per month through the NAT gateways, all together", default=100, minimum=0)
    endpoint_gb_per_month: float = doc_field(
        "GB per month through the interface endpoints, all together", default=100, minimum=0
    )
    log_gb_per_month: float = doc_field("GB per month ingested into each CloudWatch log group", default=5, minimum=0)
    egress_gb_per_month: float = doc_field("GB per month sent to the internet", default=50, minimum=0)
    replication_gb_per_month: float | None = doc_field(
        "GB per month S3 replicates to each replica of the model bucket (storage.replicas), priced as inter-region "
        "transfer; null: one new revision of every served model's weights a month",
        default=None,
        minimum=0,
    )
    metrics_active_series: int = doc_field(
        "series this cell's Prometheus writes to the deployment's metrics workspace (monitoring.remote_write), "
        "priced as Amazon Managed Service for Prometheus ingestion and storage, and as inter-region transfer over "
        "the peering of a cell without NAT in another region; an assumption until you read "
        "prometheus_tsdb_head_series on the cell's Prometheus",
        default=100_000,
        minimum=0,
    )
    trail_data_events_per_month: int = doc_field(
        "object reads and writes of the model bucket a month, priced as CloudTrail data events where "
        "security.cloudtrail_data_events is on (weights are read at every model server start)",
        default=1_000_000,
        minimum=0,
    )
    region_price_multiplier: float | None = doc_field(
        "factor on every AWS price, all read for us-east-1; null: 1.0 in us-east-1, 1.1 elsewhere (an "
        "unsourced assumption: set your region's)",
        default=None,
        minimum=0.5,
        maximum=3,
    )
    budget: BudgetSettings = doc_field(
        "spend alarms: a monthly AWS Budget and Cost Anomaly Detection (docs/cost.md#spend-alarms)",
        default_factory=BudgetSettings,
    )
    prices: Mapping[str, float] = doc_field(
        "your own AWS prices in USD by key of components/cost/prices.yaml (a discount, another region's list)",
        default_factory=lambda: MappingProxyType({}),
        minimum=0,
        key_pattern=r"[a-z0-9_.]{1,64}",
        key_pattern_doc="a price key of components/cost/prices.yaml, such as nat_gateway_hour",
    )


class GuardDutyFeature(StrEnum):
    """A GuardDuty protection plan of the detector this stack creates (one detector per account and region)."""

    OFF = "off"  # the feature is switched off on the stack's detector (no detector at all when every feature is off)
    ON = "on"  # switched on; the stack creates the account's detector in its region


class FindingsRouting(StrEnum):
    """Whether GuardDuty findings go to the stack's alert receivers (docs/security.md#findings-to-the-receivers)."""

    AUTO = "auto"  # where this stack creates the GuardDuty detector (a guardduty_* feature on)
    ON = "on"  # also the findings of a detector the account already runs (GuardDuty managed elsewhere)
    OFF = "off"  # findings stay in the GuardDuty console and EventBridge


class FindingSeverity(StrEnum):
    """GuardDuty's severity bands (GuardDuty user guide, "Severity levels for GuardDuty findings")."""

    LOW = "low"  # 1.0 to 3.9
    MEDIUM = "medium"  # 4.0 to 6.9
    HIGH = "high"  # 7.0 to 8.9
    CRITICAL = "critical"  # 9.0 to 10.0

    @property
    def minimum(self) -> float:
        """The lowest severity value in the band."""
        return {"low": 1.0, "medium": 4.0, "high": 7.0, "critical": 9.0}[self.value]


@dataclass(frozen=True, kw_only=True)
class SecuritySettings:
    """Account-level detection and audit beyond the cluster's own logs (docs/security.md)."""

    guardduty_runtime: GuardDutyFeature = doc_field(
        "GuardDuty Runtime Monitoring for EKS (GuardDuty installs and updates its agent add-on), priced per vCPU",
        default=GuardDutyFeature.OFF,
    )
    guardduty_eks_audit_logs: GuardDutyFeature = doc_field(
        "GuardDuty EKS Protection: the cluster's Kubernetes audit log analysed for threats (billed per audit "
        "event; unpriced: no sourced rate, docs/sources.md#prices-not-confirmed)",
        default=GuardDutyFeature.OFF,
    )
    findings: FindingsRouting = doc_field(
        "send GuardDuty findings to the alert receivers (monitoring.receivers): high and critical to page, "
        "the rest to ticket, through an encrypted SNS topic",
        default=FindingsRouting.AUTO,
    )
    findings_min_severity: FindingSeverity = doc_field(
        "the least severe findings sent (low 1.0+, medium 4.0+, high 7.0+, critical 9.0+)",
        default=FindingSeverity.MEDIUM,
    )
    cloudtrail_data_events: bool = doc_field(
        "a CloudTrail trail recording every object read and write of the model bucket, into its own log bucket",
        default=False,
    )

    @property
    def detector(self) -> bool:
        """Whether the stack creates a GuardDuty detector (some feature of it is on)."""
        return GuardDutyFeature.ON in (self.guardduty_runtime, self.guardduty_eks_audit_logs)

    @property
    def findings_routed(self) -> bool:
        """Whether the stack routes GuardDuty findings to its receivers."""
        return self.findings is FindingsRouting.ON or (self.findings is FindingsRouting.AUTO and self.detector)


@dataclass(frozen=True, kw_only=True)
class TagSettings:
    cost_center: str = doc_field(
        "value of the modelyard:cost-center tag, for cost allocation; empty: <project>-<stack>",
        default="",
        pattern=r"[\w .:/=+\-@]{0,256}",
        pattern_doc="up to 256 letters, digits, spaces and _.:/=+-@",
    )
    extra: Mapping[str, str] = doc_field(
        "more tags on every taggable AWS resource",
        default_factory=lambda: MappingProxyType({}),
        key_pattern=_TAG_KEY,
        key_pattern_doc="tag keys are 1-128 letters, digits, spaces and _.:/=+-@, not starting with aws:",
    )


class AlertReceiverKind(StrEnum):
    """Where Alertmanager sends a route's alerts."""

    WEBHOOK = "webhook"  # secret: the URL Alertmanager POSTs to
    SLACK = "slack"  # secret: the incoming-webhook URL
    PAGERDUTY = "pagerduty"  # secret: the Events API v2 routing key


@dataclass(frozen=True, kw_only=True)
class AlertReceiverSettings:
    kind: AlertReceiverKind = doc_field("the receiver's kind")
    secret: str = doc_field(
        "the webhook URL, Slack incoming-webhook URL or PagerDuty routing key; set it as a Pulumi secret "
        "(`pulumi config set --secret --path 'modelyard:monitoring.receivers.page.secret' ...`): it is kept in a "
        "Kubernetes Secret of its own, never in Helm values",
        pattern=_SECRET,
        pattern_doc=_SECRET_DOC,
        secret=True,
    )
    slack_channel: str | None = doc_field(
        "Slack only: the channel, e.g. #llm-oncall; null: the webhook's own",
        default=None,
        pattern=r"#[\w.-]{1,80}",
        pattern_doc="a Slack channel such as #llm-oncall",
    )


# Requests and limits as Kubernetes quantities, narrowed to the forms the kit's presets use.
_CPU = r"[1-9][0-9]*m|[0-9]+(\.[0-9]{1,3})?"
_CPU_DOC = "millicores such as 500m, or cores such as 2 or 0.5"
_MEMORY = r"[1-9][0-9]*(Mi|Gi)"
_MEMORY_DOC = "a whole number of Mi or Gi, such as 4Gi"
# gp3 volumes are 1 GiB to 16 TiB (Amazon EBS volume types).
_GP3_MAX_GIB = 16384


@dataclass(frozen=True, kw_only=True)
class PrometheusSettings:
    """Prometheus of kube-prometheus-stack: how long it keeps samples and what it runs on."""

    retention_days: int = doc_field(
        "days Prometheus keeps samples (at most a year: Prometheus's local storage is not a long-term store)",
        default=30,
        minimum=1,
        maximum=365,
    )
    storage_gib: int = doc_field(
        "gp3 volume per replica, GiB; Prometheus deletes its oldest blocks above 85% of it, before the disk fills "
        "(so at least 2)",
        default=100,
        minimum=2,
        maximum=_GP3_MAX_GIB,
    )
    replicas: int = doc_field(
        "Prometheus replicas, each scraping every target (2: scraping goes on through the loss of a node)",
        default=2,
        minimum=1,
        maximum=10,
    )
    cpu: str = doc_field(
        "CPU request of each replica (no CPU limit: throttling delays scrapes)",
        default="500m",
        pattern=_CPU,
        pattern_doc=_CPU_DOC,
    )
    memory: str = doc_field(
        "memory request of each replica, and its limit", default="4Gi", pattern=_MEMORY, pattern_doc=_MEMORY_DOC
    )


@dataclass(frozen=True, kw_only=True)
class AlertmanagerSettings:
    """Alertmanager of kube-prometheus-stack: its size, and how often it repeats a firing alert."""

    replicas: int = doc_field(
        "Alertmanager replicas (they gossip, so an alert is sent once)", default=2, minimum=1, maximum=10
    )
    storage_gib: int = doc_field(
        "gp3 volume per replica (silences and notification state), GiB", default=5, minimum=1, maximum=_GP3_MAX_GIB
    )
    repeat_interval_hours: int = doc_field(
        "hours before a still-firing alert is sent again, at most a week (an on-call team wants to hear again "
        "sooner than a pilot)",
        default=4,
        minimum=1,
        maximum=168,
    )


@dataclass(frozen=True, kw_only=True)
class RemoteWriteSettings:
    """A cell's Prometheus writing every series (but a pinned tenant's, docs/regions.md) to the deployment's one
    Amazon Managed Service for Prometheus workspace, which the global stack creates."""

    region: str = doc_field(
        "the workspace's region, the same in every cell of the deployment and one of the cells' regions when a "
        "cell without NAT is elsewhere: the global stack peers that cell's VPC to the cell of the workspace's region "
        "(an interface endpoint serves its own region only)",
        pattern=r"[a-z]{2}(-[a-z]+)+-\d",
        pattern_doc="an AWS region such as us-east-1",
    )


@dataclass(frozen=True, kw_only=True)
class MonitoringSettings:
    runbook_base_url: str = doc_field(
        "where the alerts' runbook links point: your copy of the kit's docs/runbooks/ as a web page (the default "
        "names the kit's own repository path; set it to where your team reads the runbooks)",
        default="https://github.com/modelyard/modelyard/blob/main/docs/runbooks/",
        pattern=r"https://\S+/",
        pattern_doc="an https URL ending in /",
    )
    receivers: Mapping[str, AlertReceiverSettings] = doc_field(
        "where alerts go, by route: page (critical alerts) and ticket (warnings); a route without one "
        "delivers nowhere (alerts still show in Alertmanager and Grafana)",
        default_factory=lambda: MappingProxyType({}),
        key_pattern="|".join(ALERT_ROUTES),
        key_pattern_doc="routes are page (critical) and ticket (warning)",
    )
    prometheus: PrometheusSettings = doc_field("Prometheus's history and size", default_factory=PrometheusSettings)
    alertmanager: AlertmanagerSettings = doc_field(
        "Alertmanager's size and repeat interval", default_factory=AlertmanagerSettings
    )
    container_log_retention_days: int | None = doc_field(
        "days CloudWatch keeps every container's logs (Fluent Bit on every node, one log group); null: no log "
        "shipping (`kubectl logs` only, no CloudWatch ingestion to pay)",
        default=None,
        allowed=LOG_RETENTION_DAYS,
    )
    remote_write: RemoteWriteSettings | None = doc_field(
        "a cell only (deploy.global_stack, split layers): remote write to the deployment's Amazon Managed Service "
        "for Prometheus workspace, with the labels cell and region (docs/regions.md); null: the cell's Prometheus "
        "alone",
        default=None,
    )


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything one stack is built from: the preset merged with the stack file's overrides."""

    project: str = field(metadata={"context": True})
    stack: str = field(metadata={"context": True})
    layer: StackLayer = field(default=StackLayer.ALL, metadata={"context": True})
    """What this stack builds: both layers, the AWS layer (split) or the Kubernetes layer (`layer_of`)."""
    aws_stack: str | None = field(default=None, metadata={"context": True})
    """Kubernetes layer only: the stack holding the AWS layer (its settings are this stack's settings)."""
    preset: str = doc_field(
        "the preset file this stack starts from: stacks/presets/<preset>.yaml, a shipped one or your own",
        pattern=PRESET_NAME,
        pattern_doc=PRESET_NAME_DOC,
    )
    tier: Tier | None = doc_field(
        "the cost tier whose TCO band the stack is judged against (docs/cost.md); each preset file sets it; "
        "null: no band",
        default=None,
    )
    region: str = doc_field("the AWS region everything is created in")
    network: NetworkSettings = doc_field("the VPC")
    cluster: ClusterSettings = doc_field("the EKS cluster", default_factory=ClusterSettings)
    pools: Mapping[str, PoolSettings] = doc_field(
        "GPU node pools by name", default_factory=lambda: MappingProxyType({})
    )
    models: Mapping[str, ModelSettings] = doc_field(
        "models served, by name (the name is the model id clients ask the gateway for)",
        default_factory=lambda: MappingProxyType({}),
    )
    tenants: Mapping[str, TenantSettings] = doc_field(
        "teams sharing the platform, by name", default_factory=lambda: MappingProxyType({})
    )
    tags: TagSettings = doc_field("cost-allocation and extra tags", default_factory=TagSettings)
    storage: StorageSettings = doc_field(
        "shared storage beside the model bucket (docs/storage.md)", default_factory=StorageSettings
    )
    monitoring: MonitoringSettings = doc_field(
        "Prometheus and Alertmanager sizes, alert receivers, container logs (Grafana and the rules come with every "
        "stack)",
        default_factory=MonitoringSettings,
    )
    licenses: tuple[str, ...] = doc_field(
        "model licenses the stack's owners accept, by the catalog's license names (docs/sizing.md); a model "
        "under any other is refused",
        default=(),
    )
    security: SecuritySettings = doc_field(
        "GuardDuty, its findings to the alert receivers, CloudTrail data events (docs/security.md)",
        default_factory=SecuritySettings,
    )
    gateway: GatewaySettings = doc_field(
        "the LiteLLM gateway: keys, exposure, fallbacks (docs/gateway.md)", default_factory=GatewaySettings
    )
    cost: CostSettings = doc_field(
        "usage assumptions, people and hidden costs of the TCO (docs/cost.md)", default_factory=CostSettings
    )
    traffic: TrafficSettings = doc_field(
        "a traffic profile the plan simulates (docs/simulate.md#6-in-pull-requests)", default_factory=TrafficSettings
    )
    quality: QualitySettings | None = doc_field(
        "eval sets run through the gateway on a schedule, pass rates as metrics, an alert on a low rate "
        "(docs/lifecycle.md#quality-in-production); null: off",
        default=None,
    )
    deploy: DeploySettings = doc_field(
        "where `pulumi up` of each layer runs: one stack, or an AWS-layer stack and a Kubernetes-layer stack "
        "deployed by a runner in the VPC (docs/deploy.md)",
        default_factory=DeploySettings,
    )

    @property
    def deployment(self) -> str:
        """The stack that names the deployment: the AWS layer's (this stack, unless it is a Kubernetes layer)."""
        return self.aws_stack or self.stack

    @property
    def name(self) -> str:
        """The prefix of every physical name of the deployment: `<project>-<stack>`, where the stack is the
        one holding the AWS layer (both layers of a split deployment name the same cluster)."""
        return f"{self.project}-{self.deployment}"

    @property
    def kubernetes_stack(self) -> str | None:
        """The stack holding the Kubernetes layer of a split deployment (None: one stack holds both)."""
        if self.deploy.layers is Layers.ONE_STACK:
            return None
        if self.layer is StackLayer.KUBERNETES:
            return self.stack
        return self.deploy.kubernetes_stack or f"{self.stack}-k8s"

    @property
    def builds_aws(self) -> bool:
        return self.layer is not StackLayer.KUBERNETES

    @property
    def builds_kubernetes(self) -> bool:
        return self.layer is not StackLayer.AWS

    @property
    def cost_center(self) -> str:
        return self.tags.cost_center or self.name

    def tags_for(self, component: str) -> dict[str, str]:
        """Tags for one taggable AWS resource of `component` (project, stack, preset, cost center, extra)."""
        return tags_for(
            project=self.project,
            stack=self.deployment,
            preset=self.preset,
            component=component,
            cost_center=self.cost_center,
            extra=self.tags.extra,
        )

    def replicated_prefixes(self, region: str) -> tuple[str, ...]:
        """What S3 replication copies to the replica in `region` (a key of storage.replicas): models/ (or the prefix
        of each model the replica lists), then the prefix of each tenant it lists."""
        replica = self.storage.replicas[region]
        models = self.replicated_model_names(region)
        weights = ("models/",) if models is None else tuple(f"models/{name}/" for name in models)
        return (*weights, *(f"tenants/{t}/" for t in sorted(replica.tenants)))

    def replicated_model_names(self, region: str) -> tuple[str, ...] | None:
        """The catalog names of the models whose weights the replica in `region` receives (None: all of models/)."""
        listed = self.storage.replicas[region].models
        if not listed:
            return None
        return tuple(sorted({catalog.resolve_model(self.models[m].model).name for m in listed if m in self.models}))

    def model_owner(self, model: str) -> str | None:
        """The tenant a model's servers belong to: `owner`, else the only tenant listing it (None: no tenant)."""
        owner = self.models[model].owner
        if owner is not None:
            return owner
        users = sorted(name for name, t in self.tenants.items() if model in t.models)
        return users[0] if len(users) == 1 else None

    @property
    def fsx_models(self) -> tuple[str, ...]:
        """Models whose servers read their weights from the FSx for Lustre file system (weights.load fsx)."""
        return tuple(sorted(m for m, spec in self.models.items() if spec.weights.load is WeightsLoad.FSX))

    @property
    def fsx_zone_id(self) -> str | None:
        """The zone of the FSx file system's subnet: storage.fsx.zone_id, else the first network zone every pool of
        an fsx model may use, else the first network zone (None: no file system)."""
        fsx = self.storage.fsx
        if fsx is None:
            return None
        if fsx.zone_id is not None:
            return fsx.zone_id
        zones = self.network.zone_ids
        for zone in zones:
            pools = (self.pools.get(self.models[m].pool) for m in self.fsx_models)
            if all(p is None or not p.zone_ids or zone in p.zone_ids for p in pools):
                return zone
        return zones[0] if zones else None

    @property
    def image_cache_on(self) -> bool:
        """Whether nodes pull public images through the ECR pull-through cache."""
        mode = self.cluster.image_cache.mode
        return mode is ImageCacheMode.ON or (mode is ImageCacheMode.AUTO and self.network.nat is NatMode.NONE)

    def hybrid_models(self, tenant: str) -> tuple[str, ...]:
        """The tenant's models that may fall back to a proprietary API (gateway.fallbacks): none unless the
        tenant has data external-allowed (nor for a tenant the stack does not have); for a tenant pinned to regions,
        only those falling back to Bedrock of the stack's region (validation refuses the others, docs/regions.md)."""
        spec = self.tenants.get(tenant)
        if spec is None or spec.data is not DataPolicy.EXTERNAL_ALLOWED:
            return ()
        fallbacks = self.gateway.fallbacks
        return tuple(
            sorted(
                m
                for m in spec.models
                if m in fallbacks and (not spec.regions or fallbacks[m].provider is FallbackProvider.BEDROCK)
            )
        )

    @property
    def fallbacks_in_use(self) -> tuple[str, ...]:
        """Models some tenant may fall back from: a tenant with data external-allowed lists them. Only these get
        a provider key Secret, the gateway's egress, its Bedrock role and endpoint.

        Whether the tenant has a key yet does not count: in a split deployment the keys are secrets of the
        Kubernetes layer's stack, and the AWS layer, which creates the role and the endpoint, never sees them."""
        return tuple(sorted({m for tenant in self.tenants for m in self.hybrid_models(tenant)}))

    @property
    def bedrock_models_in_use(self) -> tuple[str, ...]:
        """Bedrock foundation-model ids of the fallbacks in use: what the gateway's AWS role may invoke."""
        fallbacks = self.gateway.fallbacks
        return tuple(
            sorted(
                {fallbacks[m].model for m in self.fallbacks_in_use if fallbacks[m].provider is FallbackProvider.BEDROCK}
            )
        )

    @property
    def endpoints_without_nat(self) -> tuple[InterfaceEndpoint, ...]:
        """What the stack needs when nat is none: every node endpoint, and bedrock-runtime for a Bedrock
        fallback in use (without NAT the gateway reaches Bedrock only through it)."""
        bedrock = (InterfaceEndpoint.BEDROCK_RUNTIME,) if self.bedrock_models_in_use else ()
        remote_write = (InterfaceEndpoint.APS_WORKSPACES,) if self.writes_metrics_in_region else ()
        return ENDPOINTS_WITHOUT_NAT + bedrock + remote_write

    @property
    def writes_metrics_in_region(self) -> bool:
        """Prometheus writes to a workspace of the stack's own region: through its own aps-workspaces endpoint
        where there is no NAT (a workspace elsewhere is reached over the global stack's peering)."""
        remote_write = self.monitoring.remote_write
        return remote_write is not None and remote_write.region == self.region

    @property
    def interface_endpoints(self) -> tuple[InterfaceEndpoint, ...]:
        """The endpoints the network creates, in a stable order."""
        chosen = self.network.interface_endpoints
        if chosen is None:
            chosen = self.endpoints_without_nat if self.network.nat is NatMode.NONE else ()
        return tuple(sorted(set(chosen), key=lambda e: e.value))
