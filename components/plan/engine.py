"""The offline engine: run the Pulumi program under the SDK's mocks and record what it registers.

The program is exactly the one `pulumi up` runs (components.program.run). A MockMonitor subclass
records every registration with its parent, provider, dependencies and options; the mocks answer with
plausible outputs (ARNs with an account and the region, ids, endpoints), or, in preview mode, with the
inputs only, so that every computed output is unknown as it is in a real `pulumi preview`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi.runtime
import pulumi.runtime.settings
from google.protobuf import json_format
from pulumi.runtime import mocks, rpc
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from components.contract import SECRET, UNKNOWN
from components.plan.urn import new_urn, parse_urn
from components.settings.stackfile import StackFile

MOCK_ACCOUNT = "123456789012"  # AWS's documented example account id: never a real one
# The organization of a DIY backend (S3, local file): stack references name stacks `organization/<project>/<stack>`.
ORGANIZATION = "organization"


@dataclass(frozen=True, kw_only=True)
class AliasSpec:
    """One alias as the program gave it: a whole URN, or only what differs from the resource as it is now
    (an empty field means "as now"; `no_parent`: it used to have no parent)."""

    urn: str = ""
    name: str = ""
    type: str = ""
    parent_urn: str = ""
    no_parent: bool = False
    stack: str = ""
    project: str = ""


def alias_specs(request: Any) -> list[AliasSpec]:
    """The aliases of a RegisterResourceRequest. The SDK sends `aliases` (alias_pb2.Alias: a URN or a spec)
    when the monitor supports alias specs, as the MockMonitor says it does; otherwise whole URNs in `aliasURNs`."""
    out = [AliasSpec(urn=urn) for urn in request.aliasURNs]
    for alias in request.aliases:
        if alias.WhichOneof("alias") == "urn":
            out.append(AliasSpec(urn=alias.urn))
            continue
        spec = alias.spec
        out.append(
            AliasSpec(
                name=spec.name,
                type=spec.type,
                parent_urn=spec.parentUrn if spec.WhichOneof("parent") == "parentUrn" else "",
                no_parent=spec.WhichOneof("parent") == "noParent" and spec.noParent,
                stack=spec.stack,
                project=spec.project,
            )
        )
    return out


@dataclass(kw_only=True)
class Registration:
    """One resource as the program registered it (names, not URNs: URNs are engine details)."""

    urn: str
    type: str
    name: str
    custom: bool
    parent_urn: str
    provider_urn: str
    protect: bool
    retain_on_delete: bool
    dependency_urns: list[str]
    inputs: dict[str, Any]
    property_dependency_urns: dict[str, list[str]] = field(default_factory=dict)
    """Per input, the resources its value comes from (the request's propertyDependencies, as the engine keeps them in
    the state): what the diff follows when one of them is replaced."""
    ignore_changes: list[str]
    custom_timeouts: dict[str, str]
    aliases: list[AliasSpec] = field(default_factory=list)
    """Other identities the engine would match in the stack's state (options.moved_from, provider type aliases)."""


@dataclass(frozen=True, kw_only=True)
class StackOutputs:
    """A stack's outputs as a stack reference reads them: values (unknowns as the engine's sentinel) and which
    are secret."""

    values: dict[str, Any]
    secret_names: list[str]


@dataclass(kw_only=True)
class Recording:
    stack: str = ""
    registrations: list[Registration] = field(default_factory=list)
    stack_urn: str = ""
    outputs: dict[str, Any] = field(default_factory=dict)
    """Outputs as the plan shows them (secrets masked, unknowns as text)."""
    exported: StackOutputs = field(default_factory=lambda: StackOutputs(values={}, secret_names=[]))
    """Outputs as another stack reads them (for the Kubernetes layer of a split deployment)."""


def _mock_id(urn: str, prefix: str) -> str:
    return f"{prefix}-{hashlib.sha256(urn.encode()).hexdigest()[:17]}"


