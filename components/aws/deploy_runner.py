"""DeployRunner: where `pulumi up` of a split deployment's Kubernetes layer runs, inside the VPC.

A private-only cluster's API answers only inside the VPC. The AWS layer (applied from anywhere with AWS
credentials) creates this runner; the Kubernetes layer (its own stack, joined to the AWS layer's by a stack
reference) is then applied by it (docs/deploy.md):

  - a CodeBuild project in the private subnets: nothing runs between deployments, every run is logged,
    and CI starts it with `aws codebuild start-build` (no inbound path, no SSH, no long-lived host);
  - its image: an ECR repository (immutable tags, scanned on push) for `deploy/runner.Dockerfile`, which
    bakes the Pulumi CLI, its provider plugins and the locked Python packages, because presets without NAT
    cannot download them at run time;
  - its source: a private, versioned, encrypted S3 bucket CI uploads the repository's archive to;
  - its role may: read that source and pull that image, write its own log group, describe the cluster, read
    and write the Pulumi state under `.pulumi/` of the named state bucket, use the named secrets key, and
    manage the network interfaces CodeBuild attaches in the private subnets. It has no other AWS right:
    the Kubernetes layer creates no AWS resource. It is cluster admin through an access entry, and the
    cluster security group admits it on 443.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import yaml

from components.aws.buckets import harden_bucket
from components.contract import CLUSTER_ADMIN_POLICY

# Where CI puts the repository's archive in the source bucket (docs/deploy.md shows the upload).
SOURCE_KEY = "source/modelyard.zip"
# What one run does by default; CI asks for `up` explicitly (PULUMI_COMMAND=up).
DEFAULT_COMMAND = "preview"
RUNNER_LOG_RETENTION_DAYS = 90
# The runner image's tags are immutable: keep the last ten, so a rollback to a recent kit version works.
KEEP_IMAGES = 10


def source_bucket_name(name: str, account_id: pulumi.Input[str]) -> pulumi.Output[str]:
    """The runner's source bucket: `<project>-<stack>-deploy-<account id>` (the network's S3 endpoint admits it)."""
    return pulumi.Output.concat(name, "-deploy-", account_id)


@dataclass(frozen=True, kw_only=True)
class DeployRunnerArgs:
    name: str
    """The deployment's name (`<project>-<stack>`), prefix of every physical name."""
    region: str
    account_id: pulumi.Input[str]
    vpc_id: pulumi.Input[str]
    private_subnet_ids: pulumi.Input[Sequence[str]]
    """Where CodeBuild attaches the runner (no public address)."""
    cluster_name: pulumi.Input[str]
    cluster_arn: pulumi.Input[str]
    cluster_security_group_id: pulumi.Input[str]
    """The EKS cluster security group: gets an ingress rule on 443 from the runner."""
    kubernetes_stack: str
    """The stack holding the Kubernetes layer, which the runner applies."""
    state_bucket: str
    """The S3 bucket of the Pulumi state backend."""
    secrets_key_arn: str
    """The KMS key of the stacks' awskms:// secrets provider."""
    compute_type: str
    """A CodeBuild compute type (BUILD_GENERAL1_SMALL, ...)."""
    timeout_minutes: int
    image_tag: str
    """The runner image's tag the project uses by default (the kit's version)."""
    tags: Mapping[str, str]


def buildspec(*, kubernetes_stack: str) -> str:
    """The runner's build: log in to the S3 backend, then preview or apply the Kubernetes layer, offline.

    PULUMI_COMMAND is `preview` unless CI overrides it with `up`; anything else fails before Pulumi runs.
    uv runs offline from the image's cache: presets without NAT cannot reach PyPI.
    """
    check = (
        'case "$PULUMI_COMMAND" in preview) ARGS="preview --diff";; up) ARGS="up --yes --skip-preview";; '
        '*) echo "PULUMI_COMMAND must be preview or up, not $PULUMI_COMMAND" >&2; exit 2;; esac'
    )
    spec: dict[str, Any] = {
        "version": 0.2,
        "env": {
            "shell": "bash",
            "variables": {
                "PULUMI_COMMAND": DEFAULT_COMMAND,
                "KUBERNETES_STACK": kubernetes_stack,
                "UV_OFFLINE": "1",
                "PULUMI_SKIP_UPDATE_CHECK": "true",
            },
        },
        "phases": {
            "build": {
                "commands": [
                    check,
                    'pulumi login "$PULUMI_BACKEND_URL"',
                    'pulumi $ARGS --stack "$KUBERNETES_STACK" --non-interactive',
                ]
            }
        },
    }
    return yaml.safe_dump(spec, sort_keys=False)


