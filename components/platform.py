"""Compose one stack's components from its settings. The only place that knows the whole platform.

The platform has two layers (docs/architecture.md, docs/deploy.md): the AWS layer (network, cluster, node
capacity, storage, identities) and the Kubernetes layer (every object applied through the cluster's API).
One stack builds both, or a split deployment builds them in two stacks: the AWS layer's stack also creates
a deploy runner inside the VPC, and exports `AwsLayer`; the Kubernetes layer's stack reads it back through
a stack reference. Components never know which: they take plain inputs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from importlib import metadata
from typing import Any

import pulumi
import pulumi_aws as aws

from components import catalog
from components.aws.account_security import AccountSecurity, account_security_args, alert_receivers
from components.aws.cells import CellHealth, CellHealthArgs, EntryCell, GlobalEntry, GlobalEntryArgs
from components.aws.cluster import Cluster, ClusterArgs
from components.aws.container_logs import ContainerLogGroup, ContainerLogGroupArgs
from components.aws.deploy_runner import DeployRunner, DeployRunnerArgs, source_bucket_name
from components.aws.fsx import ModelFileSystem, ModelFileSystemArgs
from components.aws.gateway_exposure import GatewayExposure, GatewayExposureArgs
from components.aws.gateway_identity import GatewayIdentity, GatewayIdentityArgs
from components.aws.gateway_state import GatewayState, GatewayStateArgs
from components.aws.gpu_capacity import GpuCapacity, GpuCapacityArgs
from components.aws.image_cache import ImageCache, ImageCacheArgs, mirrored
from components.aws.metrics_peering import MetricsPeering, MetricsPeeringArgs, PeeredVpc
from components.aws.metrics_workspace import MetricsWorkspace, MetricsWorkspaceArgs, MetricsWriter
from components.aws.model_replicas import (
    ModelReplica,
    ModelReplicaArgs,
    ModelReplication,
    ModelReplicationArgs,
    ReplicationDestination,
)
from components.aws.model_storage import ModelStorage, ModelStorageArgs, TenantAccess
from components.aws.network import Network, NetworkArgs
from components.aws.spend_alarms import SpendAlarms, SpendAlarmsArgs
from components.aws.tenant_identities import TenantIdentities, TenantIdentitiesArgs, TenantIdentity
from components.contract import (
    GATEWAY_NAME,
    GATEWAY_NAMESPACE,
    METRICS_QUERY_PROXY,
    MODEL_SERVER_SERVICE_ACCOUNT,
    subnet_layout,
    tenant_namespace,
)
from components.k8s.cluster_services import ClusterServices, ClusterServicesArgs
from components.k8s.gateway.component import Gateway, GatewayArgs, GatewayCanary, GatewayTenant, RedisEndpoint
from components.k8s.gpu_pools import GpuPools, GpuPoolsArgs
from components.k8s.isolation import Isolation, isolation_args
from components.k8s.load_balancer_controller import (
    IMAGE_REGISTRY,
    LoadBalancerController,
    LoadBalancerControllerArgs,
)
from components.k8s.monitoring.component import AlertReceiver, Monitoring, MonitoringArgs, RemoteWriteTarget
from components.k8s.monitoring.logs import ContainerLogs, ContainerLogsArgs
from components.k8s.monitoring.values import (
    IMAGE_HOSTS,
    KUBE_PROMETHEUS_STACK_RELEASE,
    MONITORING_NAMESPACE,
    PROMETHEUS_POD_LABELS,
    PROMETHEUS_SERVICE_ACCOUNT,
    PROMETHEUS_URL,
    ReceiverKind,
)
from components.k8s.quality import PUSHGATEWAY_REGISTRY, Quality, QualityArgs, QualityModel
from components.k8s.serving import FsxVolume, Serving, ServingArgs
from components.options import after
from components.settings import Settings
from components.settings.cells import Deployment, Routing, peered_cells, workspace_region
from components.settings.types import GatewayExposure as Exposure
from components.settings.types import InterfaceEndpoint, NatMode, StackLayer
from components.tagging import tags_for


@dataclass(frozen=True, kw_only=True)
class AwsLayer:
    """What the Kubernetes layer takes from the AWS layer: the AWS layer's stack outputs, by field name.

    In one stack these are the resources' own outputs; in a split deployment, the same names read from the
    AWS layer's stack through a stack reference. Adding a field adds a stack output: nothing else crosses.
    """

    account_id: pulumi.Input[str]
    vpc_id: pulumi.Input[str]
    cluster_endpoint: pulumi.Input[str]
    cluster_certificate_authority: pulumi.Input[str]
    karpenter_queue_name: pulumi.Input[str]
    karpenter_node_role_name: pulumi.Input[str]
    gpu_security_groups: pulumi.Input[Mapping[str, Sequence[str]]]
    model_bucket: pulumi.Input[str]
    container_log_group: pulumi.Input[str]
    """"" where the stack ships no container logs (monitoring.container_log_retention_days null)."""
    gateway_database_url: pulumi.Input[str]
    """A secret; "" without gateway.database."""
    gateway_redis_host: pulumi.Input[str]
    """"" without gateway.redis (so are its port, 0, and password)."""
    gateway_redis_port: pulumi.Input[int]
    gateway_redis_password: pulumi.Input[str]
    """A secret."""
    gateway_target_group_arn: pulumi.Input[str]
    """The gateway NLB's target group; "" without gateway.hostname."""
    fsx_file_system_id: pulumi.Input[str]
    """The FSx for Lustre file system's id (fs-...); "" without storage.fsx (so are its DNS and mount names)."""
    fsx_dns_name: pulumi.Input[str]
    fsx_mount_name: pulumi.Input[str]

    def export(self) -> None:
        for field in dataclasses.fields(self):
            pulumi.export(field.name, getattr(self, field.name))

    @classmethod
    def from_reference(cls, reference: pulumi.StackReference) -> AwsLayer:
        return cls(**{field.name: reference.get_output(field.name) for field in dataclasses.fields(cls)})


