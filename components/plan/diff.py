"""Compare two plans of one stack (plan JSON v1): what is added, removed and changed, field by field;
which changes replace a stateful resource; how the cost moves, line by line and in total.

Offline, no provider can say what forces a replacement, so REPLACE_FORCING lists the input paths that do
for the types the kit creates (from the providers' documentation: Terraform's ForceNew attributes that
pulumi-aws inherits, and Kubernetes' immutable names). A path not listed is treated as an in-place update;
a changed resource key (a renamed logical resource) is a delete plus a create, unless the new resource lists
the old key in its `aliases` (plan JSON): then `pulumi up` finds the old one under the alias and the diff reports
a move, compared field by field like any change.

Where both plans carry URNs (plan JSON `urn` and `alias_urns`), resources are matched as `pulumi up` matches
them with the stack's state: by URN, then by the URNs of their aliases, and only then by key. A key holds the
parents' names and a URN their types, so a resource under a same-named parent of another type keeps its key and
gets a new URN: unless an alias names the old URN, `pulumi up` deletes it and creates it again, and the diff
says so (a replacement, loud when stateful). Plans without URNs (written before they had them) are matched by
key and key aliases, with a note.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from components import catalog
from components.contract import SECRET, UNKNOWN, canary_release
from components.cost.estimate import STATEFUL_TYPES, money
from components.plan.urn import parse_urn

# type -> input paths (dotted; a prefix covers everything under it) whose change replaces the resource.
REPLACE_FORCING: Mapping[str, tuple[str, ...]] = {
    "aws:s3/bucket:Bucket": ("bucket", "bucketPrefix"),
    "aws:s3/bucketV2:BucketV2": ("bucket", "bucketPrefix"),
    "aws:eks/cluster:Cluster": (
        "name",
        "kubernetesNetworkConfig",
        "accessConfig.bootstrapClusterCreatorAdminPermissions",
        "encryptionConfig.provider.keyArn",
        "outpostConfig",
    ),
    "aws:eks/nodeGroup:NodeGroup": (
        "clusterName",
        "nodeGroupName",
        "nodeGroupNamePrefix",
        "nodeRoleArn",
        "subnetIds",
        "instanceTypes",
        "amiType",
        "capacityType",
        "diskSize",
        "remoteAccess",
    ),
    "aws:eks/addon:Addon": ("addonName", "clusterName"),
    # UpdatePodIdentityAssociation changes the role only: another cluster, namespace or service account is a new one.
    "aws:eks/podIdentityAssociation:PodIdentityAssociation": ("clusterName", "namespace", "serviceAccount"),
    "aws:ec2/vpc:Vpc": ("cidrBlock", "instanceTenancy"),
    "aws:ec2/subnet:Subnet": ("cidrBlock", "availabilityZoneId", "availabilityZone", "vpcId", "ipv6Native"),
    "aws:ec2/natGateway:NatGateway": ("subnetId", "allocationId", "connectivityType", "privateIp"),
    "aws:ec2/eip:Eip": ("domain", "publicIpv4Pool", "networkBorderGroup"),
    "aws:ec2/vpcEndpoint:VpcEndpoint": ("serviceName", "vpcId", "vpcEndpointType"),
    "aws:ec2/securityGroup:SecurityGroup": ("name", "namePrefix", "description", "vpcId"),
    "aws:ec2/routeTable:RouteTable": ("vpcId",),
    "aws:ec2/route:Route": ("routeTableId", "destinationCidrBlock", "destinationPrefixListId"),
    "aws:ec2/routeTableAssociation:RouteTableAssociation": ("subnetId", "gatewayId"),
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": ("vpcId",),
    "aws:ec2/flowLog:FlowLog": (
        "vpcId",
        "logDestination",
        "logDestinationType",
        "trafficType",
        "iamRoleArn",
        "maxAggregationInterval",
    ),
    "aws:cloudwatch/logGroup:LogGroup": ("name", "namePrefix", "logGroupClass"),
    "aws:kms/key:Key": ("customerMasterKeySpec", "keySpec", "keyUsage", "multiRegion"),
    "aws:kms/alias:Alias": ("name", "namePrefix"),
    "aws:iam/role:Role": ("name", "namePrefix", "path"),
    # An access entry, its policy association and a role's policy attachment are keyed by what they join: another
    # principal, policy or role is another one.
    "aws:eks/accessEntry:AccessEntry": ("clusterName", "principalArn", "type"),
    "aws:eks/accessPolicyAssociation:AccessPolicyAssociation": (
        "clusterName",
        "principalArn",
        "policyArn",
        "accessScope",
    ),
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": ("role", "policyArn"),
    # Its CIDR, ports and description are modified in place (ModifySecurityGroupRules); not its group.
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": ("securityGroupId",),
    "aws:iam/policy:Policy": ("name", "namePrefix", "path"),
    "aws:sqs/queue:Queue": ("name", "namePrefix", "fifoQueue"),
    "aws:ebs/volume:Volume": ("availabilityZone", "encrypted", "kmsKeyId", "snapshotId"),
    "aws:fsx/lustreFileSystem:LustreFileSystem": (
        "subnetIds",
        "deploymentType",
        "perUnitStorageThroughput",
        "kmsKeyId",
        "importPath",
        "exportPath",
    ),
    "aws:fsx/dataRepositoryAssociation:DataRepositoryAssociation": (
        "fileSystemId",
        "fileSystemPath",
        "dataRepositoryPath",
        "batchImportMetaDataOnCreate",
        "importedFileChunkSize",
    ),
    # A grant cannot be changed: any new input is a new grant (KMS CreateGrant; there is no UpdateGrant).
    "aws:kms/grant:Grant": ("keyId", "granteePrincipal", "operations", "constraints", "name", "retiringPrincipal"),
    "aws:rds/instance:Instance": ("identifier", "engine", "dbName", "kmsKeyId", "storageEncrypted", "username"),
    "aws:elasticache/replicationGroup:ReplicationGroup": (
        "replicationGroupId",
        "atRestEncryptionEnabled",
        "subnetGroupName",
        "kmsKeyId",
    ),
    "aws:ecr/repository:Repository": ("name",),
    "aws:route53/zone:Zone": ("name",),
    "aws:secretsmanager/secret:Secret": ("name", "namePrefix"),
    "aws:sns/topic:Topic": ("name", "namePrefix", "fifoTopic"),
    "aws:sns/topicSubscription:TopicSubscription": ("topic", "protocol", "endpoint"),
    "aws:cloudwatch/eventRule:EventRule": ("name", "namePrefix", "eventBusName"),
    "aws:lambda/function:Function": ("name", "packageType"),
    # A function's permission is one statement of its policy: every field names it.
    "aws:lambda/permission:Permission": (
        "action",
        "function",
        "principal",
        "sourceArn",
        "sourceAccount",
        "statementId",
        "statementIdPrefix",
        "qualifier",
    ),
    "aws:guardduty/detectorFeature:DetectorFeature": ("detectorId", "name"),
    "aws:lb/loadBalancer:LoadBalancer": ("name", "namePrefix", "internal", "loadBalancerType"),
    # pulumi-kubernetes' DiffConfig replaces the provider when its kubeconfig is unknown ("we can't tell for sure if a
    # computed value has changed, so we make the conservative choice and force a replacement"), as it is while the
    # cluster it comes from is replaced; or when the kubeconfig names another cluster.
    "pulumi:providers:kubernetes": ("kubeconfig",),
}
KUBERNETES_REPLACE_FORCING = ("metadata.name", "metadata.namespace", "apiVersion", "kind")

# type -> the input of subnets it lives in. AWS changes these in place within one VPC only: an EKS cluster's subnets
# (UpdateClusterConfig, since October 2023) and a DB or cache subnet group's (ModifyDBSubnetGroup,
# ModifyCacheSubnetGroup) may change, their VPC may not. So the input forces a replacement when a subnet it takes
# is itself replaced into another VPC (its `vpcId` changed), and is an update otherwise.
VPC_BOUND: Mapping[str, str] = {
    "aws:eks/cluster:Cluster": "vpcConfig.subnetIds",
    "aws:rds/subnetGroup:SubnetGroup": "subnetIds",
    "aws:elasticache/subnetGroup:SubnetGroup": "subnetIds",
}
SUBNET = "aws:ec2/subnet:Subnet"

# What keeps a resource the kit replaces or deletes because of a setting: (type, input path or "(deleted)", name
# suffix) -> the setting to pin in the stack file at its deployed value. Tier changes (docs/upgrades.md, "Changing
# tier") move these with the preset; pinning them keeps the resource.
PINS: tuple[tuple[str, str, str, str], ...] = (
    ("aws:ec2/vpc:Vpc", "cidrBlock", "-vpc", "network.cidr"),
    (SUBNET, "cidrBlock", "", "network.cidr"),
    (SUBNET, "availabilityZoneId", "", "network.zone_ids (append zones, never reorder them)"),
    (SUBNET, "(deleted)", "", "network.nat (public subnets exist while NAT gateways or a public gateway need them)"),
    ("aws:eks/nodeGroup:NodeGroup", "subnetIds", "-system", "network.zone_ids"),
    ("aws:eks/nodeGroup:NodeGroup", "instanceTypes", "-system", "cluster.system_nodes.instance_type"),
)


def pin_hint(change: ResourceChange) -> str | None:
    """The setting whose change replaces or deletes this resource, with its value in BASE where the diff has it."""
    causes = ["(deleted)"] if change.action == "delete" else [f.path for f in change.fields if f.forces_replacement]
    for typ, path, suffix, setting in PINS:
        if typ != change.type or not change.name.endswith(suffix) or path not in causes:
            continue
        before = next((f.before for f in change.fields if f.path == path), None)
        value = f": {json.dumps(before)}" if typ == "aws:ec2/vpc:Vpc" and before is not None else ""
        return f"pin modelyard:{setting}{value} in the stack file to keep it"
    return None


def replace_forcing(resource_type: str) -> tuple[str, ...]:
    if resource_type.startswith("kubernetes:") and not resource_type.startswith("kubernetes:helm.sh"):
        return KUBERNETES_REPLACE_FORCING
    return REPLACE_FORCING.get(resource_type, ())


def forces(resource_type: str, path: str) -> bool:
    """Whether a change of the input at `path` (flatten's dotted form) replaces a resource of this type."""
    return any(
        path == p or path.startswith(p + ".") or path.startswith(p + "[") for p in replace_forcing(resource_type)
    )


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted paths to scalars; lists of scalars stay whole (their order is the value), lists of maps by index."""
    out: dict[str, Any] = {}
    if isinstance(value, Mapping):
        if not value and prefix:
            out[prefix] = {}
        for k in sorted(value, key=str):
            out.update(flatten(value[k], f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(value, list) and any(isinstance(v, (Mapping, list)) for v in value):
        for i, v in enumerate(value):
            out.update(flatten(v, f"{prefix}[{i}]"))
    else:
        out[prefix] = value
    return out


@dataclass(frozen=True, kw_only=True)
class FieldChange:
    path: str
    before: Any
    after: Any
    forces_replacement: bool
    ignored: bool = False  # listed in ignore_changes: `pulumi up` keeps what AWS has


@dataclass(kw_only=True)
class ResourceChange:
    key: str
    type: str
    name: str
    action: str  # create, delete, update, replace, move (a move with in-place changes is a move)
    stateful: bool
    protected: bool = False
    retained: bool = False
    fields: list[FieldChange] = field(default_factory=list)
    moved_from: str | None = None  # the key in BASE of the resource `pulumi up` finds it as (URN, alias)
    reason: str | None = None  # why `pulumi up` cannot find it in BASE although its key is the same
    cascade: str | None = None  # the replaced resource (HEAD key) a replace-forcing input of this one comes from

    @property
    def loud(self) -> bool:
        """A replacement or deletion that loses state (or is blocked by protect)."""
        return self.stateful and self.action in ("replace", "delete")


def _show(value: Any) -> Any:
    return SECRET if value == SECRET else value


def moves(base: Mapping[str, Any], head: Mapping[str, Any]) -> tuple[dict[str, str], list[str]]:
    """For plans without URNs: (new key -> old key, warnings). A BASE key gone from HEAD that a new HEAD resource
    lists in `aliases` is that resource moved (the engine looks a resource up by its URN first, then by its
    aliases). Two resources claiming one old key is an error `pulumi up` stops on: the first claims it here, and a
    warning says so."""
    before = {r["key"] for r in base.get("resources", [])}
    after = {r["key"] for r in head.get("resources", [])}
    claims: dict[str, list[str]] = {}
    for r in sorted(head.get("resources", []), key=lambda r: r["key"]):
        if r["key"] in before:
            continue
        for old in r.get("aliases") or []:
            if old in before and old not in after:
                claims.setdefault(old, []).append(r["key"])
                break
    moved = {news[0]: old for old, news in sorted(claims.items())}
    warnings = [
        f"{', '.join(news)} list {old} in their aliases: `pulumi up` refuses two resources aliased to one"
        for old, news in sorted(claims.items())
        if len(news) > 1
    ]
    return moved, warnings


def has_urns(plan: Mapping[str, Any]) -> bool:
    """Whether every resource of the plan carries its URN (plan JSON written since plans have `urn`)."""
    return all(isinstance(r.get("urn"), str) for r in plan.get("resources", []))


@dataclass(kw_only=True)
class _Matching:
    """Which BASE resource `pulumi up` would find each HEAD resource as (None: a create), and what it leaves."""

    pairs: list[tuple[Mapping[str, Any] | None, Mapping[str, Any] | None]]
    new_urns: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (URN in BASE, URN in HEAD)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _by_key(base: Mapping[str, Any], head: Mapping[str, Any], notes: list[str]) -> _Matching:
    """By key, then by the keys that HEAD's aliases name (plans without URNs)."""
    moved_from, warnings = moves(base, head)
    renamed = set(moved_from.values())
    before = {r["key"]: r for r in base.get("resources", [])}
    after = {r["key"] for r in head.get("resources", [])}
    pairs: list[tuple[Mapping[str, Any] | None, Mapping[str, Any] | None]] = [
        (before.get(moved_from.get(r["key"], r["key"])), r) for r in head.get("resources", [])
    ]
    pairs += [(r, None) for key, r in before.items() if key not in after and key not in renamed]
    return _Matching(pairs=pairs, warnings=warnings, notes=notes)


def _by_urn(base: Mapping[str, Any], head: Mapping[str, Any]) -> _Matching:
    """As `pulumi up` finds each resource in the stack's state: by its URN, else by the first of its alias URNs that
    BASE has and no HEAD resource has as its own (pulumi's step generator); what is left, by key: a HEAD resource
    with a BASE resource's key that neither finds is that resource under a new URN, which `pulumi up` replaces."""
    old = {r["urn"]: r for r in base.get("resources", [])}
    own = {r["urn"] for r in head.get("resources", [])}
    found: dict[str, Mapping[str, Any]] = {}  # HEAD key -> BASE resource
    for r in head.get("resources", []):
        if r["urn"] in old:
            found[r["key"]] = old[r["urn"]]
    claims: dict[str, list[str]] = {}
    for r in sorted(head.get("resources", []), key=lambda r: r["key"]):
        if r["key"] in found:
            continue
        for urn in r.get("alias_urns") or []:
            if urn in old and urn not in own:
                claims.setdefault(urn, []).append(r["key"])
                break
    for urn, keys in sorted(claims.items()):
        found[keys[0]] = old[urn]
    warnings = [
        f"{', '.join(keys)} list {urn} in their aliases: `pulumi up` refuses two resources aliased to one"
        for urn, keys in sorted(claims.items())
        if len(keys) > 1
    ]
    taken = {r["urn"] for r in found.values()}
    by_key = {r["key"]: r for r in base.get("resources", [])}
    new_urns: dict[str, tuple[str, str]] = {}
    for r in head.get("resources", []):
        was = by_key.get(r["key"])
        if r["key"] not in found and was is not None and was["urn"] not in taken:
            found[r["key"]] = was
            taken.add(was["urn"])
            new_urns[r["key"]] = (was["urn"], r["urn"])
    pairs: list[tuple[Mapping[str, Any] | None, Mapping[str, Any] | None]] = [
        (found.get(r["key"]), r) for r in head.get("resources", [])
    ]
    pairs += [(r, None) for r in base.get("resources", []) if r["urn"] not in taken]
    return _Matching(pairs=pairs, new_urns=new_urns, warnings=warnings)


def _matching(base: Mapping[str, Any], head: Mapping[str, Any]) -> _Matching:
    """By URN where both plans carry URNs of the same stack and project; by key otherwise, with a note."""
    notes = []
    sides = [side for side, plan in (("BASE", base), ("HEAD", head)) if plan.get("resources") and not has_urns(plan)]
    if sides:
        notes.append(
            f"{' and '.join(sides)} {'has' if len(sides) == 1 else 'have'} no resource URNs (a plan written before "
            "plan JSON carried `urn`): resources are matched by key and the keys their aliases name, so a resource "
            "moved under a same-named component of another type without an alias, which `pulumi up` replaces, is not "
            "seen"
        )
    if (base.get("project"), base.get("stack")) != (head.get("project"), head.get("stack")) and base.get("resources"):
        notes.append(
            f"BASE is the plan of {base.get('project')}/{base.get('stack')}, HEAD of {head.get('project')}/"
            f"{head.get('stack')}: resources are matched by key, their URNs are not compared"
        )
    return _by_key(base, head, notes) if notes else _by_urn(base, head)


def urn_change(before: str, after: str) -> tuple[str, str]:
    """(why, what keeps it) for a resource whose key stayed while its URN changed: its stack, its project or the
    types of its parents."""
    b, a = parse_urn(before), parse_urn(after)
    alias = f"an alias naming {before} keeps it (components/options.py: moved_from, children_moved_from)"
    if b is None or a is None:
        return "its URN changed", alias
    if b[0] != a[0]:
        return (
            f"it moved from stack {b[0]} to stack {a[0]}, where no alias reaches",
            f"`pulumi state move --source {b[0]} --dest {a[0]} '{before}'` before either stack's `up` keeps it "
            "(docs/deploy.md)",
        )
    if b[1] != a[1]:
        return f"the project's name changed ({b[1]} -> {a[1]})", "the project's former name keeps it"
    was, now = b[2].split("$")[:-1], a[2].split("$")[:-1]
    if len(was) == len(now) and was and was[-1] != now[-1] and was[:-1] == now[:-1]:
        change = f"its parent's type changed ({was[-1]} -> {now[-1]})"
    else:
        chains = " -> ".join("$".join(types) or "(none)" for types in (was, now))
        whose = "an ancestor's type" if len(was) == len(now) else "its parents' types"
        change = f"{whose} changed ({chains})"
    return f"{change} and no alias names the old one", alias


def _regions(plan: Mapping[str, Any]) -> dict[str, str]:
    """Key -> the region its provider sets (a provider's own region for a provider)."""
    by_key = {r["key"]: r for r in plan.get("resources", [])}

    def region(r: Mapping[str, Any]) -> Any:
        if r["type"].startswith("pulumi:providers:"):
            return (r.get("inputs") or {}).get("region")
        provider = by_key.get(r.get("provider") or "")
        return (provider.get("inputs") or {}).get("region") if provider else None

    return {key: value for key, r in by_key.items() if isinstance(value := region(r), str)}


def _key(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> str:
    r = after or before
    assert r is not None
    return str(r["key"])


def _resource_changes(
    base: Mapping[str, Any], head: Mapping[str, Any]
) -> tuple[list[ResourceChange], list[str], list[str]]:
    """(changes sorted by key, warnings, notes)."""
    matching = _matching(base, head)
    renamed = {b["key"]: a["key"] for b, a in matching.pairs if b and a and b["key"] != a["key"]}  # old -> new
    regions_before, regions_after = _regions(base), _regions(head)
    changes: list[ResourceChange] = []
    for b, a in sorted(matching.pairs, key=lambda p: (_key(*p), p[0] is None, p[1] is None)):
        r = a or b
        assert r is not None
        key = r["key"]
        stateful = r["type"] in STATEFUL_TYPES
        if b is None:
            changes.append(ResourceChange(key=key, type=r["type"], name=r["name"], action="create", stateful=stateful))
            continue
        if a is None:
            changes.append(
                ResourceChange(
                    key=key,
                    type=r["type"],
                    name=r["name"],
                    action="delete",
                    stateful=stateful,
                    protected=bool(b.get("protect")),
                    retained=bool(b.get("retain_on_delete")),
                )
            )
            continue
        fields: list[FieldChange] = []
        reason = None
        if key in matching.new_urns:
            urn_before, urn_after = matching.new_urns[key]
            reason = urn_change(urn_before, urn_after)[0]
            fields.append(FieldChange(path="(urn)", before=urn_before, after=urn_after, forces_replacement=True))
        fb, fa = flatten(b.get("inputs") or {}), flatten(a.get("inputs") or {})
        for path in sorted(set(fb) | set(fa)):
            vb, va = fb.get(path), fa.get(path)
            if vb == va or (vb == SECRET and va == SECRET):
                continue
            if UNKNOWN in (vb, va) and path not in fb.keys() ^ fa.keys():
                continue  # an output unknown on one side only is not a planned change
            ignored = any(
                path == i or path.startswith(i + ".") for i in (a.get("options") or {}).get("ignore_changes", [])
            )
            fields.append(
                FieldChange(
                    path=path,
                    before=_show(vb),
                    after=_show(va),
                    forces_replacement=forces(r["type"], path) and not ignored,
                    ignored=ignored,
                )
            )
        for option in ("protect", "retain_on_delete", "provider", "parent"):
            was = b.get(option)
            if option in ("provider", "parent") and isinstance(was, str):
                was = renamed.get(was, was)  # a provider or parent that moved with an alias is the same one
            if was != a.get(option):
                fields.append(
                    FieldChange(
                        path=f"({option})",
                        before=was,
                        after=a.get(option),
                        forces_replacement=option == "provider",
                    )
                )
        # Another region is another resource (found by URN, its key's region changed); a provider's own region is
        # one of its inputs.
        region_before, region_after = regions_before.get(b["key"]), regions_after.get(key)
        provider = r["type"].startswith("pulumi:providers:")
        if region_before and region_after and region_before != region_after and not provider:
            fields.append(
                FieldChange(path="(region)", before=region_before, after=region_after, forces_replacement=True)
            )
        moved_from = b["key"] if b["key"] != key else None
        if fields or moved_from:
            replaced = any(f.forces_replacement for f in fields)
            changes.append(
                ResourceChange(
                    key=key,
                    type=r["type"],
                    name=r["name"],
                    action="replace" if replaced else "move" if moved_from else "update",
                    stateful=stateful,
                    protected=bool(b.get("protect")),
                    retained=bool(b.get("retain_on_delete")),
                    fields=fields,
                    moved_from=moved_from,
                    reason=reason,
                )
            )
    _bind_to_vpc(changes, head)
    changes = _cascade(changes, head)
    return changes, matching.warnings, matching.notes


def _bind_to_vpc(changes: list[ResourceChange], head: Mapping[str, Any]) -> None:
    """VPC_BOUND: an input that changes in place within a VPC forces a replacement when a subnet the resource
    depends on is replaced into another VPC."""
    by_key = {c.key: c for c in changes}
    moved_vpc = {
        c.key
        for c in changes
        if c.type == SUBNET and c.action == "replace" and any(f.path == "vpcId" for f in c.fields)
    }
    if not moved_vpc:
        return
    for r in head.get("resources", []):
        change = by_key.get(r["key"])
        path = VPC_BOUND.get(r["type"])
        if change is None or path is None or not moved_vpc & set(r.get("depends_on") or []):
            continue
        for i, f in enumerate(change.fields):
            if (f.path == path or f.path.startswith(path + "[")) and not f.ignored:
                change.fields[i] = FieldChange(path=f.path, before=f.before, after=f.after, forces_replacement=True)
                change.action = "replace"


def _cascade(changes: list[ResourceChange], head: Mapping[str, Any]) -> list[ResourceChange]:
    """Replacements that follow from others, as `pulumi preview` shows them. A replaced resource's outputs are
    unknown until it is created again, and a resource named in its inputs (as the kit names nearly every one: EKS
    clusters, roles, buckets, log groups, Kubernetes objects) is deleted before it is replaced, where the engine
    replaces every resource with a replace-forcing input that depends on it (the state's per-input
    `propertyDependencies`; plan JSON `property_dependencies`), and so on down. The mock ids follow replace-forcing
    inputs (components/plan/engine.py: identity), so a new id already shows; this adds what takes the replaced
    resource's name or another input that stays the same, such as the node groups, add-ons, access entries and pod
    identity associations of a replaced cluster. Returns the changes, sorted by key."""
    by_key = {c.key: c for c in changes}
    replaced = {c.key for c in changes if c.action == "replace"}
    resources = [
        r
        for r in head.get("resources", [])
        if r.get("custom", True) and (r.get("property_dependencies") or r.get("provider"))
    ]
    found = True
    while found:  # to a fixed point: a cascade may reach a resource registered before the one it follows
        found = False
        for r in resources:
            change = by_key.get(r["key"])
            if r["key"] in replaced or (change is not None and change.action in ("create", "delete")):
                continue
            ignored = (r.get("options") or {}).get("ignore_changes", [])
            flat: dict[str, Any] | None = None
            forced: list[tuple[str, Any, str]] = []  # (input path, its value, the replaced resource it comes from)
            if r.get("provider") in replaced:
                # The engine replaces every resource of a replaced provider: its new instance may manage a new place
                # (a new cluster), where the old objects do not exist.
                forced.append(("(provider)", r["provider"], r["provider"]))
            for prop, keys in sorted((r.get("property_dependencies") or {}).items()):
                upstream = sorted(set(keys) & replaced)
                if not upstream:
                    continue
                flat = flatten(r.get("inputs") or {}) if flat is None else flat
                forced += [
                    (path, value, upstream[0])
                    for path, value in flat.items()
                    if (path == prop or path.startswith(prop + ".") or path.startswith(prop + "["))
                    and forces(r["type"], path)
                    and not any(path == i or path.startswith(i + ".") for i in ignored)
                ]
            if not forced:
                continue
            if change is None:
                change = ResourceChange(
                    key=r["key"],
                    type=r["type"],
                    name=r["name"],
                    action="replace",
                    stateful=r["type"] in STATEFUL_TYPES,
                    protected=bool(r.get("protect")),
                    retained=bool(r.get("retain_on_delete")),
                )
                by_key[change.key] = change
                changes.append(change)
            shown = {f.path for f in change.fields}
            change.fields += [
                FieldChange(path=path, before=_show(value), after=UNKNOWN, forces_replacement=True)
                for path, value, _ in forced
                if path not in shown
            ]
            change.action = "replace"
            change.cascade = forced[0][2]
            replaced.add(change.key)
            found = True
    return sorted(changes, key=lambda c: c.key)


def _line_id(line_id: str, renamed: Mapping[str, str]) -> str:
    """A BASE cost line's id as HEAD names it: lines of a moved resource (`<key>`, `<key>#<part>`) follow it."""
    key, sep, part = line_id.partition("#")
    return renamed.get(key, key) + sep + part


def _cost_delta(
    base: Mapping[str, Any], head: Mapping[str, Any], renamed: Mapping[str, str] | None = None
) -> dict[str, Any] | None:
    cb, ch = base.get("cost"), head.get("cost")
    if not ch:
        return None
    if not cb:  # a stack new in this change (or a base too old to price): everything is added
        zero = "0.00"
        cb = {"lines": [], "monthly_total": zero, "annual_total": zero, "aws_monthly": zero, "band": None}
    lb = {_line_id(ln["id"], renamed or {}): ln for ln in cb["lines"]}
    lh = {ln["id"]: ln for ln in ch["lines"]}
    lines = []
    for line_id in sorted(set(lb) | set(lh)):
        b, h = lb.get(line_id), lh.get(line_id)
        vb = Decimal(b["monthly"]) if b else Decimal(0)
        vh = Decimal(h["monthly"]) if h else Decimal(0)
        basis_changed = bool(b and h and b["basis"] != h["basis"])
        if vb == vh and not basis_changed and (b is None) == (h is None):
            continue
        ref = h or b
        assert ref is not None
        lines.append(
            {
                "id": line_id,
                "category": ref["category"],
                "item": ref["item"],
                "before": money(vb) if b else None,
                "after": money(vh) if h else None,
                "delta": money(vh - vb),
                "basis": h["basis"] if h else b["basis"] if b else "",
                "source": ref["source"],
            }
        )
    lines.sort(key=lambda x: (-abs(Decimal(x["delta"])), x["id"]))
    monthly = Decimal(ch["monthly_total"]) - Decimal(cb["monthly_total"])
    aws = Decimal(ch["aws_monthly"]) - Decimal(cb["aws_monthly"])
    return {
        "currency": ch["currency"],
        "monthly_before": cb["monthly_total"],
        "monthly_after": ch["monthly_total"],
        "monthly_delta": money(monthly),
        "annual_before": cb["annual_total"],
        "annual_after": ch["annual_total"],
        "annual_delta": money(monthly * 12),
        "aws_monthly_delta": money(aws),
        "band_before": cb["band"],
        "band": ch["band"],
        "per_million_output_tokens_before": cb.get("per_million_output_tokens"),
        "per_million_output_tokens_after": ch.get("per_million_output_tokens"),
        "traffic": _traffic_delta(cb.get("traffic"), ch.get("traffic")),
        "lines": lines,
    }


HELM_CHART = "kubernetes:helm.sh/v4:Chart"


@dataclass(frozen=True)
class ServedModel:
    """One model as a plan serves it: the catalog entry and revision of its stable release, its canary's revision."""

    catalog: str
    revision: str
    canary: str | None = None


def served_models(plan: Mapping[str, Any]) -> dict[str, ServedModel]:
    """Served name -> what the plan runs for it, read from the serving releases' values (a canary's release is
    `<model>-canary` and serves the model's name)."""
    stable: dict[str, tuple[str, str]] = {}
    canaries: dict[str, str] = {}
    for r in plan.get("resources", []):
        values = (r.get("inputs") or {}).get("values")
        model = values.get("model") if r.get("type") == HELM_CHART and isinstance(values, dict) else None
        if not isinstance(model, dict) or not {"servedName", "catalogName", "revision"} <= set(model):
            continue
        served, release = str(model["servedName"]), str(r["inputs"].get("name"))
        if release == canary_release(served):
            canaries[served] = str(model["revision"])
        else:
            stable[served] = (str(model["catalogName"]), str(model["revision"]))
    return {
        name: ServedModel(catalog=catalog_name, revision=revision, canary=canaries.get(name))
        for name, (catalog_name, revision) in sorted(stable.items())
    }


def _license(catalog_name: str) -> str:
    try:
        return catalog.resolve_model(catalog_name).license.name
    except catalog.UnknownModelError:
        return "not in this kit's catalog"


def model_changes(base: Mapping[str, Any], head: Mapping[str, Any]) -> list[str]:
    """Each model whose catalog entry, revision or canary changes, in plain words ("llama-8b: revision a -> b").
    A plan exists only for settings whose licenses the stack accepts (settings rule licenses_accepted, on every
    plan): a new catalog entry is named with its license, which the plan has checked."""
    before, after = served_models(base), served_models(head)
    lines: list[str] = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old is None and new is not None:
            lines.append(f"{name}: added, {new.catalog} revision {new.revision} (license {_license(new.catalog)})")
            continue
        if new is None and old is not None:
            lines.append(f"{name}: removed ({old.catalog} revision {old.revision})")
            continue
        assert old is not None and new is not None
        if old.catalog != new.catalog:
            lines.append(f"{name}: model {old.catalog} -> {new.catalog} (license {_license(new.catalog)})")
        if old.canary is not None and new.canary is None and new.revision == old.canary != old.revision:
            lines.append(f"{name}: canary promoted, revision {old.revision} -> {new.revision}")
            continue
        if old.revision != new.revision:
            lines.append(f"{name}: revision {old.revision} -> {new.revision}")
        if old.canary is None and new.canary is not None:
            lines.append(f"{name}: canary of revision {new.canary} added beside revision {new.revision}")
        elif old.canary is not None and new.canary is None:
            lines.append(f"{name}: canary of revision {old.canary} removed (rolled back)")
        elif old.canary != new.canary:
            lines.append(f"{name}: canary revision {old.canary} -> {new.canary}")
    return lines


def _traffic_delta(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """How the change moves the simulated traffic profile (cost.traffic, settings `traffic`): None when neither plan
    simulates one."""
    if before is None and after is None:
        return None

    def pick(t: Mapping[str, Any] | None, key: str) -> Any:
        return None if t is None else t.get(key)

    same = (
        before is not None and after is not None and all(before.get(k) == after.get(k) for k in ("trace", "rate_scale"))
    )
    return {
        "trace": pick(after, "trace") or pick(before, "trace"),
        "rate_scale": pick(after, "rate_scale") or pick(before, "rate_scale"),
        "comparable": same,
        **{
            f"{key}_{side}": pick(t, key)
            for key in ("ttft_attainment", "met", "usd_per_million_output_tokens", "ttft_p99_seconds", "first_limit")
            for side, t in (("before", before), ("after", after))
        },
        "objective": None
        if after is None
        else f"{after['objective_share']:.0%} within {after['ttft_objective_seconds']:g} s",
    }


def diff_plans(base: Mapping[str, Any], head: Mapping[str, Any]) -> dict[str, Any]:
    changes, warnings, notes = _resource_changes(base, head)
    counts = {a: sum(1 for c in changes if c.action == a) for a in ("create", "update", "replace", "delete", "move")}
    for c in changes:
        if not c.loud:
            continue
        why = ", ".join(f.path for f in c.fields if f.forces_replacement)
        if c.action == "replace" and c.reason:
            (urn,) = [f for f in c.fields if f.path == "(urn)"]
            keeps = urn_change(urn.before, urn.after)[1]
            text = (
                f"REPLACES stateful {c.type} {c.name} ({why}): {c.reason}, so `pulumi up` does not find it under its "
                f"new URN: the old one is deleted with its data and a new one created; {keeps}"
            )
        elif c.action == "replace" and c.cascade:
            text = (
                f"REPLACES stateful {c.type} {c.name} ({why}): it takes {why} from {c.cascade}, which is replaced, so "
                "the engine replaces it too: the old one is deleted with its data"
            )
        elif c.action == "replace":
            text = f"REPLACES stateful {c.type} {c.name} ({why}): the old one is deleted with its data"
            if c.moved_from:
                text += f" (it moved from {c.moved_from}: the alias does not save it from the replacement)"
        else:
            text = f"DELETES stateful {c.type} {c.name}"
        if c.type in VPC_BOUND and c.action == "replace":
            text += " (its subnets moved to another VPC, where AWS cannot follow it in place"
            text += "; everything inside the cluster goes with it)" if c.type == "aws:eks/cluster:Cluster" else ")"
        if c.retained:
            text += "; retain_on_delete keeps the old one in AWS, orphaned"
        if c.protected:
            text += "; it is protected, so `pulumi up` will refuse until protect is lifted"
        if hint := pin_hint(c):
            text += f"; {hint}"
        warnings.append(text)
    cost = _cost_delta(base, head, {c.moved_from: c.key for c in changes if c.moved_from})
    if cost and cost["band"] and (cost["band_before"] or {"within": True})["within"] and not cost["band"]["within"]:
        warnings.append(
            f"the change takes the stack out of its {cost['band']['preset']} band "
            f"(${Decimal(cost['band']['low']):,.0f} to ${Decimal(cost['band']['high']):,.0f} a year)"
        )
    return {
        "stack": head.get("stack"),
        "preset": head.get("preset"),
        "base_stack": base.get("stack"),
        "counts": counts,
        "models": model_changes(base, head),
        "warnings": warnings,
        "notes": notes,
        "changes": [
            {
                "key": c.key,
                "type": c.type,
                "name": c.name,
                "action": c.action,
                "stateful": c.stateful,
                "protected": c.protected,
                "retained": c.retained,
                "moved_from": c.moved_from,
                "reason": c.reason,
                "cascade": c.cascade,
                "fields": [
                    {
                        "path": f.path,
                        "before": f.before,
                        "after": f.after,
                        "forces_replacement": f.forces_replacement,
                        "ignored": f.ignored,
                    }
                    for f in c.fields
                ],
            }
            for c in changes
        ],
        "cost": cost,
    }


# --- rendering -----------------------------------------------------------------------------------

GITHUB_COMMENT_LIMIT = 65_536
MARKER = "<!-- modelyard-plan-diff -->"


def _usd(value: str | None, sign: bool = False) -> str:
    if value is None:
        return "-"
    amount = Decimal(value)
    text = f"${abs(amount):,.2f}"
    return f"-{text}" if amount < 0 else (f"+{text}" if sign else text)


def _value(value: Any, limit: int = 120) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    text = "(absent)" if value is None else text
    return text if len(text) <= limit else text[: limit - 3] + "..."


def multi_line(f: Mapping[str, Any]) -> bool:
    """A field whose before and after are text of several lines (a config file in a ConfigMap, a script): shown as a
    unified diff, since two truncated values would often show the same prefix and hide the change."""
    before, after = f["before"], f["after"]
    texts = [v for v in (before, after) if v is not None]
    return bool(texts) and all(isinstance(v, str) for v in texts) and any("\n" in v for v in texts)


def unified(f: Mapping[str, Any]) -> list[str]:
    """The unified diff of a multi-line field (three lines of context), headed by its path."""
    before, after = (f[k] or "" for k in ("before", "after"))
    return list(
        difflib.unified_diff(
            before.splitlines(), after.splitlines(), f"before/{f['path']}", f"after/{f['path']}", lineterm=""
        )
    )


def _cost_summary(cost: Mapping[str, Any] | None) -> list[str]:
    if cost is None:
        return ["Cost: not available (a plan without a cost object)."]
    band = cost["band"]
    if band is None:
        verdict = "no cost tier, so no band"
    else:
        inside = "inside" if band["within"] else "**outside**"
        verdict = f"{inside} the {band['preset']} band ({_usd(band['low'])} to {_usd(band['high'])})"
    return [
        f"Cost: {_usd(cost['monthly_delta'], True)} a month ({_usd(cost['annual_delta'], True)} a year), "
        f"AWS {_usd(cost['aws_monthly_delta'], True)} a month; total {_usd(cost['monthly_before'])} -> "
        f"{_usd(cost['monthly_after'])} a month, {_usd(cost['annual_after'])} a year, {verdict}."
    ]


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def traffic_summary(cost: Mapping[str, Any] | None) -> str | None:
    """One sentence: the change in TTFT attainment and cost per token on the stack's traffic profile."""
    t = (cost or {}).get("traffic")
    if not t:
        return None
    before, after = t["ttft_attainment_before"], t["ttft_attainment_after"]
    if before is not None and after is not None:
        points = (after - before) * 100
        moved = f"{_share(before)} -> {_share(after)} ({points:+.1f} points)"
    else:
        moved = f"{_share(before)} -> {_share(after)}"
    per_token = f"{_usd(t['usd_per_million_output_tokens_before'])} -> {_usd(t['usd_per_million_output_tokens_after'])}"
    text = (
        f"Traffic `{t['trace']}` x{t['rate_scale']:g} (simulated): TTFT attainment {moved} against "
        f"{t['objective'] or 'the objective'}; GPU $ per million output tokens {per_token}"
    )
    if t["met_before"] and t["met_after"] is False:
        text += "; the change makes the stack miss its objective on this traffic"
    if not t["comparable"]:
        text += " (the profile itself changed: not like for like)"
    return text


def _counts(n: Mapping[str, int]) -> str:
    moved = f", {n['move']} to move" if n.get("move") else ""
    return f"{n['create']} to add, {n['update']} to change, {n['replace']} to replace, {n['delete']} to delete{moved}."


def _action(c: Mapping[str, Any]) -> str:
    """`update`, `move from <old key>`, `replace, moved from <old key>`, `replace: <reason>`."""
    if c.get("reason"):
        return f"{c['action']}: {c['reason']}"
    if c.get("cascade"):
        return f"{c['action']}: follows the replacement of {c['cascade']}"
    if not c.get("moved_from"):
        return str(c["action"])
    return f"move from {c['moved_from']}" if c["action"] == "move" else f"{c['action']}, moved from {c['moved_from']}"


def render_text(diff: Mapping[str, Any]) -> str:
    out = [
        f"Plan diff, stack {diff['stack']} ({diff['preset']}): {_counts(diff['counts'])}",
        *_cost_summary(diff["cost"]),
        *(f"Model {line}" for line in diff.get("models", [])),
    ]
    if traffic := traffic_summary(diff["cost"]):
        out.append(traffic)
    for w in diff["warnings"]:
        out.append(f"!! WARNING: {w}")
    for note in diff.get("notes", []):
        out.append(f"Note: {note}.")
    for c in diff["changes"]:
        symbol = {"create": "+", "delete": "-", "update": "~", "replace": "+-", "move": ">"}[c["action"]]
        loud = "  !! STATEFUL" if c["stateful"] and c["action"] in ("replace", "delete") else ""
        out.append(f"{symbol} {c['key']} ({_action(c)}){loud}")
        for f in c["fields"]:
            mark = "  [forces replacement]" if f["forces_replacement"] else ""
            mark += "  [ignored on update: applies at creation only]" if f.get("ignored") else ""
            if multi_line(f):
                out.append(f"      {f['path']}: changed text{mark}")
                out += [f"        {line}" for line in unified(f)]
            else:
                out.append(f"      {f['path']}: {_value(f['before'])} -> {_value(f['after'])}{mark}")
    if diff["cost"] and diff["cost"]["lines"]:
        out.append("Cost by line (a month):")
        for ln in diff["cost"]["lines"]:
            out.append(f"  {_usd(ln['delta'], True):>14}  {ln['item']} ({_usd(ln['before'])} -> {_usd(ln['after'])})")
    return "\n".join(out) + "\n"


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _label(text: str) -> str:
    """Text safe inside a quoted mermaid label."""
    return "".join("'" if ch == '"' else " " if ch in "\n\r`" else ch for ch in str(text))[:80]


def _mermaid_id(text: str) -> str:
    return "n" + "".join(ch if ch.isalnum() else "_" for ch in text)


def mermaid(plan: Mapping[str, Any], diff: Mapping[str, Any] | None = None, max_nodes: int = 60) -> str:
    """The stack as a graph: components and, under each, its resources grouped by type (added, changed or
    replaced groups coloured)."""
    actions = {c["key"]: c["action"] for c in (diff or {}).get("changes", [])}
    resources = plan.get("resources", [])
    components = [r for r in resources if not r.get("custom", True)]
    component_keys = {c["key"] for c in components}
    by_key = {r["key"]: r for r in resources}

    def owner(key: str | None) -> str | None:
        """The nearest component above a resource (resources may be parented to other resources)."""
        seen = set()
        while key is not None and key not in component_keys and key not in seen:
            seen.add(key)
            key = (by_key.get(key) or {}).get("parent")
        return key if key in component_keys else None

    groups: dict[tuple[str | None, str], list[str]] = {}
    for r in resources:
        if not r.get("custom", True) or r["type"].startswith("pulumi:providers:"):
            continue
        groups.setdefault((owner(r.get("parent")), r["type"].rsplit(":", 1)[-1]), []).append(r["key"])
    for c in (diff or {}).get("changes", []):
        if c["action"] == "delete" and not c["type"].startswith("pulumi:providers:"):
            groups.setdefault((None, c["type"].rsplit(":", 1)[-1] + " (deleted)"), []).append(c["key"])
    title = _label(f"{plan.get('stack')} ({plan.get('preset')})")
    lines = ["graph LR", f'  stack(["{title}"])']
    styles: dict[str, list[str]] = {"create": [], "update": [], "replace": [], "delete": [], "move": []}
    for comp in components:
        cid = _mermaid_id(comp["key"])
        up = owner(comp.get("parent"))
        parent = _mermaid_id(up) if up else "stack"
        lines.append(f'  {cid}["{_label(comp["name"])}"]')
        lines.append(f"  {parent} --> {cid}")
    ordered = sorted(groups.items(), key=lambda kv: (kv[0][0] or "", kv[0][1]))
    for shown, ((parent_key, short), keys) in enumerate(ordered):
        if shown >= max_nodes:
            lines.append(f'  more["... {len(groups) - shown} more groups"]')
            lines.append("  stack --> more")
            break
        gid = _mermaid_id(f"{parent_key}/{short}")
        label = f"{len(keys)} x {short}" if len(keys) > 1 else short
        lines.append(f'  {gid}["{_label(label)}"]')
        lines.append(f"  {_mermaid_id(parent_key) if parent_key else 'stack'} --> {gid}")
        acts = [actions.get(k) for k in keys]
        for action in ("delete", "replace", "create", "update", "move"):
            if action in acts or (action == "delete" and "(deleted)" in short):
                styles[action].append(gid)
                break
    colours = {"create": "#d4f8d4", "update": "#fff3c4", "replace": "#ffd0d0", "delete": "#e0e0e0", "move": "#d8e8ff"}
    for action, ids in styles.items():
        if ids:
            lines.append(f"  classDef {action} fill:{colours[action]}")
            lines.append(f"  class {','.join(ids)} {action}")
    return "\n".join(lines)


def _cell(f: Mapping[str, Any], side: str) -> str:
    return "(text: diff below)" if multi_line(f) else f"`{_escape(_value(f[side]))}`"


def render_markdown(diff: Mapping[str, Any], head: Mapping[str, Any], limit: int = GITHUB_COMMENT_LIMIT) -> str:
    head_lines = [
        MARKER,
        f"### modelyard plan diff: stack `{diff['stack']}` ({diff['preset']})",
        "",
        f"**Resources:** {_counts(diff['counts'])}",
        "",
        f"**{_cost_summary(diff['cost'])[0]}**",
        "",
    ]
    if diff.get("models"):
        head_lines += ["**Models:**", ""] + [f"- {_escape(line)}" for line in diff["models"]] + [""]
    if traffic := traffic_summary(diff["cost"]):
        head_lines += [f"**{traffic}.**", ""]
    if diff["warnings"]:
        head_lines += ["> [!CAUTION]"] + [f"> **{_escape(w)}**  " for w in diff["warnings"]] + [""]
    if diff.get("notes"):
        head_lines += ["> [!NOTE]"] + [f"> {_escape(note)}.  " for note in diff["notes"]] + [""]
    body: list[str] = []
    cost = diff["cost"]
    if cost and cost["lines"]:
        body += [
            f"<details><summary>Cost delta by line ({len(cost['lines'])})</summary>",
            "",
            "| line | before | after | delta a month |",
            "|---|---:|---:|---:|",
        ]
        body += [
            f"| {_escape(ln['item'])} | {_usd(ln['before'])} | {_usd(ln['after'])} | {_usd(ln['delta'], True)} |"
            for ln in cost["lines"]
        ]
        body += ["", "</details>", ""]
    changes = diff["changes"]
    if changes:
        body += [f"<details><summary>Resource changes ({len(changes)})</summary>", ""]
        for c in changes:
            loud = " **STATEFUL**" if c["stateful"] and c["action"] in ("replace", "delete") else ""
            moved = f" (from `{c['moved_from']}`)" if c.get("moved_from") else ""
            moved += f" ({_escape(c['reason'])})" if c.get("reason") else ""
            moved += f" (follows the replacement of `{c['cascade']}`)" if c.get("cascade") else ""
            body.append(f"- `{c['action']}` `{c['key']}`{moved}{loud}")
            if c["fields"]:
                body += ["", "  | field | before | after | replaces |", "  |---|---|---|---|"]
                body += [
                    f"  | `{_escape(f['path'])}` | {_cell(f, 'before')} | {_cell(f, 'after')} "
                    f"| {'yes' if f['forces_replacement'] else 'ignored on update' if f.get('ignored') else ''} |"
                    for f in c["fields"]
                ]
                body.append("")
                for f in filter(multi_line, c["fields"]):
                    body += [f"  `{_escape(f['path'])}`:", "", "  ```diff", *(f"  {line}" for line in unified(f))]
                    body += ["  ```", ""]
        body += ["", "</details>", ""]
    body += [
        "<details><summary>Stack diagram</summary>",
        "",
        "```mermaid",
        mermaid(head, diff),
        "```",
        "",
        "</details>",
        "",
    ]
    return truncate("\n".join(head_lines), "\n".join(body), limit)


def truncate(head: str, body: str, limit: int) -> str:
    """head + body within limit characters; the body is cut at a line and closed, with a note."""
    text = head + "\n" + body
    if len(text) <= limit:
        return text
    note = (
        "\n\n</details>\n\n_Truncated: the diff exceeds GitHub's comment limit of "
        f"{GITHUB_COMMENT_LIMIT:,} characters; the full diff is in the workflow's artifact._\n"
    )
    room = max(0, limit - len(head) - 1 - len(note))
    cut = body[:room]
    cut = cut[: cut.rfind("\n")] if "\n" in cut else ""
    if cut.count("```") % 2:
        cut = cut[: cut.rfind("```")]
    return (head + "\n" + cut + note)[:limit]
