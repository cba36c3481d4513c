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
from typing import Any

from components.contract import GPU_PRESENT_LABEL, GPU_TAINT_KEY, PUBLIC_LB_MARK, SECRET, UNKNOWN
from components.policy.iam import (
    iam_no_wildcard_actions,
    iam_writes_scoped,
    resource_policy_not_public,
    trust_policy_not_public,
)
from components.policy.services import (
    database_encrypted,
    database_private,
    database_retained,
    eks_secrets_encrypted,
    log_retention,
    vpc_flow_logs,
)
from components.policy.tenants import (
    tenant_egress_limited,
    tenant_ingress_limited,
    tenant_limit_range,
    tenant_namespaces_isolated,
    tenant_not_admin,
    tenant_pod_security,
    tenant_pool_admission,
    tenant_quota,
)
from components.policy.view import (
    Plan,
    Rule,
    Violation,
    dig,
    inputs_of,
    is_unknown,
    manifests_of,
    mapping,
    namespace_of,
    resources_of,
)
from components.policy.workloads import (
    capabilities_dropped,
    images_pinned,
    no_host_access,
    no_host_port,
    no_node_port,
    no_privilege_escalation,
    pod_non_root,
    tenant_token_not_automounted,
)
from components.tagging import KIT_TAG_KEYS, is_taggable

# --- S3 ----------------------------------------------------------------------------------------------

BUCKET = "aws:s3/bucket:Bucket"
_SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
_VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
_PUBLIC_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"