# Every CellOutputs field starts with it: the outputs a global stack reads.
CELL_OUTPUT_PREFIX = "cell_"


@dataclass(frozen=True, kw_only=True)
class CellOutputs:
    """What the global stack takes from each cell of a deployment across regions (docs/regions.md): the cell's AWS
    layer's stack outputs, by field name, read through a stack reference. Only a cell (deploy.global_stack) exports
    them."""

    cell_region: pulumi.Input[str]
    cell_vpc_id: pulumi.Input[str]
    """The VPC the entry's private hosted zone is attached to."""
    cell_vpc_cidr: pulumi.Input[str]
    cell_private_subnet_ids: pulumi.Input[Sequence[str]]
    cell_private_route_table_ids: pulumi.Input[Sequence[str]]
    """Where the metrics peering puts its endpoint and routes (components/aws/metrics_peering.py)."""
    cell_gateway_dns_name: pulumi.Input[str]
    """The gateway NLB's own DNS name and canonical hosted zone: the entry's alias target."""
    cell_gateway_zone_id: pulumi.Input[str]
    cell_health_alarm_name: pulumi.Input[str]
    """The CloudWatch alarm (in cell_region) the entry's health check of this cell reads."""
    cell_model_bucket: pulumi.Input[str]
    """The cell's model bucket and its key: where another cell's replication writes (storage.replicas.<r>.cell)."""
    cell_model_key_arn: pulumi.Input[str]

    def export(self) -> None:
        for field in dataclasses.fields(self):
            pulumi.export(field.name, getattr(self, field.name))

    @classmethod
    def from_reference(cls, reference: pulumi.StackReference) -> CellOutputs:
        return cls(**{field.name: reference.get_output(field.name) for field in dataclasses.fields(cls)})


def aws_stack_reference(settings: Settings) -> str:
    """The fully qualified name of a split deployment's AWS-layer stack (`<organization>/<project>/<stack>`;
    with an S3 backend the organization is `organization`)."""
    return f"{pulumi.get_organization()}/{settings.project}/{settings.aws_stack}"


def build_platform(settings: Settings) -> None:
    """Create every resource of the stack's layer(s). Settings are already valid: nothing here re-checks them."""
    pulumi.export("region", settings.region)
    pulumi.export("preset", settings.preset)
    if settings.layer is StackLayer.KUBERNETES:
        reference = pulumi.StackReference("aws-layer", stack_name=aws_stack_reference(settings))
        build_kubernetes_layer(settings, AwsLayer.from_reference(reference), aws_parts={})
        return
    layer, parts = build_aws_layer(settings)
    layer.export()
    if settings.layer is StackLayer.ALL:
        build_kubernetes_layer(settings, layer, aws_parts=parts)


def replicate_models(
    settings: Settings,
    *,
    provider: aws.Provider,
    storage: ModelStorage,
    model_bucket: pulumi.Output[str],
    tags: Mapping[str, str],
) -> None:
    """A replica of the model bucket in each region of storage.replicas (through a provider of that region), and the
    replication that fills them (docs/regions.md). Nothing when there is none: the shipped stacks' plans stay as
    they were."""
    if not settings.storage.replicas:
        return
    destinations: dict[str, ReplicationDestination] = {}
    replicas: list[pulumi.Resource] = []
    for region in sorted(settings.storage.replicas):
        cell = settings.storage.replicas[region].cell
        if cell is not None:
            # The cell's own bucket and key, created and kept by the cell's stack, applied before this one.
            outputs = CellOutputs.from_reference(
                pulumi.StackReference(f"replica-{region}", stack_name=cell_stack_reference(settings.project, cell))
            )
            destinations[region] = ReplicationDestination(
                bucket_arn=pulumi.Output.concat("arn:aws:s3:::", outputs.cell_model_bucket),
                key_arn=outputs.cell_model_key_arn,
                prefixes=settings.replicated_prefixes(region),
            )
            continue
        regional = aws.Provider(f"{settings.name}-aws-{region}", region=region)
        replica = ModelReplica(
            f"models-{region}",
            args=ModelReplicaArgs(
                region=region, bucket_name=pulumi.Output.concat(model_bucket, "-", region), tags=tags
            ),
            opts=pulumi.ResourceOptions(provider=regional),
        )
        replicas.append(replica)
        destinations[region] = ReplicationDestination(
            bucket_arn=replica.bucket_arn, key_arn=replica.key_arn, prefixes=settings.replicated_prefixes(region)
        )
    ModelReplication(
        "models-replication",
        args=ModelReplicationArgs(
            source_region=settings.region,
            source_bucket=storage.bucket_name,
            source_bucket_arn=storage.bucket_arn,
            source_key_arn=storage.key_arn,
            destinations=destinations,
            tags=tags,
        ),
        # S3 accepts a replication configuration only once both sides are versioned.
        opts=pulumi.ResourceOptions.merge(pulumi.ResourceOptions(provider=provider), after(storage, *replicas)),
    )


