"""`modelyard orphans --stack S [--json] [--profile P]`: what is left in the account that belongs to a stack.

Run it before `pulumi destroy` (what the controllers made outside Pulumi, to remove first) and after (what is
left). It asks the Resource Groups Tagging API of the stack's region for every resource carrying:

  - the kit's tags (`modelyard:project` and `modelyard:stack`): what Pulumi made, the state backend `modelyard
    bootstrap` made, and what Karpenter launched (its EC2NodeClasses carry the kit's tags);
  - the tags the controllers put on what they make for the cluster: `kubernetes.io/cluster/<cluster>` and
    `eks:eks-cluster-name` (Karpenter's instances, volumes, network interfaces, launch templates),
    `elbv2.k8s.aws/cluster` (the Load Balancer Controller's load balancers, target groups, security groups),
    `cluster.k8s.amazonaws.com/name` (the VPC CNI's network interfaces);

and EC2 itself for network interfaces and volumes by the same tags (per-service describes see what the tagging
API may not have indexed yet). Each resource is sorted into one group, in the order docs/destroy.md removes them:

  outside-pulumi  made by a controller; `pulumi destroy` does not know it and cannot delete it
  managed         made by Pulumi: the stack's destroy removes it (after a destroy: it failed or was interrupted)
  retained        marked retain-on-delete in the stack's plan (buckets, keys, databases): kept on purpose
  state           the Pulumi state bucket and secrets key (`modelyard bootstrap`): delete last, if ever

Retained and state resources come with how to delete them on purpose. Exit 0 with the list (empty or not),
2 bad input, 3 the environment blocks it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import botocore.exceptions

from components.errors import ExitCode
from components.settings import Settings
from components.tools import aws
from components.tools.aws import Clients, caller_identity, error_code

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STATE_COMPONENT = "state"  # the component tag of what `modelyard bootstrap` creates


class Group(StrEnum):
    OUTSIDE_PULUMI = "outside-pulumi"
    MANAGED = "managed"
    RETAINED = "retained"
    STATE = "state"


GROUP_ORDER = tuple(Group)

# Tag keys only a controller puts on what it makes (never the kit's Pulumi program).
CONTROLLER_TAG_KEYS = (
    "karpenter.sh/nodepool",
    "karpenter.sh/nodeclaim",
    "karpenter.k8s.aws/ec2nodeclass",
    "elbv2.k8s.aws/cluster",
    "service.k8s.aws/stack",
    "ingress.k8s.aws/stack",
    "cluster.k8s.amazonaws.com/name",
    "kubernetes.io/created-for/pvc/name",
    "ebs.csi.aws.com/cluster",
)

# The pulumi-aws types the kit retains on delete, as the kind of their ARN (service:resource type).
RETAINED_KINDS: Mapping[str, str] = {
    "aws:s3/bucket:Bucket": "s3:bucket",
    "aws:kms/key:Key": "kms:key",
    "aws:rds/instance:Instance": "rds:db",
    "aws:elasticache/replicationGroup:ReplicationGroup": "elasticache:replicationgroup",
    "aws:ecr/repository:Repository": "ecr:repository",
    "aws:cloudwatch/logGroup:LogGroup": "logs:log-group",
}


@dataclass(frozen=True, order=True, kw_only=True)
class Orphan:
    group: str
    kind: str
    arn: str
    name: str
    component: str
    how_to_delete: str


def arn_kind(arn: str) -> tuple[str, str]:
    """(kind, name) of an ARN: arn:aws:ec2:r:a:volume/vol-1 -> ("ec2:volume", "vol-1"); S3's have no type."""
    parts = arn.split(":", 5)
    service, resource = parts[2], parts[5]
    if service == "s3":
        return "s3:bucket", resource
    cut = min((i for i in (resource.find("/"), resource.find(":")) if i >= 0), default=-1)
    if cut < 0:
        return f"{service}:{resource}", resource
    kind, name = resource[:cut], resource[cut + 1 :]
    if service == "logs":  # a log group's ARN may end in :* (its streams)
        name = name.removesuffix(":*")
    return f"{service}:{kind}", name