def _attached(plan: Plan, bucket: Mapping[str, Any], type_token: str) -> list[Mapping[str, Any]] | None:
    """The sub-resources of `type_token` that configure `bucket`: those that depend on it, or name it.
    None when one of that type names its bucket by an unknown value and depends on nothing known (undecided)."""
    name = inputs_of(bucket).get("bucket")
    found: list[Mapping[str, Any]] = []
    undecided = False
    for sub in resources_of(plan, type_token):
        target = inputs_of(sub).get("bucket")
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
    for bucket in resources_of(plan, BUCKET):
        subs = _attached(plan, bucket, type_token)
        if subs is None:
            continue
        if not subs:
            out.append(Violation(rule, bucket["key"], missing))
            continue
        verdicts = [ok(inputs_of(s)) for s in subs]
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
            default = mapping(mapping(rule).get("applyServerSideEncryptionByDefault"))
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
        return _decided(mapping(config).get("status"), lambda s: s == "Enabled")

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

    for r in resources_of(plan, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"):
        i = inputs_of(r)
        judge(
            r["key"],
            [i.get("cidrIpv4"), i.get("cidrIpv6")],
            (i.get("fromPort"), i.get("toPort"), i.get("ipProtocol")),
            i.get("tags"),
        )
    for r in resources_of(plan, "aws:ec2/securityGroupRule:SecurityGroupRule"):
        i = inputs_of(r)
        if i.get("type") == "ingress":
            cidrs = [*(i.get("cidrBlocks") or []), *(i.get("ipv6CidrBlocks") or [])]
            judge(r["key"], cidrs, (i.get("fromPort"), i.get("toPort"), i.get("protocol")), None)
    for type_token in ("aws:ec2/securityGroup:SecurityGroup", "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"):
        for r in resources_of(plan, type_token):
            i = inputs_of(r)
            ingress = i.get("ingress")
            if is_unknown(ingress):
                continue
            for entry in ingress or ():
                cidrs = [*(entry.get("cidrBlocks") or []), *(entry.get("ipv6CidrBlocks") or [])]
                judge(
                    r["key"], cidrs, (entry.get("fromPort"), entry.get("toPort"), entry.get("protocol")), i.get("tags")
                )
    for source, obj in manifests_of(plan, "Service"):
        spec = mapping(obj.get("spec"))
        if spec.get("type") != "LoadBalancer":
            continue
        annotations = mapping(dig(obj, "metadata", "annotations"))
        scheme = annotations.get("service.beta.kubernetes.io/aws-load-balancer-scheme", "internal")
        ranges = spec.get("loadBalancerSourceRanges") or ["0.0.0.0/0"]
        if scheme != "internet-facing" or not any(c in WORLD for c in ranges):
            continue
        labels = mapping(dig(obj, "metadata", "labels"))
        for port in spec.get("ports") or ():
            judge(source, ["0.0.0.0/0"], (port.get("port"), port.get("port"), port.get("protocol", "TCP")), labels)
    return out


def eks_endpoint_restricted(plan: Plan) -> list[Violation]:
    out = []
    for r in resources_of(plan, "aws:eks/cluster:Cluster"):
        vpc = inputs_of(r).get("vpcConfig")
        if is_unknown(vpc):
            continue
        vpc = mapping(vpc)
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
    for r in resources_of(plan, "aws:kms/key:Key"):
        i = inputs_of(r)
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
    for source, obj in manifests_of(plan, "NodePool"):
        if not str(obj.get("apiVersion", "")).startswith("karpenter.sh/"):
            continue
        if is_unknown(dig(obj, "spec", "template", "spec")):
            continue
        template = mapping(dig(obj, "spec", "template"))
        spec = mapping(template.get("spec"))
        labels = mapping(dig(template, "metadata", "labels"))
        types = [
            v
            for req in spec.get("requirements") or ()
            if req.get("key") == "node.kubernetes.io/instance-type"
            for v in req.get("values") or ()
        ]
        limits = mapping(dig(obj, "spec", "limits"))
        gpu = labels.get(GPU_PRESENT_LABEL) == "true" or GPU_TAINT_KEY in limits or any(map(_gpu_instance, types))
        if not gpu:
            continue
        taints = spec.get("taints")
        if is_unknown(taints):
            continue
        if not any(t.get("key") == GPU_TAINT_KEY and t.get("effect") == "NoSchedule" for t in taints or ()):
            out.append(Violation(rule, source, f"GPU NodePool without the {GPU_TAINT_KEY}:NoSchedule taint"))
    for r in resources_of(plan, "aws:eks/nodeGroup:NodeGroup"):
        i = inputs_of(r)
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
        options = mapping(options)
        tokens, hops = options.get(tokens_key), options.get(hop_key)
        if is_unknown(tokens) or is_unknown(hops):
            return
        if tokens != "required":
            out.append(Violation(rule, key, f"metadata options do not set {tokens_key}: required (IMDSv2)"))
        elif hops is not None and hops > 1:
            out.append(Violation(rule, key, f"{hop_key} is {hops}: pods could reach the node's IMDS credentials"))

    for source, obj in manifests_of(plan, "EC2NodeClass"):
        judge(source, dig(obj, "spec", "metadataOptions"), "httpTokens", "httpPutResponseHopLimit")
    for type_token in ("aws:ec2/launchTemplate:LaunchTemplate", "aws:ec2/instance:Instance"):
        for r in resources_of(plan, type_token):
            judge(r["key"], inputs_of(r).get("metadataOptions"), "httpTokens", "httpPutResponseHopLimit")
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
        for path in _plain_secrets(inputs_of(r), "inputs"):
            out.append(Violation("no-plain-secrets", r["key"], f"{path} is not a secret: use a secret config value"))
    for source, obj in manifests_of(plan):
        if obj.get("kind") == "Secret":
            continue  # its data is masked by the plan and is where secrets belong
        for path in _plain_secrets(obj, "object"):
            out.append(Violation("no-plain-secrets", source, f"{path} is not a secret: reference a Secret instead"))
    return out


# Credentials recognisable by their shape, wherever they stand in a text (each vendor documents its prefix).
_CREDENTIAL_SHAPES: Mapping[str, re.Pattern[str]] = {
    "an AWS access key id": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "a private key": re.compile(r"-----BEGIN ([A-Z]+ )*PRIVATE KEY-----"),
    "an OpenAI or Anthropic API key": re.compile(r"\bsk-(ant-|proj-)?[A-Za-z0-9_-]{20,}"),
    "a Hugging Face token": re.compile(r"\bhf_[A-Za-z0-9]{30,}\b"),
    "a GitHub token": re.compile(r"\b(gh[pousr]|github_pat)_[A-Za-z0-9_]{30,}\b"),
    "a Slack token": re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    "a JSON web token": re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
    "a URL with a password": re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@'\"]+:(?!\$)[^/\s@'\"]+@[^\s/'\"]+"),
}
# `key: value`, `key = value`, `"key": "value"`, `export KEY=value` on one line of YAML, JSON, INI or env text.
_ASSIGNMENT = re.compile(r"""^\s*(?:export\s+|-\s+)?["']?([A-Za-z0-9_.-]+)["']?\s*[:=]\s*(.+?)\s*,?\s*$""")
# A value that is a literal: no call, index, expression or template (code that reads a secret is not one), no
# reference to where the secret is, no placeholder.
_NOT_LITERAL = re.compile(r"[()\[\]{}<>\s$]|^(os\.environ/|arn:aws[a-z-]*:(secretsmanager|ssm):|/|\*+$)")
_PLACEHOLDERS = frozenset({"none", "null", "~", "true", "false", "changeme-in-a-secret", "redacted", SECRET, UNKNOWN})