def build_aws_layer(settings: Settings) -> tuple[AwsLayer, dict[str, pulumi.Resource]]:
    """Every AWS resource. Returns the layer's outputs and, by role, what the Kubernetes layer waits for
    when one stack holds both."""
    # One explicit provider per region: with default providers disabled (Pulumi.yaml), nothing can
    # land on the operator's ambient region or profile by accident.
    aws_provider = aws.Provider(f"{settings.name}-aws", region=settings.region)
    on_aws = pulumi.ResourceOptions(provider=aws_provider)
    account = account_id(aws_provider)
    model_bucket = pulumi.Output.concat(settings.name, "-models-", account)
    network = Network(
        "network",
        args=NetworkArgs(
            region=settings.region,
            cidr=settings.network.cidr,
            zone_ids=settings.network.zone_ids,
            nat=settings.network.nat,
            # Only NAT gateways and the LLM gateway's internet-facing load balancer live in public subnets.
            public_subnets=settings.network.nat is not NatMode.NONE or public_gateway(settings),
            interface_endpoints=settings.interface_endpoints,
            flow_logs=settings.network.flow_logs,
            cluster_name=settings.name,
            s3_buckets=s3_endpoint_buckets(settings, model_bucket=model_bucket, account=account),
            public_registries=not settings.image_cache_on,
            tags=settings.tags_for("network"),
        ),
        opts=on_aws,
    )
    system = settings.cluster.system_nodes
    cluster = Cluster(
        "cluster",
        args=ClusterArgs(
            cluster_name=settings.name,
            region=settings.region,
            version=settings.cluster.version,
            private_subnet_ids=network.private_subnet_ids,
            endpoint=settings.cluster.endpoint,
            public_cidrs=settings.cluster.public_cidrs,
            private_access_cidrs=settings.cluster.private_access_cidrs,
            admins=settings.cluster.admins,
            log_retention_days=settings.cluster.log_retention_days,
            extra_log_types=settings.cluster.extra_log_types,
            system_instance_type=system.instance_type,
            system_architecture=catalog.instances()[system.instance_type].architecture.value,
            system_min=system.min_nodes,
            system_max=system.max_nodes,
            system_desired=system.desired_nodes,
            tags=settings.tags_for("cluster"),
            fsx_csi=settings.storage.fsx is not None,
        ),
        opts=pulumi.ResourceOptions(provider=aws_provider, depends_on=[network]),
    )
    if settings.image_cache_on:
        cache = settings.cluster.image_cache
        ImageCache(
            "image-cache",
            args=ImageCacheArgs(
                region=settings.region,
                account_id=account,
                credentials={
                    "docker_hub_secret_arn": cache.docker_hub_secret_arn,
                    "github_secret_arn": cache.github_secret_arn,
                },
                # In this order: the attachments' aliases from earlier kits' names (by position) follow it.
                node_role_names={
                    "system": cluster.system_node_role_name,
                    "karpenter": cluster.karpenter_node_role_name,
                },
                tags=settings.tags_for("image-cache"),
            ),
            opts=on_aws,
        )
    capacity = GpuCapacity(
        "gpu-pools",
        args=GpuCapacityArgs(
            cluster_name=cluster.cluster_name,
            kubernetes_version=cluster.kubernetes_version,
            pools=settings.pools,
            dedicated=dedicated_pools(settings),
            zone_subnets=network.private_subnet_by_zone,
            node_role_arn=cluster.karpenter_node_role_arn,
            cluster_security_group_id=cluster.cluster_security_group_id,
            vpc_id=network.vpc_id,
            tags=settings.tags_for("gpu-pools"),
        ),
        opts=on_aws,
    )
    storage = ModelStorage(
        "models",
        args=ModelStorageArgs(
            region=settings.region,
            bucket_name=model_bucket,
            # Only the owner's servers read a model's weights; a tenant that merely lists a model calls it
            # through the gateway (docs/storage.md#who-may-read).
            tenants={
                name: TenantAccess(
                    model_prefixes=sorted(
                        {model_prefix(settings, m) for m in settings.models if settings.model_owner(m) == name}
                    )
                )
                for name in settings.tenants
            },
            tags=settings.tags_for("model-storage"),
        ),
        opts=on_aws,
    )
    replicate_models(
        settings,
        provider=aws_provider,
        storage=storage,
        model_bucket=model_bucket,
        tags=settings.tags_for("model-storage"),
    )
    identities = TenantIdentities(
        "isolation",
        args=TenantIdentitiesArgs(
            cluster_name=cluster.cluster_name,
            tenants={
                name: TenantIdentity(principals=t.principals, read_role_arn=storage.tenant_role_arns[name])
                for name, t in settings.tenants.items()
            },
            cluster_admins=settings.cluster.admins,
            tags=settings.tags_for("isolation"),
        ),
        opts=on_aws,
    )
    parts: dict[str, pulumi.Resource] = {"cluster": cluster, "gpu": capacity, "identities": identities}
    fsx_outputs: tuple[pulumi.Input[str], pulumi.Input[str], pulumi.Input[str]] = ("", "", "")
    fsx = settings.storage.fsx
    zone = settings.fsx_zone_id
    if fsx is not None and zone is not None:
        file_system = ModelFileSystem(
            "model-files",
            args=ModelFileSystemArgs(
                vpc_id=network.vpc_id,
                subnet_id=network.private_subnet_by_zone[zone],
                client_security_group_id=cluster.cluster_security_group_id,
                bucket_name=storage.bucket_name,
                bucket_arn=storage.bucket_arn,
                key_arn=storage.key_arn,
                account_id=account,
                storage_capacity_gib=fsx.storage_capacity_gib,
                throughput_per_tib=fsx.throughput_per_tib,
                tags=settings.tags_for("model-storage"),
            ),
            opts=on_aws,
        )
        fsx_outputs = (file_system.file_system_id, file_system.dns_name, file_system.mount_name)
        parts["model-files"] = file_system
    log_group: pulumi.Input[str] = ""
    retention = settings.monitoring.container_log_retention_days
    if retention is not None:
        logs = ContainerLogGroup(
            "logs",
            args=ContainerLogGroupArgs(
                cluster_name=cluster.cluster_name, retention_days=retention, tags=settings.tags_for("logs")
            ),
            opts=on_aws,
        )
        log_group = logs.log_group_name
        parts["logs"] = logs
    security_args = account_security_args(settings, model_bucket_arn=storage.bucket_arn, account_id=account)
    if security_args is not None:
        security = AccountSecurity("security", args=security_args, opts=on_aws)
        if security.findings_topic_arn is not None:
            pulumi.export("findings_topic_arn", security.findings_topic_arn)
    budget = settings.cost.budget
    if budget.monthly_usd is not None or budget.anomaly_usd is not None:
        spend = SpendAlarms(
            "spend",
            args=SpendAlarmsArgs(
                name=settings.name,
                stack=settings.deployment,
                account_id=account,
                monthly_usd=None if budget.monthly_usd is None else Decimal(str(budget.monthly_usd)),
                anomaly_usd=None if budget.anomaly_usd is None else Decimal(str(budget.anomaly_usd)),
                emails=budget.emails,
                receivers=alert_receivers(settings),
                region=settings.region,
                tags=settings.tags_for("spend"),
            ),
            opts=on_aws,
        )
        pulumi.export("spend_topic_arn", spend.topic_arn)
    gateway = gateway_aws_side(settings, network=network, cluster=cluster, on_aws=on_aws)
    parts.update(gateway.parts)
    if settings.deploy.global_stack is not None and gateway.exposure is not None:
        health = CellHealth(
            "cell-health",
            args=CellHealthArgs(
                name=settings.name,
                load_balancer_arn_suffix=gateway.exposure.load_balancer_arn_suffix,
                target_group_arn_suffix=gateway.exposure.target_group_arn_suffix,
                tags=settings.tags_for("gateway"),
            ),
            opts=on_aws,
        )
        CellOutputs(
            cell_region=settings.region,
            cell_vpc_id=network.vpc_id,
            cell_vpc_cidr=settings.network.cidr,
            cell_private_subnet_ids=network.private_subnet_ids,
            cell_private_route_table_ids=network.private_route_table_ids,
            cell_gateway_dns_name=gateway.exposure.load_balancer_dns_name,
            cell_gateway_zone_id=gateway.exposure.load_balancer_zone_id,
            cell_health_alarm_name=health.alarm_name,
            cell_model_bucket=storage.bucket_name,
            cell_model_key_arn=storage.key_arn,
        ).export()
    kubernetes_stack = settings.kubernetes_stack
    if kubernetes_stack is not None:
        deploy = settings.deploy
        assert deploy.state_bucket is not None and deploy.secrets_key_arn is not None  # settings rule deploy_layers
        runner = DeployRunner(
            "deploy-runner",
            args=DeployRunnerArgs(
                name=settings.name,
                region=settings.region,
                account_id=account,
                vpc_id=network.vpc_id,
                private_subnet_ids=network.private_subnet_ids,
                cluster_name=cluster.cluster_name,
                cluster_arn=cluster.cluster_arn,
                cluster_security_group_id=cluster.cluster_security_group_id,
                kubernetes_stack=kubernetes_stack,
                state_bucket=deploy.state_bucket,
                secrets_key_arn=deploy.secrets_key_arn,
                compute_type=deploy.runner_compute.value,
                timeout_minutes=deploy.runner_timeout_minutes,
                image_tag=deploy.runner_image_tag or kit_version(),
                tags=settings.tags_for("deploy-runner"),
            ),
            opts=on_aws,
        )
        pulumi.export("kubernetes_stack", kubernetes_stack)
        pulumi.export("deploy_project", runner.project_name)
        pulumi.export("deploy_image_repository", runner.repository_url)
        pulumi.export("deploy_source_bucket", runner.source_bucket)
    pulumi.export("vpc_id", network.vpc_id)
    pulumi.export("private_subnet_ids", network.private_subnet_ids)
    pulumi.export("cluster_name", cluster.cluster_name)
    layer = AwsLayer(
        account_id=account,
        vpc_id=network.vpc_id,
        cluster_endpoint=cluster.endpoint,
        cluster_certificate_authority=cluster.certificate_authority,
        karpenter_queue_name=cluster.karpenter_queue_name,
        karpenter_node_role_name=cluster.karpenter_node_role_name,
        gpu_security_groups=capacity.security_groups,
        model_bucket=storage.bucket_name,
        container_log_group=log_group,
        gateway_database_url=gateway.database_url,
        gateway_redis_host=gateway.redis_host,
        gateway_redis_port=gateway.redis_port,
        gateway_redis_password=gateway.redis_password,
        gateway_target_group_arn=gateway.target_group_arn,
        fsx_file_system_id=fsx_outputs[0],
        fsx_dns_name=fsx_outputs[1],
        fsx_mount_name=fsx_outputs[2],
    )
    return layer, parts


