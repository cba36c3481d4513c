"""Policy rules over AWS policy documents: resource policies (buckets, keys, queues, topics, repositories,
secrets) open to everyone, identity policies with wildcard actions or unscoped writes, trust policies any
principal may assume.

Documents are read from resource inputs, as JSON text (what the kit passes) or as objects; a document that is
unknown (built from outputs during preview) or unreadable is undecided.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from components.policy.view import (
    Plan,
    Violation,
    as_list,
    inputs_of,
    is_unknown,
    mapping,
    resources_of,
)


def document(value: Any) -> Mapping[str, Any] | None:
    """A policy document from an input: JSON text or an object; None when unknown or unreadable."""
    if value is None or is_unknown(value):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, Mapping) else None


def statements(doc: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    return [mapping(s) for s in as_list(mapping(doc).get("Statement"))]


def _allows(statement: Mapping[str, Any]) -> bool:
    return statement.get("Effect") == "Allow"


# Condition operators that narrow: they match a name, an ARN or an address (a Bool or a number says how a call
# is made, not on what or by whom), fail when the key is missing (no ...IfExists), are not negated, and
# ForAllValues is out (it holds for an empty set).
_NARROWING_OPERATOR = re.compile(
    r"^(ForAnyValue:)?(StringEquals|StringEqualsIgnoreCase|StringLike|ArnEquals|ArnLike|IpAddress)$"
)


def narrowing_keys(statement: Mapping[str, Any]) -> set[str]:
    """The condition keys (lower-case) of a statement that narrow it to a matching request."""
    found = set()
    for operator, tests in mapping(statement.get("Condition")).items():
        if not _NARROWING_OPERATOR.match(str(operator)):
            continue
        for key, values in mapping(tests).items():
            if any(str(v) != "*" for v in as_list(values)):
                found.add(str(key).lower())
    return found


# Condition keys that say who may call, or from which account, organisation or network (AWS global condition
# keys; kms:CallerAccount for KMS key policies).
CALLER_KEYS = frozenset(
    k.lower()
    for k in (
        "aws:PrincipalAccount",
        "aws:PrincipalArn",
        "aws:PrincipalOrgID",
        "aws:PrincipalOrgPaths",
        "aws:PrincipalServiceName",
        "aws:SourceAccount",
        "aws:SourceArn",
        "aws:SourceOwner",
        "aws:SourceOrgID",
        "aws:SourceOrgPaths",
        "aws:SourceVpc",
        "aws:SourceVpce",
        "aws:SourceIp",
        "aws:userid",
        "aws:username",
        "kms:CallerAccount",
    )
)


def _everyone(statement: Mapping[str, Any]) -> str | None:
    """How an Allow statement's principal takes in everyone, or None."""
    if "NotPrincipal" in statement:
        return "NotPrincipal (everyone but those named)"
    principal = statement.get("Principal")
    if principal == "*":
        return 'Principal "*"'
    if "*" in as_list(mapping(principal).get("AWS")):
        return 'Principal {"AWS": "*"}'
    return None


# Resource policies: type -> the input that holds the document. VPC endpoint policies are left out: their
# principal is always everyone, and the endpoint (reachable from the VPC only) is what narrows them.
RESOURCE_POLICIES: Mapping[str, str] = {
    "aws:s3/bucketPolicy:BucketPolicy": "policy",
    "aws:s3/bucket:Bucket": "policy",
    "aws:kms/key:Key": "policy",
    "aws:kms/keyPolicy:KeyPolicy": "policy",
    "aws:sqs/queuePolicy:QueuePolicy": "policy",
    "aws:sqs/queue:Queue": "policy",
    "aws:sns/topicPolicy:TopicPolicy": "policy",
    "aws:sns/topic:Topic": "policy",
    "aws:ecr/repositoryPolicy:RepositoryPolicy": "policy",
    "aws:secretsmanager/secretPolicy:SecretPolicy": "policy",
}


def resource_policy_not_public(plan: Plan) -> list[Violation]:
    """No resource policy (bucket, KMS key, queue, topic, repository, secret) allows everyone (Principal "*",
    {"AWS": "*"}, NotPrincipal) without a condition naming the caller, its account, organisation or network."""
    out = []
    for type_token, field in RESOURCE_POLICIES.items():
        for r in resources_of(plan, type_token):
            for statement in statements(document(inputs_of(r).get(field))):
                everyone = _everyone(statement) if _allows(statement) else None
                if everyone and not narrowing_keys(statement) & CALLER_KEYS:
                    out.append(
                        Violation(
                            "resource-policy-not-public",
                            r["key"],
                            f"statement {statement.get('Sid', '(no Sid)')} allows {everyone} with no condition on "
                            "the caller, its account, organisation or network",
                        )
                    )
    return out