# Program source, where a literal is quoted (an unquoted value is a name: `api_key=offered`); in configuration
# (YAML, JSON, INI, env files) an unquoted value is a literal too.
_SOURCE_FILES = (".py", ".js", ".mjs", ".ts", ".go", ".rb", ".lua")


def _literal_secret(value: str, *, source_file: bool) -> bool:
    value = value.strip()
    quoted = len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'"
    if source_file and not quoted:
        return False
    value = value[1:-1] if quoted else value
    return bool(value) and value.lower() not in _PLACEHOLDERS and not _NOT_LITERAL.search(value)


def configmap_no_secrets(plan: Plan) -> list[Violation]:
    """Heuristic: no ConfigMap text holds a credential: a key, token or password by its known shape (AWS access
    key ids, private keys, OpenAI/Anthropic, Hugging Face, GitHub, Slack tokens, JWTs, URLs with a password), or
    a line assigning a literal to a name like password, token, secret or API key. ConfigMaps are readable by
    anyone who may read the namespace and print in every diff; secrets belong in Secrets."""
    out = []
    for source, obj in manifests_of(plan, "ConfigMap"):
        data = obj.get("data")
        if is_unknown(data):
            continue
        name = f"{namespace_of(obj)}/{dig(obj, 'metadata', 'name')}"
        for key, text in sorted(mapping(data).items()):
            if not isinstance(text, str) or is_unknown(text):
                continue
            found = [what for what, shape in _CREDENTIAL_SHAPES.items() if shape.search(text)]
            for line in text.splitlines():
                assignment = _ASSIGNMENT.match(line)
                if (
                    assignment
                    and _secret_like(assignment.group(1))
                    and _literal_secret(assignment.group(2), source_file=key.endswith(_SOURCE_FILES))
                ):
                    found.append(f"a literal value for {assignment.group(1)}")
            if found:
                out.append(
                    Violation(
                        "configmap-no-secrets", source, f"ConfigMap {name}, {key}: {'; '.join(sorted(set(found)))}"
                    )
                )
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
        for r in resources_of(plan, "aws:eks/cluster:Cluster")
        if inputs_of(r).get("encryptionConfig")
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
        r["key"]: mapping(dig(inputs_of(r), "defaultTags", "tags"))
        for r in plan.get("resources", ())
        if str(r.get("type", "")).startswith("pulumi:providers:aws")
    }
    out = []
    for r in plan.get("resources", ()):
        type_token = str(r.get("type", ""))
        if not r.get("custom") or not type_token.startswith("aws:") or not is_taggable(type_token):
            continue
        tags = inputs_of(r).get("tags")
        if is_unknown(tags):
            continue
        merged = {**providers.get(r.get("provider") or "", {}), **mapping(tags)}
        if any(is_unknown(v) for v in merged.values()):
            continue
        missing = [k for k in KIT_TAG_KEYS if k not in merged]
        if missing:
            out.append(Violation("tags-present", r["key"], f"missing tags {', '.join(missing)}"))
    return out