def how_to_delete(kind: str, name: str, arn: str, region: str) -> str:
    """The AWS CLI command (or steps) that deletes one resource on purpose."""
    r = f"--region {region}"
    commands = {
        "ec2:instance": f"aws ec2 terminate-instances --instance-ids {name} {r}",
        "ec2:volume": f"aws ec2 delete-volume --volume-id {name} {r} (once detached)",
        "ec2:network-interface": f"aws ec2 delete-network-interface --network-interface-id {name} {r} (once detached)",
        "ec2:security-group": f"aws ec2 delete-security-group --group-id {name} {r} (once nothing uses it)",
        "ec2:launch-template": f"aws ec2 delete-launch-template --launch-template-id {name} {r}",
        "elasticloadbalancing:loadbalancer": f"aws elbv2 delete-load-balancer --load-balancer-arn {arn} {r}",
        "elasticloadbalancing:targetgroup": f"aws elbv2 delete-target-group --target-group-arn {arn} {r}",
        "logs:log-group": f"aws logs delete-log-group --log-group-name {name} {r}",
        "s3:bucket": f"empty every object version (console: Empty), then aws s3api delete-bucket --bucket {name} {r}",
        "kms:key": f"once nothing encrypted with it is needed: aws kms schedule-key-deletion --key-id {name} "
        f"--pending-window-in-days 30 {r} (cancel-key-deletion undoes it within the window)",
        "rds:db": f"aws rds modify-db-instance --db-instance-identifier {name} --no-deletion-protection {r}, then "
        f"aws rds delete-db-instance --db-instance-identifier {name} --final-db-snapshot-identifier {name}-final {r}",
        "elasticache:replicationgroup": f"aws elasticache delete-replication-group --replication-group-id {name} "
        f"--final-snapshot-identifier {name}-final {r}",
        "ecr:repository": f"aws ecr delete-repository --repository-name {name} --force {r}",
    }
    return commands.get(kind, f"delete it in the {kind.split(':')[0]} console, or `aws {kind.split(':')[0]} help`")


def retained_in_plan(plan: Mapping[str, Any]) -> set[tuple[str, str]]:
    """(ARN kind, component tag) of every resource the plan retains on delete."""
    retained = set()
    for resource in plan["resources"]:
        kind = RETAINED_KINDS.get(resource["type"])
        if resource.get("retain_on_delete") and kind:
            tags = resource["inputs"].get("tags") or {}
            retained.add((kind, str(tags.get("modelyard:component", ""))))
    return retained


def classify(tags: Mapping[str, str], kind: str, retained: set[tuple[str, str]]) -> Group:
    component = tags.get("modelyard:component", "")
    if any(key in tags for key in CONTROLLER_TAG_KEYS):
        return Group.OUTSIDE_PULUMI
    if component == STATE_COMPONENT:
        return Group.STATE
    if (kind, component) in retained:
        return Group.RETAINED
    if component:
        return Group.MANAGED
    return Group.OUTSIDE_PULUMI  # the cluster's tags alone: a controller made it


def tag_filters(settings: Settings) -> list[list[dict[str, Any]]]:
    """One tagging-API query per way a resource can belong to the stack (filters within one query are ANDed)."""
    cluster = settings.name
    return [
        [
            {"Key": "modelyard:project", "Values": [settings.project]},
            {"Key": "modelyard:stack", "Values": [settings.deployment]},
        ],
        [{"Key": f"kubernetes.io/cluster/{cluster}"}],
        [{"Key": "eks:eks-cluster-name", "Values": [cluster]}],
        [{"Key": "elbv2.k8s.aws/cluster", "Values": [cluster]}],
        [{"Key": "cluster.k8s.amazonaws.com/name", "Values": [cluster]}],
    ]


def _ec2_filters(settings: Settings) -> list[list[dict[str, Any]]]:
    cluster = settings.name
    return [
        [{"Name": "tag:modelyard:stack", "Values": [settings.deployment]}],
        [{"Name": "tag-key", "Values": [f"kubernetes.io/cluster/{cluster}"]}],
        [{"Name": "tag:cluster.k8s.amazonaws.com/name", "Values": [cluster]}],
    ]


def _tags(items: Iterable[Mapping[str, str]]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in items}


def find_tagged(settings: Settings, clients: Clients, account: str) -> dict[str, dict[str, str]]:
    """ARN -> tags of everything in the region that belongs to the stack."""
    found: dict[str, dict[str, str]] = {}
    pages = clients("resourcegroupstaggingapi").get_paginator("get_resources")
    for filters in tag_filters(settings):
        for page in pages.paginate(TagFilters=filters, ResourcesPerPage=100):
            for item in page.get("ResourceTagMappingList", []):
                found[item["ResourceARN"]] = _tags(item.get("Tags", []))
    ec2 = clients("ec2")
    prefix = f"arn:aws:ec2:{settings.region}:{account}"
    for filters in _ec2_filters(settings):
        for page in ec2.get_paginator("describe_network_interfaces").paginate(Filters=filters):
            for eni in page.get("NetworkInterfaces", []):
                arn = f"{prefix}:network-interface/{eni['NetworkInterfaceId']}"
                found.setdefault(arn, _tags(eni.get("TagSet", [])))
        for page in ec2.get_paginator("describe_volumes").paginate(Filters=filters):
            for volume in page.get("Volumes", []):
                found.setdefault(f"{prefix}:volume/{volume['VolumeId']}", _tags(volume.get("Tags", [])))
    return found