def trust_policy_not_public(plan: Plan) -> list[Violation]:
    """No role may be assumed by anyone: no trust statement allows everyone without a condition on the caller,
    and a federated (OIDC) principal is narrowed by its subject (`<provider>:sub`), not by its audience alone."""
    out = []
    for r in resources_of(plan, "aws:iam/role:Role"):
        for statement in statements(document(inputs_of(r).get("assumeRolePolicy"))):
            if not _allows(statement):
                continue
            problem = None
            everyone = _everyone(statement)
            federated = [str(p) for p in as_list(mapping(statement.get("Principal")).get("Federated"))]
            keys = narrowing_keys(statement)
            if everyone and not keys & CALLER_KEYS:
                problem = f"allows {everyone} with no condition on the caller"
            elif any(":oidc-provider/" in p for p in federated) and not any(k.endswith(":sub") for k in keys):
                problem = f"lets every identity of {', '.join(federated)} assume it (no condition on :sub)"
            elif federated and not keys:
                problem = f"lets every identity of {', '.join(federated)} assume it (no condition)"
            if problem:
                out.append(
                    Violation(
                        "trust-policy-not-public", r["key"], f"statement {statement.get('Sid', '(no Sid)')} {problem}"
                    )
                )
    return out


def _identity_documents(resource: Mapping[str, Any]) -> Iterator[Mapping[str, Any] | None]:
    """The documents of an identity policy resource: its `policy`, or a role's inline policies."""
    inputs = inputs_of(resource)
    if resource.get("type") == "aws:iam/role:Role":
        inline = inputs.get("inlinePolicies")
        if not is_unknown(inline):
            for policy in as_list(inline):
                yield document(mapping(policy).get("policy"))
    else:
        yield document(inputs.get("policy"))


IDENTITY_POLICY_TYPES = (
    "aws:iam/policy:Policy",
    "aws:iam/rolePolicy:RolePolicy",
    "aws:iam/userPolicy:UserPolicy",
    "aws:iam/groupPolicy:GroupPolicy",
    "aws:iam/role:Role",
)
ATTACHMENT_TYPES = (
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
    "aws:iam/userPolicyAttachment:UserPolicyAttachment",
    "aws:iam/groupPolicyAttachment:GroupPolicyAttachment",
    "aws:iam/policyAttachment:PolicyAttachment",
)
# AWS managed policies that grant every action of the account, of IAM, or of a whole service (AWS names those
# <Service>FullAccess).
_BROAD_MANAGED = re.compile(
    r"^arn:aws[a-z-]*:iam::aws:policy/(.*/)?(AdministratorAccess|PowerUserAccess|\w*FullAccess)$"
)


def _actions(statement: Mapping[str, Any]) -> list[str]:
    return [str(a) for a in as_list(statement.get("Action"))]


def _wildcard_action(action: str) -> bool:
    return action == "*" or bool(re.fullmatch(r"[A-Za-z0-9-]+:\*", action))


def iam_no_wildcard_actions(plan: Plan) -> list[Violation]:
    """No identity policy allows every action (`*`), every action of a service (`s3:*`), or everything but some
    (NotAction); no role, user or group gets an AWS managed policy of that breadth (AdministratorAccess,
    PowerUserAccess, *FullAccess)."""
    rule = "iam-no-wildcard-actions"
    out = []
    for r in resources_of(plan, *IDENTITY_POLICY_TYPES):
        for doc in _identity_documents(r):
            for statement in statements(doc):
                if not _allows(statement):
                    continue
                sid = statement.get("Sid", "(no Sid)")
                if "NotAction" in statement:
                    out.append(Violation(rule, r["key"], f"statement {sid} allows every action but its NotAction"))
                wild = [a for a in _actions(statement) if _wildcard_action(a)]
                if wild:
                    out.append(Violation(rule, r["key"], f"statement {sid} allows {', '.join(wild)}"))
    managed = [(r["key"], inputs_of(r).get("policyArn")) for r in resources_of(plan, *ATTACHMENT_TYPES)]
    for r in resources_of(plan, "aws:iam/role:Role"):
        arns = inputs_of(r).get("managedPolicyArns")
        managed += [(r["key"], arn) for arn in ([] if is_unknown(arns) else as_list(arns))]
    for key, arn in managed:
        if isinstance(arn, str) and _BROAD_MANAGED.match(arn):
            out.append(Violation(rule, key, f"attaches {arn}"))
    return out


# Actions that only read, by their verb (AWS's access levels Read and List are named so) ...
_READ_VERBS = ("Describe", "Get", "List", "BatchGet", "BatchCheck", "Search", "Lookup", "View")
# ... except reads of data: objects, secrets, parameters, items, log events. On every resource they are as
# wide as a write.
_DATA_READS = (
    "s3:getobject",
    "secretsmanager:getsecretvalue",
    "ssm:getparameter",
    "ssm:getparameters",
    "ssm:getparametersbypath",
    "dynamodb:getitem",
    "dynamodb:batchgetitem",
    "logs:getlogevents",
)


