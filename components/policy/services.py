"""Policy rules over AWS managed services that hold state or records: databases (RDS, ElastiCache), CloudWatch
log groups, VPC flow logs, the encryption of an EKS cluster's Secrets.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from components.policy.view import Plan, Violation, as_list, inputs_of, is_unknown, mapping, resources_of

RDS_INSTANCE = "aws:rds/instance:Instance"
RDS_CLUSTER = "aws:rds/cluster:Cluster"
RDS_CLUSTER_INSTANCE = "aws:rds/clusterInstance:ClusterInstance"
RDS_PARAMETER_GROUP = "aws:rds/parameterGroup:ParameterGroup"
REPLICATION_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"

# The parameter that refuses connections without TLS, by engine, its values that mean on, and the first major
# version whose default parameter group has it on (RDS user guide: rds.force_ssl defaults to 1 from
# PostgreSQL 15; MySQL's require_secure_transport defaults to OFF).
_TLS_PARAMETER: Mapping[str, tuple[str, frozenset[str], int | None]] = {
    "postgres": ("rds.force_ssl", frozenset({"1"}), 15),
    "mysql": ("require_secure_transport", frozenset({"1", "ON", "on", "true"}), None),
    "mariadb": ("require_secure_transport", frozenset({"1", "ON", "on", "true"}), None),
}


def _major(version: Any) -> int | None:
    found = re.match(r"\d+", str(version or ""))
    return int(found.group()) if found else None


def _engine_tls_default(inputs: Mapping[str, Any]) -> bool | None:
    """Whether an instance on its engine's default parameter group refuses plain connections (None: unknown)."""
    engine, version = inputs.get("engine"), inputs.get("engineVersion")
    if not isinstance(engine, str) or is_unknown(version) or engine not in _TLS_PARAMETER:
        return None
    first = _TLS_PARAMETER[engine][2]
    major = _major(version)
    return first is not None and major is not None and major >= first


def _tls_in_group(group: Mapping[str, Any], engine: str) -> bool | None:
    """Whether a parameter group the plan creates keeps TLS on (None: unknown, or it does not say)."""
    parameters = inputs_of(group).get("parameters")
    if is_unknown(parameters):
        return None
    name, on, _ = _TLS_PARAMETER[engine]
    for parameter in as_list(parameters):
        parameter = mapping(parameter)
        if parameter.get("name") == name:
            value = parameter.get("value")
            return None if is_unknown(value) else str(value) in on
    return None


def _group_engine(group: Mapping[str, Any]) -> str | None:
    family = str(inputs_of(group).get("family", ""))
    return next((engine for engine in _TLS_PARAMETER if family.startswith(engine)), None)


def database_encrypted(plan: Plan) -> list[Violation]:
    """Databases are encrypted at rest and refuse plain connections: RDS storageEncrypted; a PostgreSQL or MySQL
    parameter group of the plan never turns TLS off, and an instance on an engine's default group is on a
    version whose default forces TLS; ElastiCache atRestEncryptionEnabled and transitEncryptionEnabled, and
    transitEncryptionMode not `preferred` (which still takes plain connections)."""
    rule = "database-encrypted"
    out = []
    for r in resources_of(plan, RDS_INSTANCE, RDS_CLUSTER):
        inputs = inputs_of(r)
        if inputs.get("storageEncrypted") is not True and not is_unknown(inputs.get("storageEncrypted")):
            out.append(Violation(rule, r["key"], "storageEncrypted is not true: the database is not encrypted at rest"))
    for group in resources_of(plan, RDS_PARAMETER_GROUP):
        engine = _group_engine(group)
        if engine and _tls_in_group(group, engine) is False:
            parameter = _TLS_PARAMETER[engine][0]
            out.append(Violation(rule, group["key"], f"{parameter} is off: the database takes plain connections"))
    for r in resources_of(plan, RDS_INSTANCE):
        inputs = inputs_of(r)
        name = inputs.get("parameterGroupName")
        # The plan shows no name for a group it creates under an auto-name (the engine's mocks give it none):
        # an instance without one is judged by its engine's default group, the kit's groups above.
        on_default = name is None or (isinstance(name, str) and name.startswith("default."))
        if on_default and _engine_tls_default(inputs) is False:
            out.append(
                Violation(
                    rule,
                    r["key"],
                    f"engine {inputs.get('engine')} {inputs.get('engineVersion')} on its default parameter "
                    "group takes plain connections: use a parameter group that forces TLS",
                )
            )
    for r in resources_of(plan, REPLICATION_GROUP):
        inputs = inputs_of(r)
        problems = [
            f"{field} is not true"
            for field in ("atRestEncryptionEnabled", "transitEncryptionEnabled")
            if inputs.get(field) is not True and not is_unknown(inputs.get(field))
        ]
        if inputs.get("transitEncryptionMode") == "preferred":
            problems.append("transitEncryptionMode preferred takes plain connections too")
        if problems:
            out.append(Violation(rule, r["key"], "; ".join(problems)))
    return out


