"""ImageCache: an ECR pull-through cache, so nodes without a route to the internet can pull public images.

Nodes pull `<account>.dkr.ecr.<region>.amazonaws.com/<prefix>/<repository>:<tag>`; on the first pull ECR
fetches the image from the upstream registry and keeps it (billed as ECR storage). Upstreams ECR supports
without credentials: ECR Public, registry.k8s.io, Quay. Docker Hub and GitHub need a Secrets Manager
secret whose name starts with `ecr-pullthroughcache/` (ECR user guide, "Creating a pull through cache
rule"). nvcr.io (NVIDIA's registry: device plugin, DCGM exporter) is not a supported upstream: those
images must be mirrored into ECR by hand for stacks without NAT (docs/cluster.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.options import renamed_from


@dataclass(frozen=True)
class Upstream:
    host: str  # as image references name it
    url: str  # as ECR names it
    prefix: str  # the repository prefix in the account's registry
    credential: str | None  # the ImageCacheSettings field holding its secret ARN, if it needs one


UPSTREAMS: tuple[Upstream, ...] = (
    Upstream("public.ecr.aws", "public.ecr.aws", "ecr-public", None),
    Upstream("registry.k8s.io", "registry.k8s.io", "k8s", None),
    Upstream("quay.io", "quay.io", "quay", None),
    Upstream("docker.io", "registry-1.docker.io", "docker-hub", "docker_hub_secret_arn"),
    Upstream("ghcr.io", "ghcr.io", "ghcr", "github_secret_arn"),
)


def mirrored(host: str, *, account: str, region: str) -> str:
    """The registry host/prefix that serves `host`'s images through the cache (`host` when not cacheable)."""
    for upstream in UPSTREAMS:
        if upstream.host == host:
            return f"{account}.dkr.ecr.{region}.amazonaws.com/{upstream.prefix}"
    return host


@dataclass(frozen=True, kw_only=True)
class ImageCacheArgs:
    region: str
    account_id: pulumi.Input[str]
    credentials: Mapping[str, str | None]
    """Secret ARN by ImageCacheSettings field name; an upstream needing one is skipped without it."""
    node_role_names: Mapping[str, pulumi.Input[str]]
    """Roles of the nodes that pull, by a name of their nodes (e.g. `system`): they need
    ecr:BatchImportUpstreamImage for a first pull. In the order earlier kits listed them (their aliases follow it)."""
    tags: Mapping[str, str]


class ImageCache(pulumi.ComponentResource):
    """Pull-through cache rules for the public registries the kit's images come from."""

    def __init__(self, name: str, *, args: ImageCacheArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("modelyard:aws:ImageCache", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        prefixes: list[str] = []
        for upstream in UPSTREAMS:
            secret = args.credentials.get(upstream.credential) if upstream.credential else None
            if upstream.credential and secret is None:
                continue
            aws.ecr.PullThroughCacheRule(
                f"{name}-{upstream.prefix}",
                ecr_repository_prefix=upstream.prefix,
                upstream_registry_url=upstream.url,
                credential_arn=secret,
                opts=child,
            )
            prefixes.append(upstream.prefix)
        policy = aws.iam.Policy(
            f"{name}-pull",
            description="First pulls through the ECR pull-through cache: import upstream images into its repositories",
            policy=pulumi.Output.from_input(args.account_id).apply(
                lambda account: json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Sid": "PullThroughCache",
                                "Effect": "Allow",
                                "Action": ["ecr:BatchImportUpstreamImage", "ecr:CreateRepository"],
                                "Resource": [f"arn:aws:ecr:{args.region}:{account}:repository/{p}/*" for p in prefixes],
                            }
                        ],
                    }
                )
            ),
            tags=dict(args.tags),
            opts=child,
        )
        # Earlier kits named the attachments by position (`pull-<index>`); the alias keeps them on the upgrade.
        for index, (nodes, role) in enumerate(args.node_role_names.items()):
            aws.iam.RolePolicyAttachment(
                f"{name}-pull-{nodes}",
                role=role,
                policy_arn=policy.arn,
                opts=pulumi.ResourceOptions(parent=self, aliases=[renamed_from(f"{name}-pull-{index}")]),
            )
        self.prefixes = prefixes
        self.register_outputs({})