@dataclass(frozen=True, kw_only=True)
class GatewayAwsSide:
    """What the AWS layer made for the gateway: the AwsLayer fields ("" for what the settings do not ask for)
    and, by role, what the gateway's Kubernetes objects wait for in one stack."""

    database_url: pulumi.Input[str] = ""
    redis_host: pulumi.Input[str] = ""
    redis_port: pulumi.Input[int] = 0
    redis_password: pulumi.Input[str] = ""
    target_group_arn: pulumi.Input[str] = ""
    exposure: GatewayExposure | None = None
    """The load balancer (gateway.hostname): a cell's health alarm watches it."""
    parts: Mapping[str, pulumi.Resource] = dataclasses.field(default_factory=dict)


def gateway_aws_side(
    settings: Settings, *, network: Network, cluster: Cluster, on_aws: pulumi.ResourceOptions
) -> GatewayAwsSide:
    """The gateway's state (gateway.database, gateway.redis), its Bedrock role (a Bedrock fallback in use) and
    its load balancer (gateway.hostname): each only where the settings ask for it (docs/gateway.md)."""
    g = settings.gateway
    side: dict[str, Any] = {}
    parts: dict[str, pulumi.Resource] = {}
    tags = settings.tags_for("gateway")
    if g.database is not None or g.redis is not None:
        state = GatewayState(
            "gateway-state",
            args=GatewayStateArgs(
                name=settings.name,
                vpc_id=network.vpc_id,
                subnet_ids=network.private_subnet_ids,
                # The gateway's pods run on the system nodes, which carry the cluster security group.
                client_security_group_ids={"cluster": cluster.cluster_security_group_id},
                database=g.database,
                redis=g.redis,
                tags=tags,
            ),
            opts=on_aws,
        )
        if state.database_url is not None:
            side["database_url"] = state.database_url
        if state.redis_host is not None and state.redis_port is not None and state.redis_password is not None:
            side.update(redis_host=state.redis_host, redis_port=state.redis_port, redis_password=state.redis_password)
    models = settings.bedrock_models_in_use
    if models:
        # The Pod Identity association must exist before the gateway's first pod asks for credentials.
        parts["gateway-identity"] = GatewayIdentity(
            "gateway-identity",
            args=GatewayIdentityArgs(
                cluster_name=cluster.cluster_name,
                region=settings.region,
                namespace=GATEWAY_NAMESPACE,
                service_account=GATEWAY_NAME,
                bedrock_models=models,
                tags=tags,
            ),
            opts=on_aws,
        )
    if g.hostname is not None:
        exposure = GatewayExposure(
            "gateway-exposure",
            args=GatewayExposureArgs(
                gateway=g,
                cluster_name=cluster.cluster_name,
                vpc_id=network.vpc_id,
                vpc_cidr=settings.network.cidr,
                region=settings.region,
                private_subnet_ids=network.private_subnet_ids,
                public_subnet_ids=network.public_subnet_ids,
                cluster_security_group_id=cluster.cluster_security_group_id,
                tags=tags,
            ),
            # An internet-facing NLB is refused while its VPC has no internet gateway: the whole network first.
            opts=pulumi.ResourceOptions.merge(on_aws, after(network)),
        )
        # The controller's Pod Identity association, before its first pod starts.
        parts["gateway-exposure"] = exposure
        side["target_group_arn"] = exposure.target_group_arn
        side["exposure"] = exposure
        pulumi.export("gateway_endpoint", exposure.endpoint)
    return GatewayAwsSide(**side, parts=parts)