def _gone(clients: Clients, kind: str, name: str) -> bool:
    """Whether a listed resource is on its way out already: the tagging API lists keys pending deletion and
    terminated instances for a while."""
    try:
        if kind == "kms:key":
            return clients("kms").describe_key(KeyId=name)["KeyMetadata"]["KeyState"] == "PendingDeletion"
        if kind == "ec2:instance":
            reservations = clients("ec2").describe_instances(InstanceIds=[name])["Reservations"]
            states = [i["State"]["Name"] for r in reservations for i in r["Instances"]]
            return bool(states) and all(s in ("shutting-down", "terminated") for s in states)
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) in ("NotFoundException", "InvalidInstanceID.NotFound"):
            return True
        raise
    return False


def find_orphans(settings: Settings, clients: Clients, plan: Mapping[str, Any]) -> list[Orphan]:
    account = caller_identity(clients)["account"]
    retained = retained_in_plan(plan)
    orphans = []
    for arn, tags in find_tagged(settings, clients, account).items():
        kind, name = arn_kind(arn)
        project, stack = tags.get("modelyard:project"), tags.get("modelyard:stack")
        if project is not None and (project, stack) != (settings.project, settings.deployment):
            continue  # another deployment's resource that happens to sit in this cluster's subnets
        if _gone(clients, kind, name):
            continue
        group = classify(tags, kind, retained)
        orphans.append(
            Orphan(
                group=group.value,
                kind=kind,
                arn=arn,
                name=name,
                component=tags.get("modelyard:component", ""),
                how_to_delete=how_to_delete(kind, name, arn, settings.region),
            )
        )
    return sorted(orphans, key=lambda o: (GROUP_ORDER.index(Group(o.group)), o.kind, o.arn))


HEADINGS = {
    Group.OUTSIDE_PULUMI: "made outside Pulumi (remove before `pulumi destroy` removes the cluster; docs/destroy.md)",
    Group.MANAGED: "managed by Pulumi (`pulumi destroy` removes these; left after a destroy: it did not finish)",
    Group.RETAINED: "retained on delete (kept on purpose: buckets, keys, databases); to delete one on purpose",
    Group.STATE: "the Pulumi state backend (modelyard bootstrap): delete last, after `pulumi stack rm`",
}


def render(settings: Settings, orphans: list[Orphan]) -> str:
    lines = [f"orphans: stack {settings.deployment}, region {settings.region}"]
    for group in GROUP_ORDER:
        members = [o for o in orphans if o.group == group.value]
        if not members:
            continue
        lines.append(f"{HEADINGS[group]}:")
        for orphan in members:
            lines.append(f"  {orphan.kind:<36} {orphan.name}")
            if group in (Group.RETAINED, Group.STATE, Group.OUTSIDE_PULUMI):
                lines.append(f"      {orphan.how_to_delete}")
    counts = ", ".join(f"{sum(o.group == g.value for o in orphans)} {g.value}" for g in GROUP_ORDER)
    lines.append(f"{len(orphans)} resources: {counts}" if orphans else "nothing of this stack is left in the region")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="modelyard orphans",
        description="List what is left in the account that carries the stack's tags or its cluster's: made outside "
        "Pulumi, managed, retained on delete, the state backend; with how to delete the retained ones on purpose. "
        "Exit 0: listed; 3: the environment blocks it; 2: bad input.",
    )
    parser.add_argument("--stack", required=True, help="a stack of stacks/Pulumi.<stack>.yaml")
    parser.add_argument("--profile", help="an AWS CLI profile (default: boto3's credential chain)")
    parser.add_argument("--json", action="store_true", help="print the list as JSON")
    parser.add_argument("--project-dir", type=Path, default=PROJECT_ROOT, metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    from components.plan.run import load_settings, plan_stack

    _, settings = load_settings(args.project_dir, args.stack)
    plan = plan_stack(args.project_dir, args.stack)  # what the stack retains on delete; offline
    if settings.aws_stack is not None:
        _, settings = load_settings(args.project_dir, settings.aws_stack)
    clients = aws.open_clients(args.profile, settings.region)
    orphans = find_orphans(settings, clients, plan)
    if args.json:
        document = {
            "schema": "modelyard.orphans/v1",
            "stack": settings.deployment,
            "region": settings.region,
            "orphans": [asdict(o) for o in orphans],
        }
        sys.stdout.write(json.dumps(document, indent=2, sort_keys=True) + "\n")
    else:
        sys.stdout.write(render(settings, orphans))
    return ExitCode.OK