def identity(typ: str, urn: str, inputs: Mapping[str, Any]) -> str:
    """What a resource's mock id is derived from: its URN and the values of its replace-forcing inputs
    (REPLACE_FORCING in components/plan/diff.py). A resource the providers would replace gets a new id, so
    everything that takes that id changes too and shows its own replacement where the id is replace-forcing
    there (a new VPC: new subnets, node groups, subnet groups...); a resource changed in place keeps its id.
    A type with no such input keeps the id of its URN alone."""
    from components.plan.diff import flatten, forces

    forcing = {path: value for path, value in flatten(dict(inputs)).items() if forces(typ, path)}
    if not forcing:
        return urn
    return urn + "\n" + json.dumps(forcing, sort_keys=True, default=str)


# Resource-id prefixes AWS uses, so mock ids look like what a user sees in the console.
_ID_PREFIXES = {
    "aws:amp/workspace:Workspace": "ws",
    "aws:ec2/vpc:Vpc": "vpc",
    "aws:ec2/subnet:Subnet": "subnet",
    "aws:ec2/internetGateway:InternetGateway": "igw",
    "aws:ec2/natGateway:NatGateway": "nat",
    "aws:ec2/eip:Eip": "eipalloc",
    "aws:ec2/routeTable:RouteTable": "rtb",
    "aws:ec2/securityGroup:SecurityGroup": "sg",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": "sg",
    "aws:ec2/vpcEndpoint:VpcEndpoint": "vpce",
    "aws:ec2/flowLog:FlowLog": "fl",
    "aws:ec2/routeTableAssociation:RouteTableAssociation": "rtbassoc",
    "aws:ec2/route:Route": "r",
    "aws:ec2/vpcPeeringConnection:VpcPeeringConnection": "pcx",
    "aws:fsx/lustreFileSystem:LustreFileSystem": "fs",
}

# ARN shapes for the types the kit creates: (service, resource part from name/inputs).
_ARNS: dict[str, Callable[[str, Mapping[str, Any]], tuple[str, str]]] = {
    "aws:cloudwatch/logGroup:LogGroup": lambda rid, i: ("logs", f"log-group:{i.get('name', rid)}"),
    "aws:iam/role:Role": lambda rid, i: ("iam", f"role/{i.get('name', rid)}"),
    "aws:amp/workspace:Workspace": lambda rid, i: ("aps", f"workspace/{rid}"),
    "aws:ec2/vpc:Vpc": lambda rid, i: ("ec2", f"vpc/{rid}"),
    "aws:ec2/subnet:Subnet": lambda rid, i: ("ec2", f"subnet/{rid}"),
    "aws:ec2/securityGroup:SecurityGroup": lambda rid, i: ("ec2", f"security-group/{rid}"),
    "aws:ec2/vpcEndpoint:VpcEndpoint": lambda rid, i: ("ec2", f"vpc-endpoint/{rid}"),
    "aws:kms/key:Key": lambda rid, i: ("kms", f"key/{rid}"),
    "aws:eks/cluster:Cluster": lambda rid, i: ("eks", f"cluster/{i.get('name', rid)}"),
    "aws:eks/nodeGroup:NodeGroup": lambda rid, i: (
        "eks",
        f"nodegroup/{i.get('clusterName', '')}/{i.get('nodeGroupName', rid)}/{rid[-8:]}",
    ),
    "aws:eks/addon:Addon": lambda rid, i: ("eks", f"addon/{i.get('clusterName', '')}/{i.get('addonName', rid)}"),
    "aws:eks/accessEntry:AccessEntry": lambda rid, i: ("eks", f"access-entry/{i.get('clusterName', '')}/{rid}"),
    "aws:sqs/queue:Queue": lambda rid, i: ("sqs", str(i.get("name", rid))),
    "aws:cloudwatch/eventRule:EventRule": lambda rid, i: ("events", f"rule/{i.get('name', rid)}"),
    "aws:ecr/repository:Repository": lambda rid, i: ("ecr", f"repository/{i.get('name', rid)}"),
    "aws:codebuild/project:Project": lambda rid, i: ("codebuild", f"project/{i.get('name', rid)}"),
    "aws:lb/loadBalancer:LoadBalancer": lambda rid, i: ("elasticloadbalancing", f"loadbalancer/net/{rid}/{rid[-16:]}"),
    "aws:lb/targetGroup:TargetGroup": lambda rid, i: ("elasticloadbalancing", f"targetgroup/{rid[:32]}/{rid[-16:]}"),
    "aws:acm/certificate:Certificate": lambda rid, i: ("acm", f"certificate/{rid[-17:]}"),
    "aws:rds/instance:Instance": lambda rid, i: ("rds", f"db:{i.get('identifier', rid)}"),
    "aws:elasticache/replicationGroup:ReplicationGroup": lambda rid, i: ("elasticache", f"replicationgroup:{rid}"),
    "aws:sns/topic:Topic": lambda rid, i: ("sns", str(i.get("name", rid))),
    "aws:lambda/function:Function": lambda rid, i: ("lambda", f"function:{i.get('name', rid)}"),
    # Secrets Manager appends six random characters to a secret's name.
    "aws:secretsmanager/secret:Secret": lambda rid, i: (
        "secretsmanager",
        f"secret:{i.get('name') or i.get('namePrefix', '')}{rid[-6:]}",
    ),
}
_GLOBAL_SERVICES = {"iam"}