def cell_stack_reference(project: str, stack: str) -> str:
    """The fully qualified name of a cell's AWS-layer stack, as aws_stack_reference names a split deployment's."""
    return f"{pulumi.get_organization()}/{project}/{stack}"


def build_global(deployment: Deployment) -> None:
    """The global stack of a deployment across regions: one DNS entry over the cells' gateways (docs/regions.md).
    Its settings and every cell's are already valid."""
    g = deployment.settings
    pulumi.export("entry", f"https://{g.entry}")
    pulumi.export("entry_tenants", deployment.entry_tenants())
    pulumi.export("cells", dict(sorted(g.cells.items())))
    provider = aws.Provider(f"{g.project}-{g.stack}-aws", region=g.region)
    cells: dict[str, EntryCell] = {}
    cell_outputs: dict[str, CellOutputs] = {}
    for region, stack in sorted(g.cells.items()):
        reference = pulumi.StackReference(f"cell-{region}", stack_name=cell_stack_reference(g.project, stack))
        outputs = cell_outputs[region] = CellOutputs.from_reference(reference)
        failover = None
        if g.routing is Routing.FAILOVER:
            failover = "PRIMARY" if region == g.primary else "SECONDARY"
        cells[region] = EntryCell(
            vpc_id=outputs.cell_vpc_id,
            load_balancer_dns_name=outputs.cell_gateway_dns_name,
            load_balancer_zone_id=outputs.cell_gateway_zone_id,
            alarm_name=outputs.cell_health_alarm_name,
            failover=failover,
        )
    # Tagged as the cell of the provider's region (else the first) tags its resources: its cost center pays the entry.
    home = deployment.cells.get(g.region) or deployment.cells[min(deployment.cells)]
    tags = tags_for(
        project=g.project,
        stack=g.stack,
        preset=home.preset,
        component="global-entry",
        cost_center=home.cost_center,
        extra=home.tags.extra,
    )
    GlobalEntry(
        "entry",
        args=GlobalEntryArgs(zone_name=g.zone_name, entry=g.entry, cells=cells, tags=tags),
        opts=pulumi.ResourceOptions(provider=provider),
    )
    metrics_region = workspace_region(deployment)
    if metrics_region is not None:
        build_metrics_workspace(
            deployment, region=metrics_region, provider=provider, cell_outputs=cell_outputs, tags=tags
        )