def database_private(plan: Plan) -> list[Violation]:
    """No RDS instance (or Aurora instance) has a public address (publiclyAccessible). ElastiCache has none."""
    return [
        Violation("database-private", r["key"], "publiclyAccessible is true: the database gets a public address")
        for r in resources_of(plan, RDS_INSTANCE, RDS_CLUSTER_INSTANCE)
        if inputs_of(r).get("publiclyAccessible") is True
    ]


def database_retained(plan: Plan) -> list[Violation]:
    """RDS instances and clusters have deletion protection and take a named final snapshot when deleted;
    ElastiCache replication groups keep automatic snapshots or take a final one (ElastiCache has no deletion
    protection)."""
    rule = "database-retained"
    out = []
    for r in resources_of(plan, RDS_INSTANCE, RDS_CLUSTER):
        inputs = inputs_of(r)
        problems = []
        if inputs.get("deletionProtection") is not True and not is_unknown(inputs.get("deletionProtection")):
            problems.append("deletionProtection is not true")
        skip, final = inputs.get("skipFinalSnapshot"), inputs.get("finalSnapshotIdentifier")
        if skip is True:
            problems.append("skipFinalSnapshot is true: no final snapshot")
        elif not is_unknown(skip) and not final:
            problems.append("no finalSnapshotIdentifier: no final snapshot")
        if problems:
            out.append(Violation(rule, r["key"], "; ".join(problems)))
    for r in resources_of(plan, REPLICATION_GROUP):
        inputs = inputs_of(r)
        days, final = inputs.get("snapshotRetentionLimit"), inputs.get("finalSnapshotIdentifier")
        if is_unknown(days) or is_unknown(final):
            continue
        if not final and not (isinstance(days, int | float) and days > 0):
            out.append(
                Violation(rule, r["key"], "no automatic snapshots (snapshotRetentionLimit) and no final snapshot")
            )
    return out


def log_retention(plan: Plan) -> list[Violation]:
    """Every CloudWatch log group has a retention (retentionInDays): without one it keeps everything forever, at a
    cost that only grows, and a retention the stack chose is no longer the one applied."""
    out = []
    for r in resources_of(plan, "aws:cloudwatch/logGroup:LogGroup"):
        days = inputs_of(r).get("retentionInDays")
        if not is_unknown(days) and not days:
            out.append(Violation("log-retention", r["key"], "no retentionInDays: the log group never expires"))
    return out


def vpc_flow_logs(plan: Plan) -> list[Violation]:
    """Every VPC has a flow log (one that depends on it, as one made from its id does)."""
    logs = resources_of(plan, "aws:ec2/flowLog:FlowLog")
    undecided = any(
        is_unknown(inputs_of(f).get("vpcId")) and not f.get("depends_on") for f in logs
    )  # which VPC it logs cannot be told
    out = []
    for vpc in resources_of(plan, "aws:ec2/vpc:Vpc"):
        if undecided or any(vpc["key"] in (f.get("depends_on") or ()) for f in logs):
            continue
        out.append(Violation("vpc-flow-logs", vpc["key"], "no flow log records this VPC's traffic"))
    return out


def eks_secrets_encrypted(plan: Plan) -> list[Violation]:
    """Every EKS cluster envelope-encrypts Secrets with a KMS key (encryptionConfig: resources [secrets] and a
    provider key)."""
    out = []
    for r in resources_of(plan, "aws:eks/cluster:Cluster"):
        config = inputs_of(r).get("encryptionConfig")
        if is_unknown(config):
            continue
        config = mapping(config)
        resources, provider = config.get("resources"), config.get("provider")
        key = None if is_unknown(provider) else mapping(provider).get("keyArn")
        if is_unknown(resources) or is_unknown(provider) or is_unknown(key):
            continue
        if "secrets" not in as_list(resources) or not key:
            out.append(
                Violation(
                    "eks-secrets-encrypted", r["key"], "Kubernetes Secrets are not envelope-encrypted with a KMS key"
                )
            )
    return out