def _zone_id(rid: str) -> str:
    return "Z" + hashlib.sha256(rid.encode()).hexdigest()[:20].upper()


def _service_outputs(typ: str, rid: str, state: Mapping[str, Any], region: str) -> dict[str, Any]:
    """The outputs AWS computes that the kit reads (addresses, zone ids, validation records), deterministic."""
    token = hashlib.sha256(rid.encode()).hexdigest()[:12]
    if typ == "aws:lb/loadBalancer:LoadBalancer":
        # The ARN suffix (CloudWatch's LoadBalancer dimension) is the ARN after "loadbalancer/", as _ARNS shapes it.
        return {
            "dnsName": f"{rid[:20]}-{token}.elb.{region}.amazonaws.com",
            # Each region's load balancers have their own canonical hosted zone.
            "zoneId": _zone_id(f"{rid}-{region}-lb"),
            "arnSuffix": f"net/{rid}/{rid[-16:]}",
        }
    if typ == "aws:lb/targetGroup:TargetGroup":
        return {"arnSuffix": f"targetgroup/{rid[:32]}/{rid[-16:]}"}
    if typ == "aws:route53/zone:Zone":
        return {"zoneId": _zone_id(rid)}
    if typ == "aws:ec2/vpcEndpoint:VpcEndpoint" and state.get("vpcEndpointType") == "Interface":
        # The endpoint's own regional name first (vpce-<id>-<suffix>.<service>.<region>.vpce.amazonaws.com), in
        # the region's hosted zone of endpoint names; then one name per zone (not modelled).
        service = str(state.get("serviceName", "")).removeprefix(f"com.amazonaws.{region}.")
        return {
            "dnsEntries": [
                {
                    "dnsName": f"{rid}-{token[:8]}.{service}.{region}.vpce.amazonaws.com",
                    "hostedZoneId": _zone_id(f"vpce-{region}"),
                }
            ]
        }
    if typ == "aws:route53/record:Record":
        return {"fqdn": str(state.get("name", ""))}
    if typ == "aws:acm/certificate:Certificate":
        domain = str(state.get("domainName", ""))
        return {
            "domainValidationOptions": [
                {
                    "domainName": domain,
                    "resourceRecordName": f"_{token}.{domain}.",
                    "resourceRecordType": "CNAME",
                    "resourceRecordValue": f"_{token[::-1]}.acm-validations.aws.",
                }
            ]
        }
    if typ == "aws:rds/instance:Instance":
        address = f"{state.get('identifier', rid)}.c{token}.{region}.rds.amazonaws.com"
        return {"address": address, "endpoint": f"{address}:{state.get('port', 5432)}"}
    if typ == "aws:elasticache/replicationGroup:ReplicationGroup":
        return {"primaryEndpointAddress": f"master.{rid}.{token[:6]}.cache.amazonaws.com"}
    if typ == "aws:fsx/lustreFileSystem:LustreFileSystem":
        # FSx names a file system's DNS after its id; the mount name is eight characters of its own.
        return {"dnsName": f"{rid}.fsx.{region}.amazonaws.com", "mountName": token[:8]}
    if typ == "random:index/randomPassword:RandomPassword":
        # Never a password anyone uses: the offline plan prints it only as [secret].
        return {"result": hashlib.sha256(f"offline-{rid}".encode()).hexdigest()[: int(state.get("length", 16))]}
    return {}


