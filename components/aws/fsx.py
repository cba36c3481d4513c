"""ModelFileSystem: an FSx for Lustre file system whose /models is the model bucket's models/ prefix.

Model servers with `weights.load: fsx` mount it read-only and vLLM reads the checkpoint as local files
(docs/storage.md, "FSx for Lustre"). What it is made of:
  - a PERSISTENT_2 SSD file system in ONE private subnet: Lustre serves from a single zone. Pods of pools in other
    zones still mount it (the VPC routes between zones), at a higher latency and with inter-zone traffic billed;
  - encrypted at rest with the model bucket's KMS key;
  - a security group of its own admitting Lustre (TCP 988 and 1018-1023) from the nodes' security group (the
    cluster security group, which system and GPU nodes carry) and from itself (the file servers talk to each other,
    FSx for Lustre User Guide, "File system access control with Amazon VPC"); no other ingress;
  - a data repository association of /models to s3://<bucket>/models/ that imports new, changed and deleted
    objects as `models push` writes them, and exports nothing (the servers only read);
  - read access to the bucket's key for the association's service-linked role (AWSServiceRoleForFSxS3Access_<fs id>,
    created by FSx with the association): a KMS grant for Decrypt only, constrained to this bucket's encryption
    context (the bucket key's context is the bucket's ARN). The role's own policy, managed by AWS, covers S3; the
    bucket's TLS-only rule does not bind it (FSx reads S3 over HTTPS) and its encryption-header rule concerns
    uploads, which the association never makes.
The file system is stateful like the bucket (protected, retained on delete), though everything on it can be loaded
again from S3. No automatic backups: the bucket is the copy of record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

# Lustre's ports (FSx for Lustre User Guide, "File system access control with Amazon VPC"): LNet on 988, and
# 1018-1023 for the clients' and servers' other connections.
LUSTRE_PORTS = ((988, 988), (1018, 1023))
# Where the bucket's models/ appears on the file system (and so under the mount).
FILE_SYSTEM_PATH = "/models"
# Lustre 2.15: the version PERSISTENT_2 with a metadata configuration runs, and the AL2023 client's.
LUSTRE_VERSION = "2.15"
# Root on a client maps to nobody: nothing mounted by a node can change the imported weights.
ROOT_SQUASH = "65534:65534"
# The service-linked role FSx creates for an association's S3 access (AWS managed policy reference,
# FSxDeleteServiceLinkedRoleAccess: role/aws-service-role/s3.data-source.lustre.fsx.amazonaws.com/...).
DRA_ROLE_PATH = "role/aws-service-role/s3.data-source.lustre.fsx.amazonaws.com/AWSServiceRoleForFSxS3Access_"


@dataclass(frozen=True, kw_only=True)
class ModelFileSystemArgs:
    vpc_id: pulumi.Input[str]
    subnet_id: pulumi.Input[str]
    """The private subnet of the file system's zone (one subnet: Lustre is single-zone)."""
    client_security_group_id: pulumi.Input[str]
    """The nodes' security group (the cluster security group): the only clients admitted."""
    bucket_name: pulumi.Input[str]
    bucket_arn: pulumi.Input[str]
    key_arn: pulumi.Input[str]
    """The model bucket's KMS key: encrypts the file system, and the association's role may decrypt with it."""
    account_id: pulumi.Input[str]
    storage_capacity_gib: int
    """1200, 2400 or a multiple of 2400 (validated by settings)."""
    throughput_per_tib: int
    """125, 250, 500 or 1000 MB/s per TiB (validated by settings)."""
    tags: Mapping[str, str]
    """Tags for every taggable resource of the component."""
    protect: bool = field(default=True)
    """Protect the file system from deletion (stateful, like the bucket); tests may turn it off."""


def dra_role_arn(account_id: str, file_system_id: str) -> str:
    """The service-linked role FSx creates for a file system's data repository association."""
    return f"arn:aws:iam::{account_id}:{DRA_ROLE_PATH}{file_system_id}"