def build_metrics_workspace(
    deployment: Deployment,
    *,
    region: str,
    provider: aws.Provider,
    cell_outputs: Mapping[str, CellOutputs],
    tags: Mapping[str, str],
) -> None:
    """The deployment's one metrics workspace, and per cell a writer role (Prometheus) and a query role (the query proxy
    Grafana reads through) (monitoring.remote_write in every cell)."""
    g = deployment.settings
    providers: dict[str, aws.Provider] = {g.region: provider}
    for cell_region in sorted({region, *deployment.cells}):
        if cell_region not in providers:
            providers[cell_region] = aws.Provider(f"{g.project}-{g.stack}-aws-{cell_region}", region=cell_region)
    workspace = MetricsWorkspace(
        "metrics",
        args=MetricsWorkspaceArgs(
            name=f"{g.project}-{g.stack}",
            region=region,
            writers={
                cell_region: MetricsWriter(
                    cluster_name=cell.name,
                    provider=providers[cell_region],
                    namespace=MONITORING_NAMESPACE,
                    service_account=PROMETHEUS_SERVICE_ACCOUNT,
                    reader_service_account=METRICS_QUERY_PROXY,
                )
                for cell_region, cell in sorted(deployment.cells.items())
            },
            tags=tags,
        ),
        opts=pulumi.ResourceOptions(provider=providers[region]),
    )
    pulumi.export("metrics_workspace_arn", workspace.workspace_arn)
    pulumi.export(METRICS_REMOTE_WRITE_URL, workspace.remote_write_url)
    pulumi.export(METRICS_QUERY_URL, workspace.query_url)
    peers = peered_cells(deployment)
    if not peers:
        return

    def vpc(cell_region: str) -> PeeredVpc:
        outputs = cell_outputs[cell_region]
        cell = deployment.cells[cell_region]
        return PeeredVpc(
            region=cell_region,
            vpc_id=outputs.cell_vpc_id,
            cidr=cell.network.cidr,
            private_route_table_ids=outputs.cell_private_route_table_ids,
            route_tables=len(cell.network.zone_ids),
            provider=providers[cell_region],
        )

    # Validation (global.cells) puts a cell in the workspace's region whenever a cell is peered to it.
    MetricsPeering(
        "metrics-peering",
        args=MetricsPeeringArgs(
            name=f"{g.project}-{g.stack}",
            workspace_arn=workspace.workspace_arn,
            home=vpc(region),
            home_private_subnet_ids=cell_outputs[region].cell_private_subnet_ids,
            peers={cell_region: vpc(cell_region) for cell_region in peers},
            tags=tags,
        ),
        opts=pulumi.ResourceOptions(provider=provider),
    )


def public_gateway(settings: Settings) -> bool:
    """The gateway's load balancer faces the internet (it lives in public subnets)."""
    return settings.gateway.hostname is not None and settings.gateway.exposure is Exposure.PUBLIC


def build_kubernetes_layer(settings: Settings, layer: AwsLayer, *, aws_parts: Mapping[str, pulumi.Resource]) -> None:
    """Every Kubernetes object, through one provider built from the AWS layer's outputs.

    `aws_parts`: in one stack, the AWS components each part waits for (empty in a split deployment, whose AWS
    layer was applied before this stack runs)."""

    def waits_for(*roles: str) -> list[pulumi.Resource]:
        return [aws_parts[role] for role in roles if role in aws_parts]

    registry = registry_of(settings, layer)

    services = ClusterServices(
        "cluster",
        args=ClusterServicesArgs(
            cluster_name=settings.name,
            region=settings.region,
            endpoint=layer.cluster_endpoint,
            certificate_authority=layer.cluster_certificate_authority,
            karpenter_queue_name=layer.karpenter_queue_name,
            image_registry=registry,
            charts=settings.deploy.charts,
        ),
        opts=after(*waits_for("cluster")),
    )
    on_cluster = services.provider
    GpuPools(
        "gpu-pools",
        args=GpuPoolsArgs(
            cluster_name=settings.name,
            pools=settings.pools,
            dedicated=dedicated_pools(settings),
            node_role_name=layer.karpenter_node_role_name,
            security_groups=layer.gpu_security_groups,
            tags=settings.tags_for("gpu-pools"),
            charts=settings.deploy.charts,
        ),
        # NodePools and EC2NodeClasses are Karpenter's CRDs: the chart must be installed first.
        opts=on(on_cluster, services.karpenter, *waits_for("gpu")),
    )
    isolation = Isolation("isolation", args=isolation_args(settings), opts=on(on_cluster))
    # Before serving: model servers come with ServiceMonitors, a CRD the monitoring stack installs.
    monitoring = Monitoring(
        "monitoring",
        args=monitoring_args(settings, layer),
        opts=on(on_cluster, services.karpenter),
    )
    if settings.monitoring.container_log_retention_days is not None:
        ContainerLogs(
            "logs",
            args=ContainerLogsArgs(
                region=settings.region,
                log_group_name=layer.container_log_group,
                namespace=monitoring.namespace,
                image_registry=registry("public.ecr.aws") if settings.image_cache_on else None,
                charts=settings.deploy.charts,
            ),
            # The Pod Identity association must exist before the first Fluent Bit pod starts.
            opts=on(on_cluster, monitoring, *waits_for("logs")),
        )
    Serving(
        "serving",
        args=serving_args(settings, layer),
        opts=on(on_cluster, isolation, monitoring, *waits_for("identities", "model-files")),
    )
    g = settings.gateway
    gateway_waits: list[pulumi.Resource] = [isolation, monitoring, *waits_for("gateway-identity")]
    if g.hostname is not None:
        controller = LoadBalancerController(
            "load-balancer-controller",
            args=LoadBalancerControllerArgs(
                cluster_name=settings.name,
                region=settings.region,
                vpc_id=layer.vpc_id,
                image_registry=registry(IMAGE_REGISTRY) if settings.image_cache_on else None,
                charts=settings.deploy.charts,
            ),
            opts=on(on_cluster, *waits_for("gateway-exposure")),
        )
        # The TargetGroupBinding is the controller's CRD.
        gateway_waits.append(controller)
    # After monitoring: the gateway's ServiceMonitor is a CRD of kube-prometheus-stack.
    gateway = Gateway(
        "gateway",
        args=gateway_args(settings, layer),
        opts=on(on_cluster, *gateway_waits),
    )
    if settings.quality is not None:
        # After the gateway it calls and the monitoring stack whose CRDs (ServiceMonitor, PrometheusRule) it uses.
        Quality("quality", args=quality_args(settings, layer), opts=on(on_cluster, monitoring, gateway))