def _read_only(action: str) -> bool:
    verb = action.partition(":")[2].lower()
    if not any(verb.startswith(v.lower()) for v in _READ_VERBS):
        return False
    lowered = action.lower()
    return not any(lowered.startswith(d) or fnmatch.fnmatchcase(d, lowered) for d in _DATA_READS)


def _every_resource(resource: Any) -> bool:
    """`*`, or an ARN whose resource part is only wildcards (arn:aws:s3:::*, arn:aws:s3:::*/*)."""
    text = str(resource)
    return text == "*" or (text.startswith("arn:") and set(text.split(":", 5)[-1]) <= {"*", "/"})


# Write actions allowed on every resource where AWS documents no narrower way, by the service that assumes the
# role: service principal -> (actions, why).
UNSCOPED_WRITE_EXEMPT: Mapping[str, tuple[frozenset[str], str]] = {
    "codebuild.amazonaws.com": (
        frozenset({"ec2:createnetworkinterface", "ec2:deletenetworkinterface"}),
        "CodeBuild in a VPC creates and deletes the build's network interface itself; AWS's policy for it "
        "(CodeBuild user guide, 'Allow Amazon VPC access in your CodeBuild projects') has Resource *, and the "
        "interface permission it then needs (ec2:CreateNetworkInterfacePermission) is held to the runner's "
        "subnets by condition (components/aws/deploy_runner.py)",
    ),
}


def _trusting_services(role: Mapping[str, Any]) -> set[str] | None:
    """The service principals a role's trust policy admits; None when it admits any other kind (or is unknown)."""
    doc = document(inputs_of(role).get("assumeRolePolicy"))
    if doc is None:
        return None
    services: set[str] = set()
    for statement in statements(doc):
        if not _allows(statement):
            continue
        principal = statement.get("Principal")
        if not isinstance(principal, Mapping) or set(principal) != {"Service"}:
            return None
        services |= {str(s) for s in as_list(principal["Service"])}
    return services


def _roles_holding(plan: Plan, resource: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The roles an identity policy is given to: the role itself, the role a role policy depends on, or the roles
    attached to a managed policy."""
    roles = {r["key"]: r for r in resources_of(plan, "aws:iam/role:Role")}
    if resource.get("type") == "aws:iam/role:Role":
        return [resource]
    if resource.get("type") == "aws:iam/rolePolicy:RolePolicy":
        return [roles[d] for d in resource.get("depends_on") or () if d in roles]
    if resource.get("type") == "aws:iam/policy:Policy":
        return [
            roles[d]
            for a in resources_of(plan, "aws:iam/rolePolicyAttachment:RolePolicyAttachment")
            if resource["key"] in (a.get("depends_on") or ())
            for d in a.get("depends_on") or ()
            if d in roles
        ]
    return []


def _exempt_actions(plan: Plan, resource: Mapping[str, Any]) -> frozenset[str]:
    """Unscoped writes UNSCOPED_WRITE_EXEMPT allows this policy: those every role holding it is assumed for."""
    roles = _roles_holding(plan, resource)
    allowed: frozenset[str] | None = None
    for role in roles:
        services = _trusting_services(role)
        if not services:
            return frozenset()
        for service in services:
            actions = UNSCOPED_WRITE_EXEMPT.get(service, (frozenset(), ""))[0]
            allowed = actions if allowed is None else allowed & actions
    return allowed or frozenset()


def iam_writes_scoped(plan: Plan) -> list[Violation]:
    """No identity policy allows a write (or a read of data: objects, secrets, parameters) on every resource
    (`*`, an ARN of only wildcards, NotResource) without a condition; reads and lists of metadata on `*` are
    fine (many take no resource). Exempt by the service that assumes the role: UNSCOPED_WRITE_EXEMPT."""
    out = []
    for r in resources_of(plan, *IDENTITY_POLICY_TYPES):
        exempt: frozenset[str] | None = None
        for doc in _identity_documents(r):
            for statement in statements(doc):
                if not _allows(statement) or narrowing_keys(statement):
                    continue
                if "NotResource" not in statement and not any(map(_every_resource, as_list(statement.get("Resource")))):
                    continue
                if exempt is None:
                    exempt = _exempt_actions(plan, r)
                wide = [a for a in _actions(statement) if not _read_only(a) and a.lower() not in exempt]
                if "NotAction" in statement:
                    wide.append("NotAction")
                if wide:
                    out.append(
                        Violation(
                            "iam-writes-scoped",
                            r["key"],
                            f"statement {statement.get('Sid', '(no Sid)')} allows {', '.join(wide)} on every resource "
                            "without a condition",
                        )
                    )
    return out