def _eks_cluster_outputs(rid: str, state: Mapping[str, Any], *, region: str) -> dict[str, Any]:
    """What EKS returns for a cluster: endpoint, CA bundle, OIDC issuer, cluster security group (deterministic)."""
    token = hashlib.sha256(rid.encode()).hexdigest()[:32].upper()
    vpc_config = dict(state.get("vpcConfig") or {})
    vpc_config.setdefault("clusterSecurityGroupId", _mock_id(f"{rid}-cluster-sg", "sg"))
    return {
        "endpoint": f"https://{token}.gr7.{region}.eks.amazonaws.com",
        # Not a certificate: a fixed placeholder, base64 like the real field.
        "certificateAuthority": {"data": "TU9DSy1DQS1CVU5ETEU="},
        "identities": [{"oidcs": [{"issuer": f"https://oidc.eks.{region}.amazonaws.com/id/{token}"}]}],
        "vpcConfig": vpc_config,
        "status": "ACTIVE",
    }


class PlanMocks(mocks.Mocks):
    """Answers registrations with plausible outputs; in preview, with the inputs only."""

    def __init__(
        self, *, preview: bool, provider_regions: dict[str, str], references: Mapping[str, StackOutputs] | None = None
    ) -> None:
        self.preview = preview
        self.provider_regions = provider_regions
        self.references = dict(references or {})

    def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        urn = f"{args.typ}::{args.name}"
        if args.typ == "pulumi:pulumi:StackReference":
            # Another stack's outputs as its own (applied) run recorded them.
            name = str(args.inputs.get("name", ""))
            if name not in self.references:
                known = ", ".join(sorted(self.references))
                raise KeyError(f"the offline plan knows no stack {name!r} (known: {known})")
            outputs = self.references[name]
            return name, {"name": name, "outputs": outputs.values, "secretOutputNames": outputs.secret_names}
        if args.typ.startswith("pulumi:providers:"):
            return _mock_id(urn, "provider"), dict(args.inputs)
        if self.preview:
            return "", dict(args.inputs)
        rid = _mock_id(identity(args.typ, urn, args.inputs), _ID_PREFIXES.get(args.typ, args.name))
        state = dict(args.inputs)
        state.setdefault("id", rid)
        if args.typ in _ARNS:
            region = self._region(args)
            service, resource = _ARNS[args.typ](rid, args.inputs)
            region_part = "" if service in _GLOBAL_SERVICES else region
            state["arn"] = f"arn:aws:{service}:{region_part}:{MOCK_ACCOUNT}:{resource}"
        state.update(_service_outputs(args.typ, rid, state, self._region(args)))
        if args.typ == "aws:eks/cluster:Cluster":
            state.update(_eks_cluster_outputs(rid, state, region=self._region(args)))
        if args.typ == "aws:kms/key:Key":
            state["keyId"] = rid
        if args.typ == "aws:s3/bucket:Bucket":
            # S3 buckets are known by name: the id is the name, the ARN has no region or account.
            rid = state["id"] = str(args.inputs.get("bucket", rid))
            state["arn"] = f"arn:aws:s3:::{rid}"
            state["bucketRegionalDomainName"] = f"{rid}.s3.{self._region(args)}.amazonaws.com"
        if args.typ == "aws:ecr/repository:Repository":
            name = args.inputs.get("name", rid)
            state["repositoryUrl"] = f"{MOCK_ACCOUNT}.dkr.ecr.{self._region(args)}.amazonaws.com/{name}"
        if args.typ == "aws:sqs/queue:Queue":
            name = args.inputs.get("name", rid)
            state["url"] = f"https://sqs.{self._region(args)}.amazonaws.com/{MOCK_ACCOUNT}/{name}"
        if args.typ.startswith("aws:") and "tags" in args.inputs:
            state["tagsAll"] = args.inputs["tags"]
        return rid, state

    def _region(self, args: mocks.MockResourceArgs) -> str:
        return self.provider_regions.get(args.provider.split("::")[-1] if args.provider else "", "")

    def call(self, args: mocks.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        """Invokes run during a real preview too, so both modes answer them. Only the few the kit uses."""
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": MOCK_ACCOUNT,
                "arn": f"arn:aws:iam::{MOCK_ACCOUNT}:user/offline-plan",
                "userId": "AIDAOFFLINEPLAN",
                "id": MOCK_ACCOUNT,
            }, []
        raise NotImplementedError(f"the offline engine does not answer the invoke {args.token}")


