"""Compose one stack's components from its settings. The only place that knows the whole platform."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components import catalog
from components.aws.cluster import Cluster, ClusterArgs
from components.aws.image_cache import ImageCache, ImageCacheArgs, mirrored
from components.aws.model_storage import ModelStorage, ModelStorageArgs, TenantAccess
from components.aws.network import Network, NetworkArgs
from components.k8s.gpu_pools import GpuPools, GpuPoolsArgs
from components.k8s.isolation import (
    MODEL_SERVER_SERVICE_ACCOUNT,
    AccountSecurity,
    AccountSecurityArgs,
    Isolation,
    isolation_args,
    tenant_namespace,
)
from components.k8s.monitoring.component import AlertReceiver, Monitoring, MonitoringArgs
from components.k8s.monitoring.logs import LOG_RETENTION_BY_PRESET, ContainerLogs, ContainerLogsArgs
from components.k8s.monitoring.values import (
    IMAGE_HOSTS,
    KUBE_PROMETHEUS_STACK_RELEASE,
    PROMETHEUS_POD_LABELS,
    PROMETHEUS_URL,
    ReceiverKind,
)
from components.k8s.serving import Serving, ServingArgs
from components.settings import Settings
from components.settings.model import NatMode


def build_platform(settings: Settings) -> None:
    """Create every resource of the stack. Settings are already valid: nothing here re-checks them."""
    # One explicit provider per region: with default providers disabled (Pulumi.yaml), nothing can
    # land on the operator's ambient region or profile by accident.
    aws_provider = aws.Provider(f"{settings.name}-aws", region=settings.region)
    network = Network(
        "network",
        args=NetworkArgs(
            region=settings.region,
            cidr=settings.network.cidr,
            zone_ids=settings.network.zone_ids,
            nat=settings.network.nat,
            public_subnets=settings.network.nat is not NatMode.NONE,
            interface_endpoints=settings.interface_endpoints,
            flow_logs=settings.network.flow_logs,
            cluster_name=settings.name,
            tags=settings.tags_for("network"),
        ),
        opts=pulumi.ResourceOptions(provider=aws_provider),
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
            image_registry=lambda host: image_registry(settings, aws_provider, host),
        ),
        opts=pulumi.ResourceOptions(provider=aws_provider, depends_on=[network]),
    )
    if settings.image_cache_on:
        cache = settings.cluster.image_cache
        ImageCache(
            "image-cache",
            args=ImageCacheArgs(
                region=settings.region,
                account_id=account_id(aws_provider),
                credentials={
                    "docker_hub_secret_arn": cache.docker_hub_secret_arn,
                    "github_secret_arn": cache.github_secret_arn,
                },
                node_role_names=[cluster.system_node_role_name, cluster.karpenter_node_role_name],
                tags=settings.tags_for("image-cache"),
            ),
            opts=pulumi.ResourceOptions(provider=aws_provider),
        )
    GpuPools(
        "gpu-pools",
        args=GpuPoolsArgs(
            cluster_name=settings.name,
            pools=settings.pools,
            dedicated={t.dedicated_pool: name for name, t in settings.tenants.items() if t.dedicated_pool},
            zone_subnets=network.private_subnet_by_zone,
            node_role_name=cluster.karpenter_node_role_name,
            node_role_arn=cluster.karpenter_node_role_arn,
            cluster_security_group_id=cluster.cluster_security_group_id,
            vpc_id=network.vpc_id,
            tags=settings.tags_for("gpu-pools"),
        ),
        aws_provider=aws_provider,
        k8s_provider=cluster.k8s_provider,
        # NodePools and EC2NodeClasses are Karpenter's CRDs: the chart must be installed first.
        opts=pulumi.ResourceOptions(depends_on=[cluster.karpenter]),
    )
    storage = ModelStorage(
        "models",
        args=ModelStorageArgs(
            bucket_name=model_bucket_name(settings, aws_provider),
            tenants={
                name: TenantAccess(model_prefixes=[model_prefix(settings, model) for model in tenant.models])
                for name, tenant in settings.tenants.items()
            },
            tags=settings.tags_for("model-storage"),
        ),
        opts=pulumi.ResourceOptions(provider=aws_provider),
    )
    isolation = Isolation(
        "isolation",
        args=isolation_args(settings, cluster_name=cluster.cluster_name, read_role_arns=storage.tenant_role_arns),
        aws_provider=aws_provider,
        k8s_provider=cluster.k8s_provider,
    )
    # Before serving: model servers come with ServiceMonitors, a CRD the monitoring stack installs.
    monitoring = Monitoring(
        "monitoring",
        args=MonitoringArgs(
            settings=settings,
            runbook_base_url=settings.monitoring.runbook_base_url,
            image_mirrors=image_mirrors(settings, aws_provider),
            receivers={
                route: AlertReceiver(
                    kind=ReceiverKind(receiver.kind.value),
                    secret=pulumi.Output.secret(receiver.secret),
                    slack_channel=receiver.slack_channel,
                )
                for route, receiver in settings.monitoring.receivers.items()
            },
        ),
        opts=pulumi.ResourceOptions(provider=cluster.k8s_provider, depends_on=[cluster.karpenter]),
    )
    retention = LOG_RETENTION_BY_PRESET[settings.preset]
    if retention is not None:
        # Every container's logs to CloudWatch, where the preset keeps them (moderate 30 days, enterprise 365).
        ContainerLogs(
            "logs",
            args=ContainerLogsArgs(
                cluster_name=cluster.cluster_name,
                region=settings.region,
                retention_days=retention,
                namespace=monitoring.namespace,
                image_registry=image_registry(settings, aws_provider, "public.ecr.aws")
                if settings.image_cache_on
                else None,
                tags=settings.tags_for("logs"),
            ),
            opts=pulumi.ResourceOptions(providers=[aws_provider, cluster.k8s_provider], depends_on=[monitoring]),
        )
    Serving(
        "serving",
        args=ServingArgs(
            settings=settings,
            bucket=storage.bucket_name,
            image_registry=lambda host: image_registry(settings, aws_provider, host),
            namespace_of=tenant_namespace,
            service_account=MODEL_SERVER_SERVICE_ACCOUNT,
            prometheus_release=KUBE_PROMETHEUS_STACK_RELEASE,
            prometheus_pod_labels=PROMETHEUS_POD_LABELS,
            prometheus_url=PROMETHEUS_URL,
        ),
        opts=pulumi.ResourceOptions(provider=cluster.k8s_provider, depends_on=[isolation, monitoring]),
    )
    from components.k8s.gateway.component import Gateway, GatewayArgs

    # After monitoring: the gateway's ServiceMonitor is a CRD of kube-prometheus-stack.
    Gateway(
        "gateway",
        args=GatewayArgs(settings=settings, image_registry=lambda host: image_registry(settings, aws_provider, host)),
        opts=pulumi.ResourceOptions(provider=cluster.k8s_provider, depends_on=[isolation, monitoring]),
    )
    security = settings.security
    if security.guardduty_runtime.value == "on" or security.cloudtrail_data_events:
        AccountSecurity(
            "security",
            args=AccountSecurityArgs(
                name=settings.name,
                region=settings.region,
                guardduty_runtime=security.guardduty_runtime.value == "on",
                cloudtrail_data_events=security.cloudtrail_data_events,
                model_bucket_arn=storage.bucket_arn,
                account_id=account_id(aws_provider),
                tags=settings.tags_for("security"),
            ),
            opts=pulumi.ResourceOptions(provider=aws_provider),
        )
    pulumi.export("region", settings.region)
    pulumi.export("preset", settings.preset.value)
    pulumi.export("vpc_id", network.vpc_id)
    pulumi.export("private_subnet_ids", network.private_subnet_ids)
    pulumi.export("cluster_name", cluster.cluster_name)
    pulumi.export("cluster_endpoint", cluster.endpoint)
    pulumi.export("model_bucket", storage.bucket_name)


def account_id(provider: aws.Provider) -> pulumi.Output[str]:
    """The account the stack deploys into (known during preview too: invokes run then)."""
    return aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(provider=provider)).account_id


def image_registry(settings: Settings, provider: aws.Provider, host: str) -> pulumi.Input[str]:
    """Where nodes pull `host`'s images from: the ECR pull-through cache when it is on, else `host` itself."""
    if not settings.image_cache_on:
        return host
    return account_id(provider).apply(lambda account: mirrored(host, account=account, region=settings.region))


def image_mirrors(settings: Settings, provider: aws.Provider) -> pulumi.Input[dict[str, str]]:
    """Registry host -> where nodes pull it from, for the monitoring charts; empty when the cache is off.

    nvcr.io (the DCGM exporter) is not a pull-through upstream: without NAT it needs a hand-made ECR
    mirror (docs/cluster.md); it stays on nvcr.io here, so its pods fail to pull until one exists.
    """
    if not settings.image_cache_on:
        return {}
    return account_id(provider).apply(
        lambda account: {
            host: mirrored(host, account=account, region=settings.region)
            for host in IMAGE_HOSTS
            if mirrored(host, account=account, region=settings.region) != host
        }
    )


def model_bucket_name(settings: Settings, provider: aws.Provider) -> pulumi.Output[str]:
    """`<project>-<stack>-models-<account id>`: globally unique, and derivable by the push tool."""
    return pulumi.Output.concat(settings.name, "-models-", account_id(provider))


def model_prefix(settings: Settings, model_key: str) -> str:
    """Where a stack model's weights live: models/<catalog name>/<revision>/ (shared by every entry
    that serves the same weights at the same revision)."""
    model = settings.models[model_key]
    return f"models/{catalog.resolve_model(model.model).name}/{model.revision}/"