def quality_args(settings: Settings, layer: AwsLayer) -> QualityArgs:
    """The Quality component's args from `quality` (validated: its key and models exist)."""
    q = settings.quality
    assert q is not None, "quality_args is for stacks with quality"
    return QualityArgs(
        image=q.image,
        key=settings.gateway.keys[q.key].key,
        models={
            m: QualityModel(
                set=spec.set,
                min_pass_rate=spec.min_pass_rate,
                max_drop=spec.max_drop,
                revision=settings.models[m].revision,
                canary_revision=canary.revision if (canary := settings.models[m].canary) is not None else None,
            )
            for m, spec in q.models.items()
        },
        schedule=q.schedule,
        timeout_seconds=q.timeout_seconds,
        kubernetes_version=settings.cluster.version,
        runbook_base_url=settings.monitoring.runbook_base_url,
        pushgateway_registry=registry_of(settings, layer)(PUSHGATEWAY_REGISTRY),
    )


def monitoring_args(settings: Settings, layer: AwsLayer) -> MonitoringArgs:
    """The Monitoring component's args from the stack's settings and the AWS layer's outputs."""
    return MonitoringArgs(
        cluster_name=settings.name,
        prometheus=settings.monitoring.prometheus,
        alertmanager=settings.monitoring.alertmanager,
        charts=settings.deploy.charts,
        runbook_base_url=settings.monitoring.runbook_base_url,
        image_mirrors=image_mirrors(settings, layer.account_id),
        remote_write=remote_write_target(settings),
        receivers={
            # The component makes the value a Pulumi secret where it uses it (its Secret).
            route: AlertReceiver(
                kind=ReceiverKind(receiver.kind.value), secret=receiver.secret, slack_channel=receiver.slack_channel
            )
            for route, receiver in settings.monitoring.receivers.items()
        },
    )


# The global stack's outputs a cell's Kubernetes layer reads: where its Prometheus writes, where its Grafana queries.
METRICS_REMOTE_WRITE_URL = "metrics_remote_write_url"
METRICS_QUERY_URL = "metrics_query_url"


def kept_in_region(settings: Settings, workspace: str) -> tuple[tuple[str, str], ...]:
    """(tenant, namespace) of the tenants whose series must not leave for a workspace in `workspace`: pinned to
    regions (tenants.<t>.regions) that do not include it (docs/regions.md, "Observability across regions")."""
    return tuple(
        (name, tenant_namespace(name))
        for name, tenant in sorted(settings.tenants.items())
        if tenant.regions and workspace not in tenant.regions
    )


def remote_write_target(settings: Settings) -> RemoteWriteTarget | None:
    """A cell's remote write (monitoring.remote_write) and its Grafana's view of the workspace: the URLs from its global
    stack, applied before this layer."""
    remote_write = settings.monitoring.remote_write
    global_stack = settings.deploy.global_stack
    if remote_write is None or global_stack is None:
        return None
    reference = pulumi.StackReference("global-stack", stack_name=cell_stack_reference(settings.project, global_stack))
    return RemoteWriteTarget(
        url=reference.get_output(METRICS_REMOTE_WRITE_URL),
        query_url=reference.get_output(METRICS_QUERY_URL),
        region=remote_write.region,
        cell=settings.deployment,
        cell_region=settings.region,
        kept_in_region=kept_in_region(settings, remote_write.region),
    )


def serving_args(settings: Settings, layer: AwsLayer) -> ServingArgs:
    """The Serving component's args from the stack's settings and the AWS layer's outputs."""
    return ServingArgs(
        models=settings.models,
        pools=settings.pools,
        model_owners=model_owners(settings),
        dedicated_pools=dedicated_pools(settings),
        region=settings.region,
        zone_ids=settings.network.zone_ids,
        nat=settings.network.nat,
        deployment=settings.deployment,
        bucket=layer.model_bucket,
        namespace_of=tenant_namespace,
        service_account=MODEL_SERVER_SERVICE_ACCOUNT,
        prometheus_release=KUBE_PROMETHEUS_STACK_RELEASE,
        prometheus_pod_labels=PROMETHEUS_POD_LABELS,
        prometheus_url=PROMETHEUS_URL,
        image_registry=registry_of(settings, layer) if settings.image_cache_on else None,
        charts=settings.deploy.charts,
        fsx=FsxVolume(
            file_system_id=layer.fsx_file_system_id,
            dns_name=layer.fsx_dns_name,
            mount_name=layer.fsx_mount_name,
            capacity_gib=settings.storage.fsx.storage_capacity_gib,
            throughput_mb_per_second=settings.storage.fsx.throughput_mb_per_second,
        )
        if settings.storage.fsx is not None
        else None,
    )