class RecordingMonitor(mocks.MockMonitor):
    """A MockMonitor that keeps what MockResourceArgs drops: parent, provider, dependencies, options, aliases;
    and gives every resource the URN the real engine gives it."""

    def __init__(self, mocks_: PlanMocks, recording: Recording) -> None:
        super().__init__(mocks_)
        self.recording = recording
        self.plan_mocks = mocks_

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        """The engine's URN (new_urn), not the MockMonitor's: that one prefixes a top-level resource's type with
        `pulumi:pulumi:Stack$` and a child's with its parent's own type only, where the engine puts no prefix under
        the stack and the parent's whole qualified type under a component. Since aliases that the program computes
        from a parent's URN (pulumi.Alias(parent=...), create_urn) are built on these, they come out as the engine
        computes them too."""
        parsed = parse_urn(parent) if parent else None
        parent_type = parsed[2] if parsed else ""
        return new_urn(pulumi.get_stack(), pulumi.get_project(), parent_type, type_, name)

    def ReadResource(self, request: Any) -> Any:
        """Reads (stack references) are part of what a stack depends on: recorded like registrations."""
        response = super().ReadResource(request)
        self.recording.registrations.append(
            Registration(
                urn=response.urn,
                type=request.type,
                name=request.name,
                custom=True,
                parent_urn=request.parent,
                provider_urn=request.provider.rsplit("::", 1)[0] if request.provider else "",
                protect=False,
                retain_on_delete=False,
                dependency_urns=list(request.dependencies),
                inputs={"name": request.id},
                ignore_changes=[],
                custom_timeouts={},
            )
        )
        return response

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            self.recording.stack_urn = response.urn
            return response
        raw = json_format.MessageToDict(request.object)
        if request.type.startswith("pulumi:providers:") and "region" in raw:
            self.plan_mocks.provider_regions[response.id] = raw["region"]
        self.recording.registrations.append(
            Registration(
                urn=response.urn,
                type=request.type,
                name=request.name,
                custom=bool(request.custom),
                parent_urn=request.parent,
                provider_urn=request.provider.rsplit("::", 1)[0] if request.provider else "",
                protect=bool(request.protect),
                retain_on_delete=bool(request.retainOnDelete),
                dependency_urns=list(request.dependencies),
                inputs=raw,
                property_dependency_urns={
                    prop: list(deps.urns) for prop, deps in request.propertyDependencies.items() if deps.urns
                },
                ignore_changes=list(request.ignoreChanges),
                custom_timeouts={k: v for k, v in json_format.MessageToDict(request.customTimeouts).items() if v},
                aliases=alias_specs(request),
            )
        )
        return response


