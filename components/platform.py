"""Compose one stack's components from its settings. The only place that knows the whole platform."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components.aws.network import Network, NetworkArgs
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
    pulumi.export("region", settings.region)
    pulumi.export("preset", settings.preset.value)
    pulumi.export("vpc_id", network.vpc_id)
    pulumi.export("private_subnet_ids", network.private_subnet_ids)
