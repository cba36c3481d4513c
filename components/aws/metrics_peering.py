"""MetricsPeering: how a cell without NAT in another region reaches the deployment's metrics workspace
(docs/regions.md, "Observability across regions").

An interface endpoint serves its own region only, and a cell without NAT has no other way out. AWS's pattern for
reaching an interface endpoint from another region is VPC peering plus a private hosted zone that maps the service's
name to the endpoint (AWS whitepaper "Building a Scalable and Secure Multi-VPC AWS Network Infrastructure",
"Centralized access to VPC private endpoints"). The global stack builds it, so neither cell knows the other:

- in the workspace cell's VPC, an `aps-workspaces` interface endpoint of its own (private DNS off), whose security
  group admits HTTPS from the peered cells' ranges only, and whose endpoint policy admits only the metrics actions on
  the deployment's workspace (whatever credentials a peered pod brings);
- per peered cell, an inter-region peering connection (requested from the cell, accepted in the workspace's region)
  and routes between the two VPCs' private route tables, and nothing else;
- one private hosted zone `aps-workspaces.<region>.amazonaws.com`, attached to the peered cells' VPCs, whose apex is
  an alias of that endpoint: the cell's Prometheus writes to the workspace's usual URL and reaches it over the peering.

The peering carries only what the routes and security groups allow: the cells' other security groups admit their own
VPC's range, never the peer's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws.metrics_workspace import QUERY_ACTIONS, REMOTE_WRITE_ACTIONS, workspace_policy
from components.contract import aps_workspaces_host

# What a peered pod may do through the endpoint: write (Prometheus, the writer role) and read (the query proxy, the
# query role) the deployment's workspace.
ENDPOINT_ACTIONS = (*REMOTE_WRITE_ACTIONS, *QUERY_ACTIONS)


def endpoint_policy(workspace_arn: str) -> str:
    return workspace_policy("OnlyTheDeploymentsWorkspace", ENDPOINT_ACTIONS, workspace_arn, any_principal=True)


@dataclass(frozen=True, kw_only=True)
class PeeredVpc:
    """A cell's VPC, from its stack outputs (components.platform.CellOutputs)."""

    region: str
    vpc_id: pulumi.Input[str]
    cidr: str
    private_route_table_ids: pulumi.Input[Sequence[str]]
    route_tables: int
    """How many private route tables the cell has (one per zone of network.zone_ids): resources are planned per
    table, so the count must be known before the ids are."""
    provider: aws.Provider
    """An AWS provider of the cell's region."""


@dataclass(frozen=True, kw_only=True)
class MetricsPeeringArgs:
    name: str
    """The global stack's `<project>-<stack>`: names the security group and the zone's comment."""
    workspace_arn: pulumi.Input[str]
    home: PeeredVpc
    """The cell in the workspace's region: its VPC holds the endpoint."""
    home_private_subnet_ids: pulumi.Input[Sequence[str]]
    peers: Mapping[str, PeeredVpc]
    """The cells without NAT in other regions, by region."""
    tags: Mapping[str, str]