def normalise(value: Any, *, urn_keys: Mapping[str, str]) -> Any:
    """Engine wire values -> plan values: unknowns and secrets as text, integral floats as ints,
    resource references as plan keys."""
    if isinstance(value, dict):
        sig = value.get(rpc._special_sig_key)
        if sig == rpc._special_secret_sig:
            return SECRET
        if sig == rpc._special_resource_sig:
            return urn_keys.get(value.get("urn", ""), value.get("urn", ""))
        if sig == rpc._special_asset_sig:
            if "text" in value:
                # The text's digest, not the text: a changed function body shows in the diff, the plan stays small.
                return {"asset": f"(inline text, sha256 {hashlib.sha256(str(value['text']).encode()).hexdigest()})"}
            return {"asset": value.get("path") or value.get("uri")}
        if sig == rpc._special_archive_sig:
            if "assets" in value:
                return {"archive": normalise(value["assets"], urn_keys=urn_keys)}
            return {"archive": value.get("path") or value.get("uri")}
        return {k: normalise(v, urn_keys=urn_keys) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v, urn_keys=urn_keys) for v in value]
    if value == rpc.UNKNOWN:
        return UNKNOWN
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def secret_map_keys(value: Any) -> list[str] | None:
    """The keys of a map the engine holds as one secret (a Secret's `data` or `stringData`), None for any other
    value: the plan keeps them, each value [secret], so that a Secret stays one in shape."""
    if isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig:
        inner = value.get("value")
        if isinstance(inner, dict):
            return sorted(inner)
    return None


async def _exported_value(value: Any) -> tuple[Any, bool]:
    """(value or the unknown sentinel, secret?) of one stack output, as the engine stores it."""
    out = pulumi.Output.from_input(value)
    secret = await out.is_secret()
    if not await out.is_known():
        return rpc.UNKNOWN, secret
    resolved = await out.future(with_unknowns=True)
    return await rpc.serialize_property(resolved, [], None), secret


async def _resolve_output(value: Any) -> Any:
    out = pulumi.Output.from_input(value)
    if not await out.is_known():
        return UNKNOWN
    if await out.is_secret():
        return SECRET
    return await out.future(with_unknowns=True)


def run_program(
    stack_file: StackFile,
    *,
    preview: bool,
    program: Callable[[], None] | None = None,
    references: Mapping[str, StackOutputs] | None = None,
) -> Recording:
    """Run the program for one stack under mocks. Settings errors surface as InputError (exit 2).

    `references`: the outputs of other stacks by fully qualified name, for the program's stack references.
    """
    from components.program import STACKS_DIR, run

    STACKS_DIR.set(stack_file.path.parent)
    recording = Recording(stack=stack_file.stack)
    plan_mocks = PlanMocks(preview=preview, provider_regions={}, references=references)
    monitor = RecordingMonitor(plan_mocks, recording)

    # The SDK keeps its root resource and config in context variables: reset them so one stack's
    # run never leaks into the next (a private part of the SDK: docs/offline.md#the-pinned-pulumi-sdk).
    pulumi.runtime.settings.ROOT.set(None)
    pulumi.runtime.set_all_config(stack_file.engine_config(), list(stack_file.secret_keys))
    # The SDK's event loop may have been closed by an earlier run in this process.
    asyncio.set_event_loop(asyncio.new_event_loop())
    mocks.set_mocks(
        plan_mocks,
        project=stack_file.project,
        stack=stack_file.stack,
        preview=preview,
        monitor=monitor,
        organization=ORGANIZATION,
    )

    _sync_await(run_pulumi_func(program or run))
    root = pulumi.runtime.settings.get_root_resource()
    outputs = getattr(root, "outputs", {}) or {}
    values: dict[str, Any] = {}
    secret_names: list[str] = []
    for name in sorted(outputs):
        recording.outputs[name] = _sync_await(_resolve_output(outputs[name]))
        values[name], secret = _sync_await(_exported_value(outputs[name]))
        if secret:
            secret_names.append(name)
    recording.exported = StackOutputs(values=values, secret_names=secret_names)
    return recording


def dump_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
