"""GatewayExposure: the AWS side of the gateway's endpoint, created from outside the cluster.

The load balancer is Pulumi's, not the AWS Load Balancer Controller's: the AWS layer creates it, and the
Kubernetes layer only binds the gateway's pods to its target group with a TargetGroupBinding (the controller
registers pod IPs as they come and go). So the controller needs no right to create or delete anything
(`controller_policy`), and the deploy runner of the Kubernetes layer needs no AWS write rights at all.

What is created (settings `gateway.*`, docs/gateway.md):
  - an NLB: internal in the private subnets by default; internet-facing in the public subnets only with
    exposure public. Its security group admits 443 from `allowed_cidrs` (internal default: the VPC's CIDR)
    and sends only to the cluster security group on the gateway's port;
  - an IP target group on the gateway's port, health-checked on LiteLLM's liveness path; client IP
    preservation off, so the pods see the NLB's private addresses (the gateway's NetworkPolicy admits them);
  - a TLS listener on 443 (TLS 1.3 and 1.2 only) with the stack's ACM certificate, or one the kit requests
    and validates by DNS in the public hosted zone;
  - DNS: internal, a private hosted zone named exactly the hostname, attached to the VPC, with an alias at its
    apex (it shadows nothing else of the domain); public, an alias record in the public zone;
  - the cluster security group's rule admitting the NLB to the pods;
  - the controller's Pod Identity role, its least-privilege policy and the association with its service account.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws.iam import POD_IDENTITY_TRUST
from components.contract import (
    GATEWAY_LIVENESS_PATH,
    GATEWAY_PORT,
    LOAD_BALANCER_CONTROLLER_NAMESPACE,
    LOAD_BALANCER_CONTROLLER_SERVICE_ACCOUNT,
    PUBLIC_LB_MARK,
)
from components.options import cidr_part, renamed_from
from components.settings.types import GatewayExposure as Exposure
from components.settings.types import GatewaySettings

# The controller's service account (the chart's default name), bound to its role by Pod Identity.
# TLS 1.3 and 1.2 with forward-secret AEAD ciphers only ("Security policies for your Network Load Balancer",
# Elastic Load Balancing docs). A listener created through the API without a policy gets ELBSecurityPolicy-2016-08,
# which still accepts TLS 1.0: the policy is always set.
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-Res-2021-06"
HTTPS_PORT = 443
# Seconds the NLB waits for a deregistered pod's connections before the target is gone. Connection termination
# stays off (the default), so a long generation still streaming after that is not cut: the pod's own grace
# period (components.k8s.gateway.objects) bounds it.
DEREGISTRATION_DELAY = 60
# Read-only calls the controller makes for a TargetGroupBinding of IP targets (aws-load-balancer-controller
# v3.5.0: the binding webhooks describe the target group; reconciliation lists target health, reads the VPC's
# CIDRs, and the security groups tagged for the cluster; subnets, instances and interfaces when it resolves
# pods and nodes). None of them changes anything.
CONTROLLER_DESCRIBE_ACTIONS = (
    "ec2:DescribeAvailabilityZones",
    "ec2:DescribeInstances",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ec2:DescribeVpcs",
    "elasticloadbalancing:DescribeListeners",
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeTags",
    "elasticloadbalancing:DescribeTargetGroupAttributes",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetHealth",
)
# The only writes: the gateway's pods in and out of its own target group, nowhere else.
CONTROLLER_TARGET_ACTIONS = ("elasticloadbalancing:DeregisterTargets", "elasticloadbalancing:RegisterTargets")


@dataclass(frozen=True, kw_only=True)
class GatewayExposureArgs:
    gateway: GatewaySettings
    """The stack's gateway settings; `hostname` must be set (validated: exposure, certificate, zone, CIDRs)."""
    cluster_name: pulumi.Input[str]
    """The EKS cluster whose controller service account gets the Pod Identity role."""
    vpc_id: pulumi.Input[str]
    """The VPC of the load balancer, its target group and the private hosted zone."""
    vpc_cidr: str
    """The VPC's CIDR: who may connect to an internal endpoint when `allowed_cidrs` is empty."""
    region: str
    """The region of the VPC, for the private hosted zone's association."""
    private_subnet_ids: pulumi.Input[Sequence[str]]
    """Where an internal load balancer lives (one subnet per zone)."""
    public_subnet_ids: pulumi.Input[Sequence[str]] = ()
    """Where an internet-facing one lives; required with exposure public (Network public_subnets=True)."""
    cluster_security_group_id: pulumi.Input[str]
    """The EKS cluster security group the gateway's pods carry (system nodes): it admits the NLB on the port."""
    tags: Mapping[str, str]
    """Tags for every taggable resource of the component."""