class MetricsPeering(pulumi.ComponentResource):
    """An endpoint in the workspace cell's VPC, a peering and routes per peered cell, and the name that leads there."""

    endpoint_id: pulumi.Output[str]
    peering_ids: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, *, args: MetricsPeeringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        if not args.peers:
            raise ValueError("MetricsPeering needs a cell to peer")
        super().__init__("modelyard:aws:MetricsPeering", name, None, opts)
        home = args.home
        tags = dict(args.tags)
        at_home = pulumi.ResourceOptions(parent=self, provider=home.provider)
        group = aws.ec2.SecurityGroup(
            f"{name}-endpoint",
            vpc_id=home.vpc_id,
            description=f"HTTPS from the peered cells of {args.name} to the metrics workspace endpoint",
            ingress=[
                aws.ec2.SecurityGroupIngressArgs(
                    description=f"HTTPS from the cell in {region}",
                    protocol="tcp",
                    from_port=443,
                    to_port=443,
                    cidr_blocks=[peer.cidr],
                )
                for region, peer in sorted(args.peers.items())
            ],
            tags={**tags, "Name": f"{name}-endpoint"},
            opts=at_home,
        )
        endpoint = aws.ec2.VpcEndpoint(
            f"{name}-endpoint",
            vpc_id=home.vpc_id,
            service_name=f"com.amazonaws.{home.region}.aps-workspaces",
            vpc_endpoint_type="Interface",
            # The home cell's own endpoint (if any) keeps the service's name in its VPC; this one is reached by name
            # from the peers only, through the zone below.
            private_dns_enabled=False,
            subnet_ids=args.home_private_subnet_ids,
            security_group_ids=[group.id],
            policy=pulumi.Output.from_input(args.workspace_arn).apply(endpoint_policy),
            tags={**tags, "Name": f"{name}-endpoint"},
            opts=at_home,
        )
        self.peering_ids = {}
        for region, peer in sorted(args.peers.items()):
            peering = aws.ec2.VpcPeeringConnection(
                f"{name}-{region}",
                vpc_id=peer.vpc_id,
                peer_vpc_id=home.vpc_id,
                peer_region=home.region,
                tags={**tags, "Name": f"{name}-{region}-to-{home.region}"},
                opts=pulumi.ResourceOptions(parent=self, provider=peer.provider),
            )
            accepted = aws.ec2.VpcPeeringConnectionAccepter(
                f"{name}-{region}",
                vpc_peering_connection_id=peering.id,
                auto_accept=True,
                tags={**tags, "Name": f"{name}-{region}-to-{home.region}"},
                opts=at_home,
            )
            self._routes(f"{name}-{region}-out", peer, to=home.cidr, peering=accepted)
            self._routes(f"{name}-{region}-back", home, to=peer.cidr, peering=accepted)
            self.peering_ids[region] = peering.id
        zone = aws.route53.Zone(
            f"{name}-zone",
            name=aps_workspaces_host(home.region),
            comment=f"Amazon Managed Service for Prometheus of {home.region} through {args.name}'s peering (modelyard)",
            vpcs=[
                aws.route53.ZoneVpcArgs(vpc_id=peer.vpc_id, vpc_region=region)
                for region, peer in sorted(args.peers.items())
            ],
            tags={**tags, "Name": f"{name}-zone"},
            opts=pulumi.ResourceOptions(parent=self),
        )
        entry = endpoint.dns_entries.apply(lambda entries: entries[0])
        # The endpoint's regional name and its hosted zone: AWS always returns both for an interface endpoint.
        alias_name = entry.apply(lambda e: str(e.dns_name))
        alias_zone = entry.apply(lambda e: str(e.hosted_zone_id))
        aws.route53.Record(
            f"{name}-zone-apex",
            zone_id=zone.zone_id,
            name=aps_workspaces_host(home.region),
            type="A",
            aliases=[
                aws.route53.RecordAliasArgs(
                    name=alias_name,
                    zone_id=alias_zone,
                    evaluate_target_health=False,
                )
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.endpoint_id = endpoint.id
        self.register_outputs({"endpoint_id": self.endpoint_id})

    def _routes(self, name: str, vpc: PeeredVpc, *, to: str, peering: aws.ec2.VpcPeeringConnectionAccepter) -> None:
        """A route to the other cell's range in each of the VPC's private route tables."""
        tables = pulumi.Output.from_input(vpc.private_route_table_ids)

        def table(index: int) -> pulumi.Output[str]:
            return tables.apply(lambda ids: str(ids[index]))

        for index in range(vpc.route_tables):
            aws.ec2.Route(
                f"{name}-{index}",
                route_table_id=table(index),
                destination_cidr_block=to,
                vpc_peering_connection_id=peering.vpc_peering_connection_id,
                opts=pulumi.ResourceOptions(parent=self, provider=vpc.provider),
            )
