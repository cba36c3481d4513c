"""Network: the VPC every node, endpoint and load balancer of a stack lives in.

The subnets' layout is the contract's `subnet_layout` (components/contract.py): the Kubernetes layer's
NetworkPolicies admit the load balancer's subnets by the same CIDRs. Public subnets are created only when
something needs them (a NAT gateway, or an internet-facing load balancer): nothing else is ever placed there.
Zones are taken in the order of `zone_ids`: append zones, never reorder them (a CIDR change replaces
a subnet and everything in it).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws.iam import assume_role_policy
from components.contract import subnet_layout
from components.settings.types import FlowLogSettings, InterfaceEndpoint, NatMode

# AWS-owned buckets the nodes read through the S3 gateway endpoint (docs/network.md#the-s3-gateway-endpoints-policy;
# sources: docs/sources.md#s3-and-its-vpc-endpoint). ECR keeps image layers in prod-<region>-starport-layer-bucket,
# fetched with presigned URLs signed by ECR's account: every image of a stack without NAT comes from ECR (the
# pull-through cache), the EKS add-ons' always. dnf and kernel live patching on the AL2023 nodes read the Amazon
# Linux repositories. Read-only: nothing can be written to them.
AWS_OWNED_OBJECTS = (
    "prod-{region}-starport-layer-bucket/*",
    "al2023-repos-{region}-de612dc2/*",
    "al2023-{region}/*",
)
# Where public registries send a node of the region for an image's layers when nodes pull from them directly (no
# pull-through cache): registry.k8s.io sends AWS clients to its bucket of their region; Docker Hub has served
# layers from its bucket docker-images-prod. A registry that sends layers to another bucket of the region shows
# as a pull failing with S3's AccessDenied: name that bucket in network.s3_endpoint_buckets.
REGISTRY_OBJECTS = (
    "prod-registry-k8s-io-{region}/*",
    "docker-images-prod/*",
)


def s3_endpoint_policy(*, region: str, buckets: Sequence[str], public_registries: bool) -> str:
    """The S3 gateway endpoint's policy: `buckets` (the stack's own) as IAM allows, and reading the AWS-owned
    (and, with `public_registries`, the registries') buckets nodes fetch from. Any other bucket, read or write,
    with any credentials, is refused on the way out of the VPC."""
    read_only = [*AWS_OWNED_OBJECTS, *(REGISTRY_OBJECTS if public_registries else ())]
    own = sorted(set(buckets))
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "StackBuckets",
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [
                        arn for bucket in own for arn in (f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*")
                    ],
                },
                {
                    "Sid": "ReadNodeSoftware",
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "s3:GetObject",
                    "Resource": [f"arn:aws:s3:::{pattern.format(region=region)}" for pattern in read_only],
                },
            ],
        },
        sort_keys=True,
    )


@dataclass(frozen=True, kw_only=True)
class NetworkArgs:
    region: str
    """The region, for endpoint service names (com.amazonaws.<region>.<service>)."""
    cidr: str
    """The VPC's IPv4 range (validated by settings: private, /16 to /20)."""
    zone_ids: Sequence[str]
    """Availability-zone IDs in order; subnet i lives in zone_ids[i]."""
    nat: NatMode
    """none, single (in the first zone) or per-zone NAT gateways."""
    public_subnets: bool
    """Whether public subnets (and an internet gateway) exist; required when nat is not none."""
    interface_endpoints: Sequence[InterfaceEndpoint]
    """Interface endpoints placed in the private subnets, reachable on 443 from the VPC."""
    flow_logs: FlowLogSettings
    """Flow-log retention (days) and traffic type."""
    cluster_name: str
    """The EKS cluster's name, for the Karpenter discovery tag on private subnets."""
    s3_buckets: Sequence[pulumi.Input[str]]
    """The buckets anything in the VPC may use through the S3 gateway endpoint, as IAM allows: the stack's own
    and `network.s3_endpoint_buckets`. The endpoint refuses every other bucket but the AWS-owned ones nodes read."""
    public_registries: bool
    """Nodes pull images from public registries themselves (no ECR pull-through cache): the endpoint also admits
    reading the S3 buckets some registries send layer downloads to (REGISTRY_OBJECTS)."""
    tags: Mapping[str, str]
    """Tags for every taggable resource of the component."""


class Network(pulumi.ComponentResource):
    """A VPC over 2 or 3 zones with private node subnets, optional public subnets, NAT, endpoints, flow logs."""

    vpc_id: pulumi.Output[str]
    private_subnet_ids: pulumi.Output[list[str]]
    private_subnet_by_zone: dict[str, pulumi.Output[str]]
    public_subnet_ids: pulumi.Output[list[str]]

    def __init__(self, name: str, *, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("modelyard:aws:Network", name, None, opts)
        if args.nat is not NatMode.NONE and not args.public_subnets:
            raise ValueError("NAT gateways live in public subnets: public_subnets must be true when nat is not none")
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)

        def named(role: str) -> dict[str, str]:
            return {**tags, "Name": f"{name}-{role}"}

        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.cidr,
            enable_dns_support=True,
            enable_dns_hostnames=True,  # interface endpoints with private DNS need both
            tags=named("vpc"),
            opts=child,
        )
        # The default security group would admit all traffic between its members: empty it, so nothing
        # that forgets to name a group gets the permissive default.
        aws.ec2.DefaultSecurityGroup(f"{name}-default-sg", vpc_id=vpc.id, tags=named("default-sg"), opts=child)

        private_cidrs, public_cidrs = subnet_layout(args.cidr, len(args.zone_ids))
        public_subnets: list[aws.ec2.Subnet] = []
        nat_gateways: list[aws.ec2.NatGateway] = []
        if args.public_subnets:
            igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, tags=named("igw"), opts=child)
            public_rt = aws.ec2.RouteTable(f"{name}-public", vpc_id=vpc.id, tags=named("public"), opts=child)
            aws.ec2.Route(
                f"{name}-public-default",
                route_table_id=public_rt.id,
                destination_cidr_block="0.0.0.0/0",
                gateway_id=igw.id,
                opts=child,
            )
            for zone, cidr in zip(args.zone_ids, public_cidrs, strict=True):
                subnet = aws.ec2.Subnet(
                    f"{name}-public-{zone}",
                    vpc_id=vpc.id,
                    cidr_block=cidr,
                    availability_zone_id=zone,
                    map_public_ip_on_launch=False,  # nothing but load balancers and NAT live here
                    tags={**named(f"public-{zone}"), "kubernetes.io/role/elb": "1"},
                    opts=child,
                )
                aws.ec2.RouteTableAssociation(
                    f"{name}-public-{zone}", subnet_id=subnet.id, route_table_id=public_rt.id, opts=child
                )
                public_subnets.append(subnet)
            nat_zones = {NatMode.NONE: 0, NatMode.SINGLE: 1, NatMode.PER_ZONE: len(args.zone_ids)}[args.nat]
            for zone, subnet in list(zip(args.zone_ids, public_subnets, strict=True))[:nat_zones]:
                eip = aws.ec2.Eip(f"{name}-nat-{zone}", domain="vpc", tags=named(f"nat-{zone}"), opts=child)
                nat_gateways.append(
                    aws.ec2.NatGateway(
                        f"{name}-nat-{zone}",
                        allocation_id=eip.id,
                        subnet_id=subnet.id,
                        tags=named(f"nat-{zone}"),
                        opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
                    )
                )

        private_subnets: list[aws.ec2.Subnet] = []
        private_route_tables: list[aws.ec2.RouteTable] = []
        for index, (zone, cidr) in enumerate(zip(args.zone_ids, private_cidrs, strict=True)):
            subnet = aws.ec2.Subnet(
                f"{name}-private-{zone}",
                vpc_id=vpc.id,
                cidr_block=cidr,
                availability_zone_id=zone,
                map_public_ip_on_launch=False,
                tags={
                    **named(f"private-{zone}"),
                    "kubernetes.io/role/internal-elb": "1",  # AWS Load Balancer Controller: internal LBs
                    "karpenter.sh/discovery": args.cluster_name,  # Karpenter's EC2NodeClass subnet selector
                },
                opts=child,
            )
            route_table = aws.ec2.RouteTable(
                f"{name}-private-{zone}", vpc_id=vpc.id, tags=named(f"private-{zone}"), opts=child
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{zone}", subnet_id=subnet.id, route_table_id=route_table.id, opts=child
            )
            if nat_gateways:
                # Per-zone NAT keeps each zone's egress in its zone; a single NAT serves every zone.
                nat = nat_gateways[index] if len(nat_gateways) > 1 else nat_gateways[0]
                aws.ec2.Route(
                    f"{name}-private-{zone}-default",
                    route_table_id=route_table.id,
                    destination_cidr_block="0.0.0.0/0",
                    nat_gateway_id=nat.id,
                    opts=child,
                )
            private_subnets.append(subnet)
            private_route_tables.append(route_table)

        # S3 through the gateway endpoint: free, and the path for weights and ECR image layers. Every request to
        # the region's S3 from the private subnets takes it (its route is more specific than the NAT's), so its
        # policy decides which buckets anything in the VPC can reach, whatever credentials it brings.
        aws.ec2.VpcEndpoint(
            f"{name}-s3",
            vpc_id=vpc.id,
            service_name=f"com.amazonaws.{args.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[rt.id for rt in private_route_tables],
            policy=pulumi.Output.all(*args.s3_buckets).apply(
                lambda buckets: s3_endpoint_policy(
                    region=args.region, buckets=buckets, public_registries=args.public_registries
                )
            ),
            tags=named("s3"),
            opts=child,
        )

        if args.interface_endpoints:
            endpoint_sg = aws.ec2.SecurityGroup(
                f"{name}-endpoints",
                vpc_id=vpc.id,
                description="HTTPS from inside the VPC to AWS interface endpoints",
                ingress=[
                    aws.ec2.SecurityGroupIngressArgs(
                        description="HTTPS from the VPC",
                        protocol="tcp",
                        from_port=443,
                        to_port=443,
                        cidr_blocks=[args.cidr],
                    )
                ],
                tags=named("endpoints"),
                opts=child,
            )
            for service in args.interface_endpoints:
                aws.ec2.VpcEndpoint(
                    f"{name}-{service.value.replace('.', '-')}",
                    vpc_id=vpc.id,
                    service_name=f"com.amazonaws.{args.region}.{service.value}",
                    vpc_endpoint_type="Interface",
                    private_dns_enabled=True,
                    subnet_ids=[s.id for s in private_subnets],
                    security_group_ids=[endpoint_sg.id],
                    tags=named(service.value),
                    opts=child,
                )

        self._flow_logs(name, vpc, args, named)

        self.vpc_id = vpc.id
        self.private_subnet_ids = pulumi.Output.all(*[s.id for s in private_subnets])
        self.private_subnet_by_zone = {z: s.id for z, s in zip(args.zone_ids, private_subnets, strict=True)}
        self.private_route_table_ids = pulumi.Output.all(*[rt.id for rt in private_route_tables])
        self.public_subnet_ids = pulumi.Output.all(*[s.id for s in public_subnets])
        self.register_outputs(
            {
                "vpc_id": self.vpc_id,
                "private_subnet_ids": self.private_subnet_ids,
                "public_subnet_ids": self.public_subnet_ids,
            }
        )

    def _flow_logs(
        self, name: str, vpc: aws.ec2.Vpc, args: NetworkArgs, named: Callable[[str], dict[str, str]]
    ) -> None:
        child = pulumi.ResourceOptions(parent=self)
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs",
            name=f"/modelyard/{args.cluster_name}/vpc-flow-logs",
            retention_in_days=args.flow_logs.retention_days,
            tags=named("flow-logs"),
            opts=child,
        )
        role = aws.iam.Role(
            f"{name}-flow-logs",
            assume_role_policy=assume_role_policy("vpc-flow-logs.amazonaws.com"),
            tags=named("flow-logs"),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-flow-logs",
            role=role.id,
            policy=log_group.arn.apply(
                lambda arn: json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                                "Resource": [arn, f"{arn}:*"],
                            }
                        ],
                    }
                )
            ),
            opts=child,
        )
        aws.ec2.FlowLog(
            f"{name}-flow-logs",
            vpc_id=vpc.id,
            traffic_type=args.flow_logs.traffic.value,
            log_destination_type="cloud-watch-logs",
            log_destination=log_group.arn,
            iam_role_arn=role.arn,
            max_aggregation_interval=60,
            tags=named("flow-logs"),
            opts=child,
        )