class ModelFileSystem(pulumi.ComponentResource):
    """FSx for Lustre (PERSISTENT_2) linked to the model bucket's models/, for read-only mounts by model servers."""

    file_system_id: pulumi.Output[str]
    dns_name: pulumi.Output[str]
    mount_name: pulumi.Output[str]

    def __init__(self, name: str, *, args: ModelFileSystemArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("modelyard:aws:ModelFileSystem", name, None, opts)
        tags = dict(args.tags)
        child = pulumi.ResourceOptions(parent=self)
        stateful = pulumi.ResourceOptions(parent=self, protect=args.protect, retain_on_delete=True)

        group = aws.ec2.SecurityGroup(
            f"{name}-lustre",
            vpc_id=args.vpc_id,
            description="FSx for Lustre: Lustre ports from the cluster's nodes and between the file servers only",
            tags={**tags, "Name": f"{name}-lustre"},
            opts=child,
        )
        for low, high in LUSTRE_PORTS:
            ports = str(low) if low == high else f"{low}-{high}"
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-lustre-nodes-{ports}",
                security_group_id=group.id,
                referenced_security_group_id=args.client_security_group_id,
                ip_protocol="tcp",
                from_port=low,
                to_port=high,
                description=f"Lustre {ports} from the cluster's nodes",
                tags=tags,
                opts=child,
            )
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-lustre-servers-{ports}",
                security_group_id=group.id,
                referenced_security_group_id=group.id,
                ip_protocol="tcp",
                from_port=low,
                to_port=high,
                description=f"Lustre {ports} between the file servers",
                tags=tags,
                opts=child,
            )
            # The file servers answer the nodes and each other; nothing else leaves this group.
            aws.vpc.SecurityGroupEgressRule(
                f"{name}-lustre-out-{ports}",
                security_group_id=group.id,
                referenced_security_group_id=group.id,
                ip_protocol="tcp",
                from_port=low,
                to_port=high,
                description=f"Lustre {ports} between the file servers",
                tags=tags,
                opts=child,
            )

        file_system = aws.fsx.LustreFileSystem(
            f"{name}-lustre",
            deployment_type="PERSISTENT_2",
            storage_type="SSD",
            storage_capacity=args.storage_capacity_gib,
            per_unit_storage_throughput=args.throughput_per_tib,
            file_system_type_version=LUSTRE_VERSION,
            metadata_configuration=aws.fsx.LustreFileSystemMetadataConfigurationArgs(mode="AUTOMATIC"),
            subnet_ids=args.subnet_id,
            security_group_ids=[group.id],
            kms_key_id=args.key_arn,
            data_compression_type="NONE",
            root_squash_configuration=aws.fsx.LustreFileSystemRootSquashConfigurationArgs(root_squash=ROOT_SQUASH),
            # The bucket is the copy of record: no backups to pay for, none on deletion.
            automatic_backup_retention_days=0,
            skip_final_backup=True,
            tags={**tags, "Name": f"{name}-lustre"},
            opts=stateful,
        )
        association = aws.fsx.DataRepositoryAssociation(
            f"{name}-models",
            file_system_id=file_system.id,
            file_system_path=FILE_SYSTEM_PATH,
            data_repository_path=pulumi.Output.concat("s3://", args.bucket_name, "/models/"),
            # Listings of what is in the bucket already; file contents load from S3 on first read.
            batch_import_meta_data_on_create=True,
            delete_data_in_filesystem=False,
            s3=aws.fsx.DataRepositoryAssociationS3Args(
                # New pushes appear on the file system; nothing is exported back (the servers only read).
                auto_import_policy=aws.fsx.DataRepositoryAssociationS3AutoImportPolicyArgs(
                    events=["NEW", "CHANGED", "DELETED"]
                ),
            ),
            tags=tags,
            opts=stateful,
        )
        aws.kms.Grant(
            f"{name}-models-decrypt",
            name=f"{name}-fsx-data-repository",
            key_id=args.key_arn,
            grantee_principal=pulumi.Output.all(args.account_id, file_system.id).apply(lambda v: dra_role_arn(*v)),
            operations=["Decrypt"],
            constraints=[
                aws.kms.GrantConstraintArgs(
                    encryption_context_equals=pulumi.Output.from_input(args.bucket_arn).apply(
                        lambda arn: {"aws:s3:arn": arn}
                    )
                )
            ],
            # FSx creates the role with the association: the grant names an existing principal only after it.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[association]),
        )

        self.file_system_id = file_system.id
        self.dns_name = file_system.dns_name
        self.mount_name = file_system.mount_name
        self.register_outputs(
            {"file_system_id": self.file_system_id, "dns_name": self.dns_name, "mount_name": self.mount_name}
        )