def runner_policy(
    *,
    source_bucket_arn: str,
    repository_arn: str,
    log_group_arn: str,
    cluster_arn: str,
    state_bucket: str,
    secrets_key_arn: str,
    subnet_arns: Sequence[str],
) -> str:
    """Least privilege for one run of the Kubernetes layer (the statement ids say why each is there)."""
    statements = [
        {"Sid": "ReadSource", "Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectVersion"],
         "Resource": f"{source_bucket_arn}/*"},
        {"Sid": "PullRunnerImage", "Effect": "Allow",
         "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
         "Resource": repository_arn},
        {"Sid": "EcrToken", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
        {"Sid": "WriteOwnLogs", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
         "Resource": [log_group_arn, f"{log_group_arn}:log-stream:*"]},
        {"Sid": "FindCluster", "Effect": "Allow", "Action": "eks:DescribeCluster", "Resource": cluster_arn},
        {"Sid": "StateList", "Effect": "Allow", "Action": "s3:ListBucket",
         "Resource": f"arn:aws:s3:::{state_bucket}", "Condition": {"StringLike": {"s3:prefix": [".pulumi/*"]}}},
        {"Sid": "StateReadWrite", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
         "Resource": f"arn:aws:s3:::{state_bucket}/.pulumi/*"},
        {"Sid": "StackSecrets", "Effect": "Allow", "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"],
         "Resource": secrets_key_arn},
        # CodeBuild in a VPC attaches a network interface on the project's behalf (CodeBuild user guide,
        # "Allow Amazon VPC access in your CodeBuild projects"): describe calls take no resource.
        {"Sid": "VpcDescribe", "Effect": "Allow",
         "Action": ["ec2:CreateNetworkInterface", "ec2:DescribeDhcpOptions", "ec2:DescribeNetworkInterfaces",
                    "ec2:DeleteNetworkInterface", "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups",
                    "ec2:DescribeVpcs"],
         "Resource": "*"},
        {"Sid": "VpcInterfaces", "Effect": "Allow", "Action": "ec2:CreateNetworkInterfacePermission",
         "Resource": "arn:aws:ec2:*:*:network-interface/*",
         "Condition": {"StringEquals": {"ec2:AuthorizedService": "codebuild.amazonaws.com"},
                       "ArnEquals": {"ec2:Subnet": sorted(subnet_arns)}}},
    ]  # fmt: skip
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)