def controller_policy(target_group_arn: str) -> str:
    """What the controller may do: describe, and register or deregister targets of this target group only.

    No elasticloadbalancing:Create*/Delete*/Modify*, no ec2:*SecurityGroup* writes: in this design Pulumi owns
    the load balancer and the security group rules. A TargetGroupBinding naming another target group (in any
    namespace) therefore fails, and so does a Service of type LoadBalancer or an Ingress: nothing outside
    Pulumi can create a load balancer through the controller.
    """
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "Describe", "Effect": "Allow", "Action": list(CONTROLLER_DESCRIBE_ACTIONS), "Resource": "*"},
                {
                    "Sid": "GatewayTargets",
                    "Effect": "Allow",
                    "Action": list(CONTROLLER_TARGET_ACTIONS),
                    "Resource": target_group_arn,
                },
            ],
        },
        sort_keys=True,
    )


def _validation_field(options: Sequence[aws.acm.outputs.CertificateDomainValidationOption] | None, field: str) -> str:
    """One field of the certificate's DNS validation record (one name: one record); empty until ACM answers."""
    return str(getattr(options[0], field)) if options else ""


class GatewayExposure(pulumi.ComponentResource):
    """The gateway's NLB, TLS listener, certificate, DNS name, security rules and the controller's role."""

    target_group_arn: pulumi.Output[str]
    """The TargetGroupBinding's target (GatewayArgs.target_group_arn)."""
    endpoint: pulumi.Output[str]
    """https://<hostname>: the base URL clients use (OpenAI clients: <endpoint>/v1)."""
    dns_name: pulumi.Output[str]
    """The hostname clients resolve (private zone inside the VPC, or the public zone)."""
    security_group_id: pulumi.Output[str]
    """The load balancer's security group."""
    controller_role_arn: pulumi.Output[str]
    """The AWS Load Balancer Controller's Pod Identity role."""
    load_balancer_dns_name: pulumi.Output[str]
    """The NLB's own DNS name and its canonical hosted zone: what alias records (a global entry's) point at."""
    load_balancer_zone_id: pulumi.Output[str]
    load_balancer_arn_suffix: pulumi.Output[str]
    """The NLB's and its target group's ARN suffixes: the dimensions of their CloudWatch metrics."""
    target_group_arn_suffix: pulumi.Output[str]

    def __init__(self, name: str, *, args: GatewayExposureArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("modelyard:aws:GatewayExposure", name, None, opts)
        gateway = args.gateway
        if gateway.hostname is None:
            raise ValueError("GatewayExposure needs gateway.hostname (without one the kit creates no load balancer)")
        hostname = gateway.hostname
        public = gateway.exposure is Exposure.PUBLIC
        child = pulumi.ResourceOptions(parent=self)

        def named(role: str) -> dict[str, str]:
            return {**args.tags, "Name": f"{name}-{role}"}

        security_group = aws.ec2.SecurityGroup(
            f"{name}-lb",
            vpc_id=args.vpc_id,
            description=f"{'Internet-facing' if public else 'Internal'} NLB of the LLM gateway {hostname}",
            tags=named("lb"),
            opts=child,
        )
        # The policy rule no-world-ingress admits the internet only on 443 of a load balancer marked public.
        mark = dict([PUBLIC_LB_MARK]) if public else {}
        # Named by CIDR, so removing one leaves the others alone; earlier kits named them by position (`lb-in-<index>`),
        # where the alias finds them on an upgrade that keeps the list (docs/upgrades.md).
        for index, cidr in enumerate(gateway.allowed_cidrs or (args.vpc_cidr,)):
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-lb-in-{cidr_part(cidr)}",
                security_group_id=security_group.id,
                cidr_ipv4=cidr,
                ip_protocol="tcp",
                from_port=HTTPS_PORT,
                to_port=HTTPS_PORT,
                description="HTTPS clients of the LLM gateway",
                tags={**named(f"lb-in-{cidr_part(cidr)}"), **mark},
                opts=pulumi.ResourceOptions(parent=self, aliases=[renamed_from(f"{name}-lb-in-{index}")]),
            )
        # Traffic and health checks go to the gateway's pods only (the provider drops the default allow-all egress).
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-lb-to-pods",
            security_group_id=security_group.id,
            referenced_security_group_id=args.cluster_security_group_id,
            ip_protocol="tcp",
            from_port=GATEWAY_PORT,
            to_port=GATEWAY_PORT,
            description="The LLM gateway's pods: requests and health checks",
            tags=named("lb-to-pods"),
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-pods-from-lb",
            security_group_id=args.cluster_security_group_id,
            referenced_security_group_id=security_group.id,
            ip_protocol="tcp",
            from_port=GATEWAY_PORT,
            to_port=GATEWAY_PORT,
            description="The LLM gateway's load balancer to its pods",
            tags=named("pods-from-lb"),
            opts=child,
        )

        load_balancer = aws.lb.LoadBalancer(
            f"{name}-nlb",
            load_balancer_type="network",
            internal=not public,
            subnets=args.public_subnet_ids if public else args.private_subnet_ids,
            # Security groups can only be given to an NLB at creation.
            security_groups=[security_group.id],
            ip_address_type="ipv4",
            # With one or two gateway replicas some zones have no target: every zone's node forwards to all.
            enable_cross_zone_load_balancing=True,
            tags=named("nlb"),
            opts=child,
        )
        target_group = aws.lb.TargetGroup(
            f"{name}-pods",
            target_type="ip",
            protocol="TCP",
            port=GATEWAY_PORT,
            vpc_id=args.vpc_id,
            ip_address_type="ipv4",
            # Off (the default for IP targets over TCP, said explicitly): pods see the NLB's private addresses.
            preserve_client_ip="false",
            deregistration_delay=DEREGISTRATION_DELAY,
            health_check=aws.lb.TargetGroupHealthCheckArgs(
                enabled=True,
                protocol="HTTP",
                port="traffic-port",
                path=GATEWAY_LIVENESS_PATH,
                matcher="200",
                interval=10,
                timeout=5,
                healthy_threshold=2,
                unhealthy_threshold=2,
            ),
            tags=named("pods"),
            opts=child,
        )

        if gateway.certificate_arn is not None:
            certificate_arn: pulumi.Input[str] = gateway.certificate_arn
        else:
            certificate = aws.acm.Certificate(
                f"{name}-certificate",
                domain_name=hostname,
                validation_method="DNS",
                key_algorithm="EC_prime256v1",
                tags=named("certificate"),
                opts=child,
            )
            options = certificate.domain_validation_options
            validation = aws.route53.Record(
                f"{name}-certificate-validation",
                zone_id=gateway.public_zone_id,
                name=options.apply(lambda o: _validation_field(o, "resource_record_name")),
                type=options.apply(lambda o: _validation_field(o, "resource_record_type")),
                records=[options.apply(lambda o: _validation_field(o, "resource_record_value"))],
                ttl=300,
                allow_overwrite=True,
                opts=child,
            )
            certificate_arn = aws.acm.CertificateValidation(
                f"{name}-certificate",
                certificate_arn=certificate.arn,
                validation_record_fqdns=[validation.fqdn],
                opts=child,
            ).certificate_arn

        aws.lb.Listener(
            f"{name}-tls",
            load_balancer_arn=load_balancer.arn,
            port=HTTPS_PORT,
            protocol="TLS",
            ssl_policy=TLS_POLICY,
            certificate_arn=certificate_arn,
            default_actions=[aws.lb.ListenerDefaultActionArgs(type="forward", target_group_arn=target_group.arn)],
            tags=named("tls"),
            opts=child,
        )

        alias = aws.route53.RecordAliasArgs(
            name=load_balancer.dns_name, zone_id=load_balancer.zone_id, evaluate_target_health=True
        )
        if public:
            aws.route53.Record(
                f"{name}-dns", zone_id=gateway.public_zone_id, name=hostname, type="A", aliases=[alias], opts=child
            )
        else:
            zone = aws.route53.Zone(
                f"{name}-zone",
                name=hostname,
                comment=f"The LLM gateway's name inside the VPC ({name})",
                vpcs=[aws.route53.ZoneVpcArgs(vpc_id=args.vpc_id, vpc_region=args.region)],
                tags=named("zone"),
                # Hosted zones are stateful for the kit's policy (stateful-protected): a hostname change that
                # replaces the zone needs `pulumi state unprotect` first, and a destroy leaves the empty zone.
                opts=pulumi.ResourceOptions(parent=self, protect=True, retain_on_delete=True),
            )
            aws.route53.Record(
                f"{name}-dns", zone_id=zone.zone_id, name=hostname, type="A", aliases=[alias], opts=child
            )

        controller_role = aws.iam.Role(
            f"{name}-controller",
            assume_role_policy=POD_IDENTITY_TRUST,
            description="AWS Load Balancer Controller: the LLM gateway's targets only",
            tags=named("controller"),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-controller", role=controller_role.id, policy=target_group.arn.apply(controller_policy), opts=child
        )
        aws.eks.PodIdentityAssociation(
            f"{name}-controller",
            cluster_name=args.cluster_name,
            namespace=LOAD_BALANCER_CONTROLLER_NAMESPACE,
            service_account=LOAD_BALANCER_CONTROLLER_SERVICE_ACCOUNT,
            role_arn=controller_role.arn,
            tags=named("controller"),
            opts=child,
        )

        self.target_group_arn = target_group.arn
        self.endpoint = pulumi.Output.from_input(f"https://{hostname}")
        self.dns_name = pulumi.Output.from_input(hostname)
        self.security_group_id = security_group.id
        self.controller_role_arn = controller_role.arn
        self.load_balancer_dns_name = load_balancer.dns_name
        self.load_balancer_zone_id = load_balancer.zone_id
        self.load_balancer_arn_suffix = load_balancer.arn_suffix
        self.target_group_arn_suffix = target_group.arn_suffix
        self.register_outputs(
            {
                "load_balancer_dns_name": self.load_balancer_dns_name,
                "load_balancer_zone_id": self.load_balancer_zone_id,
                "load_balancer_arn_suffix": self.load_balancer_arn_suffix,
                "target_group_arn_suffix": self.target_group_arn_suffix,
                "target_group_arn": self.target_group_arn,
                "endpoint": self.endpoint,
                "dns_name": self.dns_name,
                "security_group_id": self.security_group_id,
                "controller_role_arn": self.controller_role_arn,
            }
        )