RULES: tuple[Rule, ...] = (
    # S3 and KMS
    Rule("bucket-encrypted", "S3 buckets have default encryption (SSE-KMS or SSE-S3)", buckets_encrypted),
    Rule("bucket-versioned", "S3 buckets have versioning enabled", buckets_versioned),
    Rule("bucket-public-access-blocked", "S3 buckets block every kind of public access", buckets_public_access_blocked),
    Rule("kms-rotation", "customer-managed symmetric KMS keys rotate", kms_rotation),
    # AWS policy documents
    Rule(
        "resource-policy-not-public",
        "bucket, key, queue, topic, repository and secret policies allow no one-and-all principal without a "
        "condition on the caller",
        resource_policy_not_public,
    ),
    Rule(
        "iam-no-wildcard-actions",
        "identity policies allow no `*`, `service:*` or NotAction; no AdministratorAccess, PowerUserAccess or "
        "*FullAccess attached",
        iam_no_wildcard_actions,
    ),
    Rule(
        "iam-writes-scoped",
        "identity policies allow writes and data reads on every resource only with a condition",
        iam_writes_scoped,
    ),
    Rule("trust-policy-not-public", "no role can be assumed by any principal", trust_policy_not_public),
    # network, cluster, nodes
    Rule(
        "no-world-ingress",
        "no ingress from 0.0.0.0/0 or ::/0, except 443 to a public load balancer the stack marks",
        no_world_ingress,
    ),
    Rule("eks-endpoint-restricted", "the EKS API endpoint is private or limited to CIDRs", eks_endpoint_restricted),
    Rule("eks-secrets-encrypted", "EKS clusters envelope-encrypt Secrets with a KMS key", eks_secrets_encrypted),
    Rule("vpc-flow-logs", "every VPC has a flow log", vpc_flow_logs),
    Rule("log-retention", "every CloudWatch log group has a retention", log_retention),
    Rule(
        "gpu-nodes-tainted",
        "GPU NodePools and node groups carry the nvidia.com/gpu NoSchedule taint",
        gpu_nodes_tainted,
    ),
    Rule("imdsv2", "EC2NodeClasses, launch templates and instances require IMDSv2 with one hop", imdsv2),
    # databases
    Rule(
        "database-encrypted",
        "RDS and ElastiCache are encrypted at rest and refuse plain connections",
        database_encrypted,
    ),
    Rule("database-private", "no RDS instance is publicly accessible", database_private),
    Rule(
        "database-retained",
        "RDS has deletion protection and a final snapshot; ElastiCache keeps snapshots",
        database_retained,
    ),
    # tenants
    Rule(
        "tenant-namespace-isolated",
        "every tenant namespace has a default-deny NetworkPolicy and a ResourceQuota",
        tenant_namespaces_isolated,
    ),
    Rule(
        "tenant-quota",
        "every tenant namespace's quota caps its GPUs and allows no node ports nor load balancers",
        tenant_quota,
    ),
    Rule("tenant-limit-range", "every tenant namespace has a LimitRange with container defaults", tenant_limit_range),
    Rule(
        "tenant-ingress-limited",
        "tenant namespaces admit ingress only from the gateway, Prometheus and themselves",
        tenant_ingress_limited,
    ),
    Rule(
        "tenant-egress-limited",
        "tenant namespaces let out nothing private: no open egress, no private ipBlock, no other tenant",
        tenant_egress_limited,
    ),
    Rule(
        "tenant-pod-security",
        "every tenant namespace enforces, audits and warns Pod Security restricted",
        tenant_pod_security,
    ),
    Rule(
        "tenant-pool-admission",
        "dedicated pools are guarded by a bound ValidatingAdmissionPolicy on the tenant taint",
        tenant_pool_admission,
    ),
    Rule(
        "tenant-not-admin",
        "no RBAC binding or EKS access policy makes a tenant's identities admin or edit",
        tenant_not_admin,
    ),
    # pods and services
    Rule(
        "no-host-access",
        "no privileged containers, hostPath, hostNetwork/PID/IPC (named system DaemonSets exempt)",
        no_host_access,
    ),
    Rule(
        "capabilities-dropped",
        "no container adds capabilities; tenant containers drop ALL",
        capabilities_dropped,
    ),
    Rule("pod-non-root", "no container runs as root; tenant containers set runAsNonRoot", pod_non_root),
    Rule(
        "no-privilege-escalation",
        "no container allows privilege escalation; tenant containers forbid it explicitly",
        no_privilege_escalation,
    ),
    Rule("no-host-port", "no container binds a host port", no_host_port),
    Rule("no-node-port", "no Service opens a node port", no_node_port),
    Rule(
        "tenant-token-not-automounted",
        "tenant pods get no Kubernetes API token",
        tenant_token_not_automounted,
    ),
    Rule("images-pinned", "container images are pinned by digest", images_pinned),
    # secrets, state, tags
    Rule("no-plain-secrets", "no password, token, secret or API key in a plain input", no_plain_secrets),
    Rule("configmap-no-secrets", "no credential in ConfigMap text", configmap_no_secrets),
    Rule(
        "stateful-protected", "buckets, keys, databases and file systems are protected and retained", stateful_protected
    ),
    Rule("tags-present", "taggable AWS resources carry the kit's tags", tags_present),
)
RULES_BY_ID = {r.id: r for r in RULES}


def evaluate(plan: Plan, rules: tuple[Rule, ...] = RULES) -> list[Violation]:
    """Every violation of every rule, sorted."""
    return sorted(v for rule in rules for v in rule.check(plan))