class DeployRunner(pulumi.ComponentResource):
    """A CodeBuild project in the VPC that applies the Kubernetes layer, with its image, source and role."""

    project_name: pulumi.Output[str]
    repository_url: pulumi.Output[str]
    source_bucket: pulumi.Output[str]
    role_arn: pulumi.Output[str]

    def __init__(self, name: str, *, args: DeployRunnerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("modelyard:aws:DeployRunner", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)

        def named(role: str) -> dict[str, str]:
            return {**tags, "Name": f"{args.name}-{role}"}

        repository = aws.ecr.Repository(
            f"{name}-image",
            name=f"{args.name}/deploy-runner",
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
            encryption_configurations=[aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="KMS")],
            tags=named("deploy-runner"),
            opts=child,
        )
        aws.ecr.LifecyclePolicy(
            f"{name}-image",
            repository=repository.name,
            policy=json.dumps(
                {
                    "rules": [
                        {
                            "rulePriority": 1,
                            "description": f"keep the last {KEEP_IMAGES} runner images",
                            "selection": {
                                "tagStatus": "any",
                                "countType": "imageCountMoreThan",
                                "countNumber": KEEP_IMAGES,
                            },
                            "action": {"type": "expire"},
                        }
                    ]
                },
                sort_keys=True,
            ),
            opts=child,
        )
        source = aws.s3.Bucket(
            f"{name}-source",
            bucket=source_bucket_name(args.name, args.account_id),
            tags=named("deploy-source"),
            # Archives of past deployments: the audit trail of what the runner applied.
            opts=pulumi.ResourceOptions(parent=self, protect=True, retain_on_delete=True),
        )
        harden_bucket(f"{name}-source", source, child, kms_key_arn=None)
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-source",
            bucket=source.id,
            rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="old-archives",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                        noncurrent_days=30
                    ),
                    abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                        days_after_initiation=1
                    ),
                )
            ],
            opts=child,
        )
        logs = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/aws/codebuild/{args.name}-deploy",
            retention_in_days=RUNNER_LOG_RETENTION_DAYS,
            tags=named("deploy-runner"),
            opts=child,
        )
        security_group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            vpc_id=args.vpc_id,
            description="Deploy runner: out on 443 only (cluster API, AWS endpoints, S3)",
            tags=named("deploy-runner"),
            opts=child,
        )
        egress = {
            "https-out": (
                "tcp",
                443,
                "HTTPS: the cluster's private endpoint, interface endpoints, S3 (no NAT: nothing beyond)",
            ),
            "dns-out": ("udp", 53, "DNS: the VPC resolver"),
        }
        for rule, (protocol, port, description) in egress.items():
            aws.vpc.SecurityGroupEgressRule(
                f"{name}-{rule}",
                security_group_id=security_group.id,
                cidr_ipv4="0.0.0.0/0",
                ip_protocol=protocol,
                from_port=port,
                to_port=port,
                description=description,
                tags=named("deploy-runner"),
                opts=child,
            )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-api",
            security_group_id=args.cluster_security_group_id,
            referenced_security_group_id=security_group.id,
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            description="Kubernetes API (private endpoint) from the deploy runner",
            tags=named("deploy-runner"),
            opts=child,
        )

        role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=pulumi.Output.from_input(args.account_id).apply(
                lambda account: json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "codebuild.amazonaws.com"},
                                "Action": "sts:AssumeRole",
                                # Only CodeBuild acting for this account (confused-deputy guard).
                                "Condition": {"StringEquals": {"aws:SourceAccount": account}},
                            }
                        ],
                    },
                    sort_keys=True,
                )
            ),
            tags=named("deploy-runner"),
            opts=child,
        )
        subnet_arns = pulumi.Output.all(args.account_id, args.private_subnet_ids).apply(
            lambda v: [f"arn:aws:ec2:{args.region}:{v[0]}:subnet/{subnet}" for subnet in v[1]]
        )
        policy = aws.iam.RolePolicy(
            f"{name}-role",
            role=role.id,
            policy=pulumi.Output.all(source.arn, repository.arn, logs.arn, args.cluster_arn, subnet_arns).apply(
                lambda v: runner_policy(
                    source_bucket_arn=v[0],
                    repository_arn=v[1],
                    log_group_arn=v[2],
                    cluster_arn=v[3],
                    state_bucket=args.state_bucket,
                    secrets_key_arn=args.secrets_key_arn,
                    subnet_arns=v[4],
                )
            ),
            opts=child,
        )
        # The Kubernetes layer creates namespaces, CRD objects, cluster roles and admission policies.
        entry = aws.eks.AccessEntry(
            f"{name}-access",
            cluster_name=args.cluster_name,
            principal_arn=role.arn,
            type="STANDARD",
            tags=named("deploy-runner"),
            opts=child,
        )
        aws.eks.AccessPolicyAssociation(
            f"{name}-access",
            cluster_name=args.cluster_name,
            principal_arn=role.arn,
            policy_arn=CLUSTER_ADMIN_POLICY,
            access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[entry]),
        )
        project = aws.codebuild.Project(
            f"{name}-project",
            name=f"{args.name}-deploy",
            description=f"Applies the Kubernetes layer (stack {args.kubernetes_stack}) from inside the VPC",
            service_role=role.arn,
            build_timeout=args.timeout_minutes,
            queued_timeout=60,
            # One run at a time: two concurrent `pulumi up` of one stack would fight over its lock.
            concurrent_build_limit=1,
            source=aws.codebuild.ProjectSourceArgs(
                type="S3",
                location=pulumi.Output.concat(source.bucket, "/", SOURCE_KEY),
                buildspec=buildspec(kubernetes_stack=args.kubernetes_stack),
            ),
            artifacts=aws.codebuild.ProjectArtifactsArgs(type="NO_ARTIFACTS"),
            environment=aws.codebuild.ProjectEnvironmentArgs(
                type="LINUX_CONTAINER",
                compute_type=args.compute_type,
                image=pulumi.Output.concat(repository.repository_url, ":", args.image_tag),
                image_pull_credentials_type="SERVICE_ROLE",
                privileged_mode=False,
                environment_variables=[
                    aws.codebuild.ProjectEnvironmentEnvironmentVariableArgs(
                        name="PULUMI_BACKEND_URL", value=f"s3://{args.state_bucket}"
                    ),
                    aws.codebuild.ProjectEnvironmentEnvironmentVariableArgs(name="AWS_REGION", value=args.region),
                ],
            ),
            vpc_config=aws.codebuild.ProjectVpcConfigArgs(
                vpc_id=args.vpc_id, subnets=args.private_subnet_ids, security_group_ids=[security_group.id]
            ),
            logs_config=aws.codebuild.ProjectLogsConfigArgs(
                cloudwatch_logs=aws.codebuild.ProjectLogsConfigCloudwatchLogsArgs(
                    status="ENABLED", group_name=logs.name
                ),
                s3_logs=aws.codebuild.ProjectLogsConfigS3LogsArgs(status="DISABLED"),
            ),
            tags=named("deploy-runner"),
            # The role's rights must exist before CodeBuild validates the project's VPC access.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )
        self.project_name = project.name
        self.repository_url = repository.repository_url
        self.source_bucket = source.bucket
        self.role_arn = role.arn
        self.register_outputs(
            {
                "project_name": self.project_name,
                "repository_url": self.repository_url,
                "source_bucket": self.source_bucket,
                "role_arn": self.role_arn,
            }
        )
