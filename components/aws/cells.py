"""A deployment across regions (docs/regions.md): each cell's health as an alarm, and the global entry over them.

Route 53's health checkers probe from the internet and cannot reach an internal load balancer, so the entry does not
probe the gateways: each cell raises a CloudWatch alarm on its own gateway NLB's HealthyHostCount (the NLB's own
target health checks, every 10 s, of LiteLLM's liveness path), and the entry's health checks are of type
CLOUDWATCH_METRIC on those alarms.

  - CellHealth (in each cell's AWS layer): the alarm. In ALARM when the minimum of healthy gateway targets was below
    one for `evaluation_periods` minutes in a row; missing data counts as breaching (a deleted NLB, or one with no
    registered target, publishes nothing).
  - GlobalEntry (in the global stack): a private hosted zone attached to every cell's VPC; per cell a health check on
    the cell's alarm and a record (latency: set identifier and latency region = the cell's region; failover: PRIMARY
    and SECONDARY), each an alias of the cell's NLB with the health check attached.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

# AWS/NetworkELB publishes HealthyHostCount every minute (docs/regions.md, "How fast").
ALARM_PERIOD_SECONDS = 60
ALARM_EVALUATION_PERIODS = 2


@dataclass(frozen=True, kw_only=True)
class CellHealthArgs:
    name: str
    """The alarm's name: `<name>-gateway-healthy` (the cell's `<project>-<stack>`)."""
    load_balancer_arn_suffix: pulumi.Input[str]
    target_group_arn_suffix: pulumi.Input[str]
    tags: Mapping[str, str]


class CellHealth(pulumi.ComponentResource):
    """The alarm a global entry's health check reads: the cell's gateway has no healthy target."""

    alarm_name: pulumi.Output[str]

    def __init__(self, name: str, *, args: CellHealthArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("modelyard:aws:CellHealth", name, None, opts)
        alarm = aws.cloudwatch.MetricAlarm(
            f"{name}-gateway-healthy",
            name=f"{args.name}-gateway-healthy",
            alarm_description="No healthy LLM gateway target behind the cell's NLB: the global entry's health check "
            "reads this alarm and stops answering with this cell (docs/regions.md)",
            namespace="AWS/NetworkELB",
            metric_name="HealthyHostCount",
            dimensions={"LoadBalancer": args.load_balancer_arn_suffix, "TargetGroup": args.target_group_arn_suffix},
            statistic="Minimum",
            period=ALARM_PERIOD_SECONDS,
            evaluation_periods=ALARM_EVALUATION_PERIODS,
            datapoints_to_alarm=ALARM_EVALUATION_PERIODS,
            comparison_operator="LessThanThreshold",
            threshold=1,
            treat_missing_data="breaching",
            tags={**args.tags, "Name": f"{name}-gateway-healthy"},
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.alarm_name = alarm.name
        self.register_outputs({"alarm_name": self.alarm_name})


@dataclass(frozen=True, kw_only=True)
class EntryCell:
    """What the entry needs of one cell (its CellOutputs)."""

    vpc_id: pulumi.Input[str]
    load_balancer_dns_name: pulumi.Input[str]
    load_balancer_zone_id: pulumi.Input[str]
    alarm_name: pulumi.Input[str]
    failover: str | None = None
    """PRIMARY or SECONDARY with failover routing; None: latency routing."""


@dataclass(frozen=True, kw_only=True)
class GlobalEntryArgs:
    zone_name: str
    entry: str
    """The record's name (`<record>.<zone_name>`)."""
    cells: Mapping[str, EntryCell]
    """By region."""
    tags: Mapping[str, str]


class GlobalEntry(pulumi.ComponentResource):
    """One DNS name over every cell's gateway, health-checked through each cell's alarm."""

    zone_id: pulumi.Output[str]
    health_check_ids: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, *, args: GlobalEntryArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("modelyard:aws:GlobalEntry", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        regions = sorted(args.cells)
        zone = aws.route53.Zone(
            f"{name}-zone",
            name=args.zone_name,
            comment=f"The global LLM entry {args.entry} (modelyard)",
            vpcs=[aws.route53.ZoneVpcArgs(vpc_id=args.cells[r].vpc_id, vpc_region=r) for r in regions],
            tags={**args.tags, "Name": f"{name}-zone"},
            # Stateful for the kit's policy, like the gateway's own zone: a destroy leaves it.
            opts=pulumi.ResourceOptions(parent=self, protect=True, retain_on_delete=True),
        )
        self.health_check_ids = {}
        for region in regions:
            cell = args.cells[region]
            check = aws.route53.HealthCheck(
                f"{name}-{region}",
                type="CLOUDWATCH_METRIC",
                cloudwatch_alarm_name=cell.alarm_name,
                cloudwatch_alarm_region=region,
                # A cell whose alarm has no data yet (just created) keeps its last status instead of flapping.
                insufficient_data_health_status="LastKnownStatus",
                tags={**args.tags, "Name": f"{name}-{region}"},
                opts=child,
            )
            self.health_check_ids[region] = check.id
            latency = [aws.route53.RecordLatencyRoutingPolicyArgs(region=region)] if cell.failover is None else None
            failover = (
                [aws.route53.RecordFailoverRoutingPolicyArgs(type=cell.failover)] if cell.failover is not None else None
            )
            aws.route53.Record(
                f"{name}-{region}",
                zone_id=zone.zone_id,
                name=args.entry,
                type="A",
                set_identifier=region,
                health_check_id=check.id,
                latency_routing_policies=latency,
                failover_routing_policies=failover,
                aliases=[
                    aws.route53.RecordAliasArgs(
                        name=cell.load_balancer_dns_name,
                        zone_id=cell.load_balancer_zone_id,
                        evaluate_target_health=True,
                    )
                ],
                opts=child,
            )
        self.zone_id = zone.zone_id
        self.register_outputs({"zone_id": self.zone_id, "health_check_ids": self.health_check_ids})
