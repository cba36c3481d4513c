"""Policy rules over plan JSON v1: written once, used by the tests, `modelyard plan` and the policy pack.

A rule is a plain function `plan -> list[Violation]`. It reads `resources[].inputs` (AWS, as the engine
spells them: camelCase) and `manifests[].object` (Kubernetes objects). A value printed as
"(known after apply)" is undecided: a rule never reports a violation on it (a policy pack sees unknowns
during preview: docs/security.md). Rules read only what the plan shows; what it cannot show (objects inside
upstream Helm releases, what controllers create) is out of their reach (docs/security.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from components.contract import (
    GATEWAY_NAMESPACE,
    GPU_PRESENT_LABEL,
    GPU_TAINT_KEY,
    MONITORING_NAMESPACE,
    PUBLIC_LB_MARK,
    SECRET,
    TENANT_LABEL,
    TENANT_NAMESPACE_PREFIX,
    UNKNOWN,
)
from components.tagging import KIT_TAG_KEYS, is_taggable

Plan = Mapping[str, Any]


@dataclass(frozen=True, order=True)
class Violation:
    rule: str
    resource: str
    """the plan key of the resource (or the manifest's source), the pack's URN"""
    message: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.resource}: {self.message}"


@dataclass(frozen=True)
class Rule:
    id: str
    description: str
    check: Callable[[Plan], list[Violation]]


def is_unknown(value: Any) -> bool:
    return value == UNKNOWN


def _resources(plan: Plan, type_token: str) -> list[Mapping[str, Any]]:
    return [r for r in plan.get("resources", ()) if r.get("type") == type_token]


def _manifests(plan: Plan, *kinds: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for m in plan.get("manifests", ()):
        obj = _m(m.get("object"))
        if not kinds or obj.get("kind") in kinds:
            yield str(m.get("source")), obj


def _inputs(resource: Mapping[str, Any]) -> Mapping[str, Any]:
    return _m(resource.get("inputs"))


def _m(value: Any) -> Mapping[str, Any]:
    """A mapping, or {} for anything else (missing, null, unknown: callers check unknowns first)."""
    return value if isinstance(value, Mapping) else {}


def dig(value: Any, *keys: str) -> Any:
    """value[k1][k2]...: UNKNOWN as soon as a step is unknown, None where a step is missing."""
    for key in keys:
        if is_unknown(value):
            return UNKNOWN
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


# --- S3 ----------------------------------------------------------------------------------------------

BUCKET = "aws:s3/bucket:Bucket"
_SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
_VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
_PUBLIC_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"


def _attached(plan: Plan, bucket: Mapping[str, Any], type_token: str) -> list[Mapping[str, Any]] | None:
    """The sub-resources of `type_token` that configure `bucket`: those that depend on it, or name it.
    None when one of that type names its bucket by an unknown value and depends on nothing known (undecided)."""
    name = _inputs(bucket).get("bucket")
    found: list[Mapping[str, Any]] = []
    undecided = False
    for sub in _resources(plan, type_token):
        target = _inputs(sub).get("bucket")
        if bucket["key"] in (sub.get("depends_on") or ()) or (
            isinstance(name, str) and not is_unknown(name) and target == name
        ):
            found.append(sub)
        elif is_unknown(target) and not sub.get("depends_on"):
            undecided = True
    return found if found or not undecided else None


def _bucket_rule(
    plan: Plan, rule: str, type_token: str, ok: Callable[[Mapping[str, Any]], bool | None], missing: str, bad: str
) -> list[Violation]:
    out = []
    for bucket in _resources(plan, BUCKET):
        subs = _attached(plan, bucket, type_token)
        if subs is None:
            continue
        if not subs:
            out.append(Violation(rule, bucket["key"], missing))
            continue
        verdicts = [ok(_inputs(s)) for s in subs]
        if any(v is None for v in verdicts):
            continue
        if not any(verdicts):
            out.append(Violation(rule, bucket["key"], bad))
    return out


def _decided(value: Any, good: Callable[[Any], bool]) -> bool | None:
    return None if is_unknown(value) else good(value)


def buckets_encrypted(plan: Plan) -> list[Violation]:
    def ok(inputs: Mapping[str, Any]) -> bool | None:
        rules = inputs.get("rules")
        if is_unknown(rules):
            return None
        for rule in rules or ():
            default = _m(_m(rule).get("applyServerSideEncryptionByDefault"))
            algo = default.get("sseAlgorithm")
            if is_unknown(algo):
                return None
            if algo in ("aws:kms", "aws:kms:dsse", "AES256"):
                return True
        return False

    return _bucket_rule(
        plan,
        "bucket-encrypted",
        _SSE,
        ok,
        "no server-side encryption configuration",
        "default encryption is neither SSE-KMS nor SSE-S3",
    )


def buckets_versioned(plan: Plan) -> list[Violation]:
    def ok(inputs: Mapping[str, Any]) -> bool | None:
        config = inputs.get("versioningConfiguration")
        if is_unknown(config):
            return None
        return _decided(_m(config).get("status"), lambda s: s == "Enabled")

    return _bucket_rule(
        plan, "bucket-versioned", _VERSIONING, ok, "no versioning configuration", "versioning is not Enabled"
    )


_BLOCK_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")


def buckets_public_access_blocked(plan: Plan) -> list[Violation]:
    def ok(inputs: Mapping[str, Any]) -> bool | None:
        values = [inputs.get(f) for f in _BLOCK_FLAGS]
        if any(is_unknown(v) for v in values):
            return None
        return all(v is True for v in values)

    return _bucket_rule(
        plan,
        "bucket-public-access-blocked",
        _PUBLIC_BLOCK,
        ok,
        "no public access block",
        f"not every public access block flag is true ({', '.join(_BLOCK_FLAGS)})",
    )


# --- network exposure --------------------------------------------------------------------------------

WORLD = ("0.0.0.0/0", "::/0")
# The tag (AWS) or label (Kubernetes) by which a stack asks for a public load balancer: only 443 then.


def _public_lb_asked(tags: Any) -> bool:
    return isinstance(tags, Mapping) and tags.get(PUBLIC_LB_MARK[0]) == PUBLIC_LB_MARK[1]


def _only_443(from_port: Any, to_port: Any, protocol: Any) -> bool:
    return from_port == 443 and to_port == 443 and str(protocol).lower() in ("tcp", "6")


def no_world_ingress(plan: Plan) -> list[Violation]:
    """Security group ingress from 0.0.0.0/0 or ::/0, and internet-facing Services, only on 443 and only
    where the stack marks a public load balancer."""
    rule = "no-world-ingress"
    out: list[Violation] = []

    def judge(key: str, cidrs: list[Any], ports: tuple[Any, Any, Any], tags: Any) -> None:
        if not any(c in WORLD for c in cidrs):
            return
        if any(is_unknown(p) for p in ports):
            return
        if _public_lb_asked(tags) and _only_443(*ports):
            return
        out.append(
            Violation(
                rule,
                key,
                f"ingress from the internet on {ports[2]} {ports[0]}-{ports[1]}: only 443 for a public load balancer "
                f"marked {PUBLIC_LB_MARK[0]}={PUBLIC_LB_MARK[1]}",
            )
        )

    for r in _resources(plan, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"):
        i = _inputs(r)
        judge(
            r["key"],
            [i.get("cidrIpv4"), i.get("cidrIpv6")],
            (i.get("fromPort"), i.get("toPort"), i.get("ipProtocol")),
            i.get("tags"),
        )
    for r in _resources(plan, "aws:ec2/securityGroupRule:SecurityGroupRule"):
        i = _inputs(r)
        if i.get("type") == "ingress":
            cidrs = [*(i.get("cidrBlocks") or []), *(i.get("ipv6CidrBlocks") or [])]
            judge(r["key"], cidrs, (i.get("fromPort"), i.get("toPort"), i.get("protocol")), None)
    for type_token in ("aws:ec2/securityGroup:SecurityGroup", "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"):
        for r in _resources(plan, type_token):
            i = _inputs(r)
            ingress = i.get("ingress")
            if is_unknown(ingress):
                continue
            for entry in ingress or ():
                cidrs = [*(entry.get("cidrBlocks") or []), *(entry.get("ipv6CidrBlocks") or [])]
                judge(
                    r["key"], cidrs, (entry.get("fromPort"), entry.get("toPort"), entry.get("protocol")), i.get("tags")
                )
    for source, obj in _manifests(plan, "Service"):
        spec = _m(obj.get("spec"))
        if spec.get("type") != "LoadBalancer":
            continue
        annotations = _m(dig(obj, "metadata", "annotations"))
        scheme = annotations.get("service.beta.kubernetes.io/aws-load-balancer-scheme", "internal")
        ranges = spec.get("loadBalancerSourceRanges") or ["0.0.0.0/0"]
        if scheme != "internet-facing" or not any(c in WORLD for c in ranges):
            continue
        labels = _m(dig(obj, "metadata", "labels"))
        for port in spec.get("ports") or ():
            judge(source, ["0.0.0.0/0"], (port.get("port"), port.get("port"), port.get("protocol", "TCP")), labels)
    return out


def eks_endpoint_restricted(plan: Plan) -> list[Violation]:
    out = []
    for r in _resources(plan, "aws:eks/cluster:Cluster"):
        vpc = _inputs(r).get("vpcConfig")
        if is_unknown(vpc):
            continue
        vpc = _m(vpc)
        public = vpc.get("endpointPublicAccess", True)  # EKS's default is a public endpoint
        if is_unknown(public) or public is False:
            continue
        cidrs = vpc.get("publicAccessCidrs")
        if is_unknown(cidrs) or any(is_unknown(c) for c in cidrs or ()):
            continue
        if not cidrs or any(c in WORLD for c in cidrs):
            out.append(
                Violation(
                    "eks-endpoint-restricted",
                    r["key"],
                    "the public API endpoint admits the whole internet: make it private or list publicAccessCidrs",
                )
            )
    return out


def kms_rotation(plan: Plan) -> list[Violation]:
    out = []
    for r in _resources(plan, "aws:kms/key:Key"):
        i = _inputs(r)
        spec = i.get("customerMasterKeySpec", "SYMMETRIC_DEFAULT")
        if spec != "SYMMETRIC_DEFAULT":
            continue  # KMS rotates only symmetric encryption keys
        rotation = i.get("enableKeyRotation")
        if is_unknown(rotation) or rotation is True:
            continue
        out.append(Violation("kms-rotation", r["key"], "enableKeyRotation is not true"))
    return out


# --- nodes -------------------------------------------------------------------------------------------

_GPU_FAMILY = re.compile(r"^(p\d|g\d)")  # EC2 GPU families: p3-p6, g4-g6(e): the kit's catalog uses these


def _gpu_instance(name: Any) -> bool:
    return isinstance(name, str) and bool(_GPU_FAMILY.match(name))


def gpu_nodes_tainted(plan: Plan) -> list[Violation]:
    rule = "gpu-nodes-tainted"
    out = []
    for source, obj in _manifests(plan, "NodePool"):
        if not str(obj.get("apiVersion", "")).startswith("karpenter.sh/"):
            continue
        if is_unknown(dig(obj, "spec", "template", "spec")):
            continue
        template = _m(dig(obj, "spec", "template"))
        spec = _m(template.get("spec"))
        labels = _m(dig(template, "metadata", "labels"))
        types = [
            v
            for req in spec.get("requirements") or ()
            if req.get("key") == "node.kubernetes.io/instance-type"
            for v in req.get("values") or ()
        ]
        limits = _m(dig(obj, "spec", "limits"))
        gpu = labels.get(GPU_PRESENT_LABEL) == "true" or GPU_TAINT_KEY in limits or any(map(_gpu_instance, types))
        if not gpu:
            continue
        taints = spec.get("taints")
        if is_unknown(taints):
            continue
        if not any(t.get("key") == GPU_TAINT_KEY and t.get("effect") == "NoSchedule" for t in taints or ()):
            out.append(Violation(rule, source, f"GPU NodePool without the {GPU_TAINT_KEY}:NoSchedule taint"))
    for r in _resources(plan, "aws:eks/nodeGroup:NodeGroup"):
        i = _inputs(r)
        types = i.get("instanceTypes") or []
        gpu = "NVIDIA" in str(i.get("amiType", "")) or (not is_unknown(types) and any(map(_gpu_instance, types)))
        if not gpu:
            continue
        taints = i.get("taints")
        if is_unknown(taints):
            continue
        if not any(t.get("key") == GPU_TAINT_KEY and t.get("effect") == "NO_SCHEDULE" for t in taints or ()):
            out.append(Violation(rule, r["key"], f"GPU node group without the {GPU_TAINT_KEY} NO_SCHEDULE taint"))
    return out


def imdsv2(plan: Plan) -> list[Violation]:
    """IMDSv2 required, and a hop limit of 1 (pods cannot reach the node's credentials)."""
    rule = "imdsv2"
    out = []

    def judge(key: str, options: Any, tokens_key: str, hop_key: str) -> None:
        if is_unknown(options):
            return
        options = _m(options)
        tokens, hops = options.get(tokens_key), options.get(hop_key)
        if is_unknown(tokens) or is_unknown(hops):
            return
        if tokens != "required":
            out.append(Violation(rule, key, f"metadata options do not set {tokens_key}: required (IMDSv2)"))
        elif hops is not None and hops > 1:
            out.append(Violation(rule, key, f"{hop_key} is {hops}: pods could reach the node's IMDS credentials"))

    for source, obj in _manifests(plan, "EC2NodeClass"):
        judge(source, dig(obj, "spec", "metadataOptions"), "httpTokens", "httpPutResponseHopLimit")
    for type_token in ("aws:ec2/launchTemplate:LaunchTemplate", "aws:ec2/instance:Instance"):
        for r in _resources(plan, type_token):
            judge(r["key"], _inputs(r).get("metadataOptions"), "httpTokens", "httpPutResponseHopLimit")
    return out


# --- tenants -----------------------------------------------------------------------------------------


def _tenant_namespaces(plan: Plan) -> dict[str, tuple[str, Mapping[str, Any]]]:
    found = {}
    for source, obj in _manifests(plan, "Namespace"):
        meta = _m(obj.get("metadata"))
        name = meta.get("name")
        if isinstance(name, str) and (
            name.startswith(TENANT_NAMESPACE_PREFIX) or TENANT_LABEL in _m(meta.get("labels"))
        ):
            found[name] = (source, meta)
    return found


def _is_default_deny(spec: Mapping[str, Any]) -> bool:
    return (
        spec.get("podSelector") in ({}, {"matchLabels": {}}, None)
        and {"Ingress", "Egress"} <= set(spec.get("policyTypes") or ())
        and not spec.get("ingress")
        and not spec.get("egress")
    )


def tenant_namespaces_isolated(plan: Plan) -> list[Violation]:
    """Every tenant namespace has a default-deny NetworkPolicy (ingress and egress) and a ResourceQuota."""
    rule = "tenant-namespace-isolated"
    namespaces = _tenant_namespaces(plan)
    deny = {
        dig(obj, "metadata", "namespace")
        for _, obj in _manifests(plan, "NetworkPolicy")
        if is_unknown(obj.get("spec")) or _is_default_deny(_m(obj.get("spec")))  # unknown: undecided, not a violation
    }
    quota = {dig(obj, "metadata", "namespace") for _, obj in _manifests(plan, "ResourceQuota")}
    out = []
    for name, (source, _) in sorted(namespaces.items()):
        if name not in deny:
            out.append(
                Violation(rule, source, f"namespace {name} has no default-deny NetworkPolicy (ingress and egress)")
            )
        if name not in quota:
            out.append(Violation(rule, source, f"namespace {name} has no ResourceQuota"))
    return out


# Namespaces whose pods may reach a tenant's pods: the gateway (LiteLLM) and Prometheus (components.k8s.isolation).
TENANT_INGRESS_NAMESPACES = (GATEWAY_NAMESPACE, MONITORING_NAMESPACE)


def _peer_problem(peer: Any, own: str) -> str | None:
    """Why an ingress peer of a tenant namespace's NetworkPolicy admits too much, or None."""
    if is_unknown(peer):
        return None
    peer = _m(peer)
    if "ipBlock" in peer:
        return "an ipBlock (addresses outside the cluster or any pod's)"
    if "namespaceSelector" not in peer:
        return None  # pods of the policy's own namespace
    selector = peer["namespaceSelector"]
    if is_unknown(selector):
        return None
    labels = _m(_m(selector).get("matchLabels"))
    name = labels.get("kubernetes.io/metadata.name")
    if _m(selector).get("matchExpressions") or not isinstance(name, str):
        return "a namespace selector not naming one namespace by kubernetes.io/metadata.name"
    if name not in (*TENANT_INGRESS_NAMESPACES, own):
        return f"namespace {name}"
    return None


def tenant_ingress_limited(plan: Plan) -> list[Violation]:
    """In a tenant namespace, NetworkPolicies admit only the gateway, Prometheus and the namespace itself:
    no ipBlock, no other namespace (another tenant's), no rule without sources (which admits everyone)."""
    rule = "tenant-ingress-limited"
    tenants = _tenant_namespaces(plan)
    out = []
    for source, obj in _manifests(plan, "NetworkPolicy"):
        namespace = dig(obj, "metadata", "namespace")
        spec = obj.get("spec")
        if namespace not in tenants or is_unknown(spec):
            continue
        ingress = _m(spec).get("ingress")
        if is_unknown(ingress):
            continue
        for entry in ingress or ():
            if is_unknown(entry):
                continue
            peers = _m(entry).get("from")
            if is_unknown(peers):
                continue
            if not peers:
                out.append(Violation(rule, source, f"{namespace}: an ingress rule without sources admits every pod"))
                continue
            for peer in peers:
                problem = _peer_problem(peer, str(namespace))
                if problem:
                    out.append(Violation(rule, source, f"{namespace}: ingress from {problem}"))
    return out


def tenant_pod_security(plan: Plan) -> list[Violation]:
    out = []
    for name, (source, meta) in sorted(_tenant_namespaces(plan).items()):
        labels = _m(meta.get("labels"))
        missing = [
            mode
            for mode in ("enforce", "audit", "warn")
            if labels.get(f"pod-security.kubernetes.io/{mode}") != "restricted"
        ]
        if missing:
            out.append(
                Violation(
                    "tenant-pod-security",
                    source,
                    f"namespace {name}: Pod Security restricted not set for {', '.join(missing)}",
                )
            )
    return out


# System DaemonSets that need host access, exempt by namespace/name. They are cluster infrastructure, run
# in namespaces only cluster admins can write to, and cannot work without it.
HOST_ACCESS_EXEMPT: Mapping[str, str] = {
    "kube-system/nvidia-device-plugin": "registers GPUs with the kubelet through its device-plugin socket (hostPath)",
    "kube-system/nvidia-device-plugin-daemonset": "the same plugin under the chart's default name",
    "kube-system/aws-efa-k8s-device-plugin": "registers EFA devices through the kubelet's device-plugin socket",
    "kube-system/aws-efa-k8s-device-plugin-daemonset": "the same plugin under the chart's default name",
    "kube-system/ebs-csi-node": "mounts volumes on the node: privileged, hostPath to the kubelet",
    "kube-system/aws-node": "the VPC CNI configures the node's network: privileged, hostNetwork",
    "kube-system/kube-proxy": "programs the node's iptables: privileged, hostNetwork",
    "kube-system/eks-pod-identity-agent": "serves 169.254.170.23 on the node: hostNetwork",
    "monitoring/dcgm-exporter": "reads GPU telemetry from the driver: hostPath and elevated capabilities",
    "monitoring/node-exporter": "reads the node's /proc and /sys: hostNetwork, hostPID, hostPath",
    "monitoring/kube-prometheus-stack-prometheus-node-exporter": "node-exporter under kube-prometheus-stack's name",
}
_WORKLOADS = ("Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob")


def _pod_spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """The pod spec of a workload ({} when unknown: nothing is decided on it)."""
    if obj.get("kind") == "Pod":
        return _m(obj.get("spec"))
    if obj.get("kind") == "CronJob":
        return _m(dig(obj, "spec", "jobTemplate", "spec", "template", "spec"))
    return _m(dig(obj, "spec", "template", "spec"))


def _containers(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [*(pod.get("initContainers") or []), *(pod.get("containers") or []), *(pod.get("ephemeralContainers") or [])]


def no_host_access(plan: Plan) -> list[Violation]:
    """No privileged containers, hostPath volumes, host network, PID or IPC; system DaemonSets exempt by name
    (HOST_ACCESS_EXEMPT); objects in tenant namespaces never are."""
    rule = "no-host-access"
    out = []
    for source, obj in _manifests(plan, *_WORKLOADS):
        meta = _m(obj.get("metadata"))
        namespace = str(meta.get("namespace", "default"))
        ident = f"{namespace}/{meta.get('name')}"
        if (
            obj.get("kind") == "DaemonSet"
            and ident in HOST_ACCESS_EXEMPT
            and not namespace.startswith(TENANT_NAMESPACE_PREFIX)
        ):
            continue
        pod = _pod_spec(obj)
        problems = [f"{flag}: true" for flag in ("hostNetwork", "hostPID", "hostIPC") if pod.get(flag) is True]
        problems += [f"hostPath volume {v.get('name')}" for v in pod.get("volumes") or () if "hostPath" in v]
        problems += [
            f"privileged container {c.get('name')}"
            for c in _containers(pod)
            if dig(c, "securityContext", "privileged") is True
        ]
        if problems:
            out.append(Violation(rule, source, f"{obj.get('kind')} {ident}: {'; '.join(problems)}"))
    return out


_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def images_pinned(plan: Plan) -> list[Violation]:
    """Every image the plan can see has a digest, or at least a tag that is not `latest`."""
    out = []
    for source, obj in _manifests(plan, *_WORKLOADS):
        for c in _containers(_pod_spec(obj)):
            image = c.get("image")
            if not isinstance(image, str) or is_unknown(image) or _DIGEST.search(image):
                continue
            last = image.rsplit("/", 1)[-1]
            tag = last.split(":", 1)[1] if ":" in last else ""
            if not tag or tag == "latest":
                out.append(
                    Violation("images-pinned", source, f"container {c.get('name')}: image {image} has no tag or digest")
                )
    return out


# --- secrets, state, tags ----------------------------------------------------------------------------

_SECRET_KEY = re.compile(
    r"(password|passwd|passphrase|token|secret|apikey|privatekey|secretkey|masterkey|credentials?)$"
)


def _secret_like(key: str) -> bool:
    return bool(_SECRET_KEY.search(re.sub(r"[^a-z0-9]", "", key.lower())))


def _plain_secrets(value: Any, path: str) -> Iterator[str]:
    if isinstance(value, Mapping):
        # Environment variables: {"name": "API_TOKEN", "value": "..."}.
        name = value.get("name")
        if isinstance(name, str) and _secret_like(name) and _plain(value.get("value")):
            yield f"{path}.value ({name})"
        for key, sub in value.items():
            if isinstance(key, str) and _secret_like(key) and _plain(sub):
                yield f"{path}.{key}"
            else:
                yield from _plain_secrets(sub, f"{path}.{key}")
    elif isinstance(value, list):
        for index, sub in enumerate(value):
            yield from _plain_secrets(sub, f"{path}[{index}]")


# Values that name where a secret is, not the secret: LiteLLM's `os.environ/NAME`, Secrets Manager and SSM ARNs.
_REFERENCE = re.compile(r"^(os\.environ/|arn:aws[a-z-]*:(secretsmanager|ssm):)")


def _plain(value: Any) -> bool:
    return isinstance(value, str) and value not in ("", SECRET, UNKNOWN) and not _REFERENCE.match(value)


def no_plain_secrets(plan: Plan) -> list[Violation]:
    """Heuristic: a key named like a password, token, secret or API key holds a value that is not secret."""
    out = []
    for r in plan.get("resources", ()):
        if str(r.get("type", "")).startswith("kubernetes:") and r.get("custom"):
            continue  # checked as manifests below
        for path in _plain_secrets(_inputs(r), "inputs"):
            out.append(Violation("no-plain-secrets", r["key"], f"{path} is not a secret: use a secret config value"))
    for source, obj in _manifests(plan):
        if obj.get("kind") == "Secret":
            continue  # its data is masked by the plan and is where secrets belong
        for path in _plain_secrets(obj, "object"):
            out.append(Violation("no-plain-secrets", source, f"{path} is not a secret: reference a Secret instead"))
    return out


STATEFUL_TYPES = (
    "aws:s3/bucket:Bucket",
    "aws:kms/key:Key",
    "aws:rds/instance:Instance",
    "aws:rds/cluster:Cluster",
    "aws:elasticache/replicationGroup:ReplicationGroup",
    "aws:fsx/lustreFileSystem:LustreFileSystem",
    "aws:efs/fileSystem:FileSystem",
    "aws:dynamodb/table:Table",
)


def stateful_protected(plan: Plan) -> list[Violation]:
    """Stateful resources are protected and retained on delete. A KMS key an EKS cluster encrypts its
    secrets with is part of that cluster: EKS cannot change the key, so key and cluster are only ever
    replaced together, and protecting the key would only block destroying the cluster."""
    cluster_keys = {
        dep
        for r in _resources(plan, "aws:eks/cluster:Cluster")
        if _inputs(r).get("encryptionConfig")
        for dep in r.get("depends_on") or ()
        if str(dep).endswith("::aws:kms/key:Key")
    }
    out = []
    for r in plan.get("resources", ()):
        if r.get("type") not in STATEFUL_TYPES or r["key"] in cluster_keys:
            continue
        missing = [opt for opt in ("protect", "retain_on_delete") if r.get(opt) is False]
        if missing:
            out.append(Violation("stateful-protected", r["key"], f"stateful resource without {' and '.join(missing)}"))
    return out


def tags_present(plan: Plan) -> list[Violation]:
    """Every taggable AWS resource carries the kit's tags (the provider's default tags count: merged here)."""
    providers = {
        r["key"]: _m(dig(_inputs(r), "defaultTags", "tags"))
        for r in plan.get("resources", ())
        if str(r.get("type", "")).startswith("pulumi:providers:aws")
    }
    out = []
    for r in plan.get("resources", ()):
        type_token = str(r.get("type", ""))
        if not r.get("custom") or not type_token.startswith("aws:") or not is_taggable(type_token):
            continue
        tags = _inputs(r).get("tags")
        if is_unknown(tags):
            continue
        merged = {**providers.get(r.get("provider") or "", {}), **_m(tags)}
        if any(is_unknown(v) for v in merged.values()):
            continue
        missing = [k for k in KIT_TAG_KEYS if k not in merged]
        if missing:
            out.append(Violation("tags-present", r["key"], f"missing tags {', '.join(missing)}"))
    return out


RULES: tuple[Rule, ...] = (
    Rule("bucket-encrypted", "S3 buckets have default encryption (SSE-KMS or SSE-S3)", buckets_encrypted),
    Rule("bucket-versioned", "S3 buckets have versioning enabled", buckets_versioned),
    Rule("bucket-public-access-blocked", "S3 buckets block every kind of public access", buckets_public_access_blocked),
    Rule(
        "no-world-ingress",
        "no ingress from 0.0.0.0/0 or ::/0, except 443 to a public load balancer the stack marks",
        no_world_ingress,
    ),
    Rule("eks-endpoint-restricted", "the EKS API endpoint is private or limited to CIDRs", eks_endpoint_restricted),
    Rule("kms-rotation", "customer-managed symmetric KMS keys rotate", kms_rotation),
    Rule(
        "gpu-nodes-tainted",
        "GPU NodePools and node groups carry the nvidia.com/gpu NoSchedule taint",
        gpu_nodes_tainted,
    ),
    Rule("imdsv2", "EC2NodeClasses, launch templates and instances require IMDSv2 with one hop", imdsv2),
    Rule(
        "tenant-namespace-isolated",
        "every tenant namespace has a default-deny NetworkPolicy and a ResourceQuota",
        tenant_namespaces_isolated,
    ),
    Rule(
        "tenant-ingress-limited",
        "tenant namespaces admit ingress only from the gateway, Prometheus and themselves",
        tenant_ingress_limited,
    ),
    Rule(
        "tenant-pod-security",
        "every tenant namespace enforces, audits and warns Pod Security restricted",
        tenant_pod_security,
    ),
    Rule(
        "no-host-access",
        "no privileged containers, hostPath, hostNetwork/PID/IPC (named system DaemonSets exempt)",
        no_host_access,
    ),
    Rule("images-pinned", "container images carry a digest or a tag other than latest", images_pinned),
    Rule("no-plain-secrets", "no password, token, secret or API key in a plain input", no_plain_secrets),
    Rule(
        "stateful-protected", "buckets, keys, databases and file systems are protected and retained", stateful_protected
    ),
    Rule("tags-present", "taggable AWS resources carry the kit's tags", tags_present),
)
RULES_BY_ID = {r.id: r for r in RULES}


def evaluate(plan: Plan, rules: tuple[Rule, ...] = RULES) -> list[Violation]:
    """Every violation of every rule, sorted."""
    return sorted(v for rule in rules for v in rule.check(plan))