def gateway_args(settings: Settings, layer: AwsLayer) -> GatewayArgs:
    """The Gateway component's args from the stack's settings and the AWS layer's outputs: each output only where
    the settings ask for what makes it (gateway.database, gateway.redis, gateway.hostname)."""
    g = settings.gateway
    return GatewayArgs(
        gateway=g,
        replicas=g.replicas,
        region=settings.region,
        kubernetes_version=settings.cluster.version,
        vpc_cidr=settings.network.cidr,
        nat=settings.network.nat,
        bedrock_endpoint=InterfaceEndpoint.BEDROCK_RUNTIME in settings.interface_endpoints,
        load_balancer_cidrs=tuple(load_balancer_cidrs(settings)),
        model_owners=model_owners(settings),
        tenants={name: gateway_tenant(settings, name) for name in settings.tenants},
        canaries={
            name: GatewayCanary(stable_revision=m.revision, revision=m.canary.revision, weight=m.canary.weight)
            for name, m in sorted(settings.models.items())
            if m.canary is not None
        },
        fallbacks_in_use=settings.fallbacks_in_use,
        image_registry=registry_of(settings, layer),
        database_url=layer.gateway_database_url if g.database is not None else None,
        redis=RedisEndpoint(
            host=layer.gateway_redis_host, port=layer.gateway_redis_port, password=layer.gateway_redis_password
        )
        if g.redis is not None
        else None,
        target_group_arn=layer.gateway_target_group_arn if g.hostname is not None else None,
    )


def gateway_tenant(settings: Settings, name: str) -> GatewayTenant:
    """What the gateway knows of one tenant: its models, those that may fall back, and its limits (its own, else
    its share of the GPUs)."""
    tenant = settings.tenants[name]
    rpm_limit, tpm_limit = tenant.rate_limits(settings.gateway.tenant_limits)
    return GatewayTenant(
        models=tenant.models,
        fallback_models=settings.hybrid_models(name),
        rpm_limit=rpm_limit,
        tpm_limit=tpm_limit,
    )


def model_owners(settings: Settings) -> dict[str, str]:
    """Model -> the tenant its servers belong to: its `owner`, else the only tenant listing it."""
    owners: dict[str, str] = {}
    for model in settings.models:
        owner = settings.model_owner(model)
        assert owner is not None, f"settings rule model_owners gives every model an owner ({model})"
        owners[model] = owner
    return owners


def load_balancer_cidrs(settings: Settings) -> list[str]:
    """The CIDRs of the subnets the gateway's NLB is attached to (the network's layout): none without a hostname."""
    if settings.gateway.hostname is None:
        return []
    private, public = subnet_layout(settings.network.cidr, len(settings.network.zone_ids))
    return public if public_gateway(settings) else private


def on(provider: pulumi.ProviderResource, *dependencies: pulumi.Resource) -> pulumi.ResourceOptions:
    """A Kubernetes component's options: the cluster's provider, and what it and all its children wait for."""
    return pulumi.ResourceOptions.merge(pulumi.ResourceOptions(provider=provider), after(*dependencies))


def kit_version() -> str:
    """The installed kit's version: the deploy runner's image tag."""
    try:
        return metadata.version("modelyard")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def dedicated_pools(settings: Settings) -> dict[str, str]:
    """Pool name -> the tenant it is dedicated to."""
    return {t.dedicated_pool: name for name, t in settings.tenants.items() if t.dedicated_pool}


def account_id(provider: aws.Provider) -> pulumi.Output[str]:
    """The account the stack deploys into (known during preview too: invokes run then)."""
    return aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(provider=provider)).account_id


def registry_of(settings: Settings, layer: AwsLayer) -> Callable[[str], pulumi.Input[str]]:
    """Upstream registry host -> where the stack's nodes pull it from (image_registry with the layer's account)."""

    def registry(host: str) -> pulumi.Input[str]:
        return image_registry(settings, layer.account_id, host)

    return registry


def image_registry(settings: Settings, account: pulumi.Input[str], host: str) -> pulumi.Input[str]:
    """Where nodes pull `host`'s images from: the ECR pull-through cache when it is on, else `host` itself."""
    if not settings.image_cache_on:
        return host
    return pulumi.Output.from_input(account).apply(
        lambda account_id: mirrored(host, account=account_id, region=settings.region)
    )


def image_mirrors(settings: Settings, account: pulumi.Input[str]) -> pulumi.Input[dict[str, str]]:
    """Registry host -> where nodes pull it from, for the monitoring charts; empty when the cache is off.

    nvcr.io (the DCGM exporter) is not a pull-through upstream: without NAT it needs a hand-made ECR
    mirror (docs/cluster.md); it stays on nvcr.io here, so its pods fail to pull until one exists.
    """
    if not settings.image_cache_on:
        return {}

    def mirrors(account_id: str) -> dict[str, str]:
        return {
            host: mirrored(host, account=account_id, region=settings.region)
            for host in IMAGE_HOSTS
            if mirrored(host, account=account_id, region=settings.region) != host
        }

    # A known account (args built outside a stack's run, in tests) needs no Output: one made outside a Pulumi
    # program stays pending and stalls the next program the process runs.
    known = account if isinstance(account, str) else None
    if known is not None:
        return mirrors(known)
    return pulumi.Output.from_input(account).apply(mirrors)


def s3_endpoint_buckets(
    settings: Settings, *, model_bucket: pulumi.Input[str], account: pulumi.Input[str]
) -> list[pulumi.Input[str]]:
    """The buckets the VPC's S3 endpoint admits: the model bucket, a split deployment's runner source and state
    buckets (its CodeBuild runs in the VPC), and `network.s3_endpoint_buckets`. The model bucket's log bucket is
    not among them: only S3's log delivery writes it, from outside the VPC."""
    buckets: list[pulumi.Input[str]] = [model_bucket]
    if settings.kubernetes_stack is not None and settings.deploy.state_bucket is not None:
        buckets += [source_bucket_name(settings.name, account), settings.deploy.state_bucket]
    return buckets + list(settings.network.s3_endpoint_buckets)


def model_prefix(settings: Settings, model_key: str) -> str:
    """Where a stack model's weights live: models/<catalog name>/<revision>/ (shared by every entry
    that serves the same weights at the same revision)."""
    model = settings.models[model_key]
    return f"models/{catalog.resolve_model(model.model).name}/{model.revision}/"
