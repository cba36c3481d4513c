"""Values that stand in for the user's own and that `pulumi up` cannot use: refused before anything is deployed.

The presets and `modelyard init` write them so that a new stack plans offline at once: documentation CIDRs
(RFC 5737) for the public endpoint, AWS's documentation bucket name and account for the deploy runner's state.
The offline plan accepts them; `modelyard preflight` (exit 2) and the real engine refuse them, naming each key.
"""

from __future__ import annotations

import ipaddress

from components.errors import Problem
from components.settings.types import Settings

# RFC 5737: TEST-NET-1, -2 and -3 reach nothing.
DOCUMENTATION_NETWORKS = tuple(ipaddress.IPv4Network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"))
# AWS's documentation examples: a bucket name and an account ID that no one deploys to.
DOCUMENTATION_BUCKET = "amzn-s3-demo-bucket"
DOCUMENTATION_ACCOUNT = "111122223333"


def placeholders(settings: Settings) -> list[Problem]:
    """A problem per setting still holding a placeholder that `pulumi up` cannot use."""
    problems = []
    for i, cidr in enumerate(settings.cluster.public_cidrs):
        network = ipaddress.ip_network(cidr, strict=False)
        if any(network.subnet_of(doc) for doc in DOCUMENTATION_NETWORKS if network.version == doc.version):
            problems.append(
                Problem(
                    path=f"modelyard:cluster.public_cidrs[{i}]",
                    message=f"{cidr} is a documentation range that reaches nothing: set the public CIDRs "
                    "`pulumi up` runs from (your office's, your CI runner's)",
                )
            )
    deploy = settings.deploy
    if deploy.state_bucket == DOCUMENTATION_BUCKET:
        problems.append(
            Problem(
                path="modelyard:deploy.state_bucket",
                message=f"{DOCUMENTATION_BUCKET} is AWS's documentation example: name the bucket holding the "
                "Kubernetes layer's Pulumi state",
            )
        )
    if deploy.secrets_key_arn and f":{DOCUMENTATION_ACCOUNT}:" in deploy.secrets_key_arn:
        problems.append(
            Problem(
                path="modelyard:deploy.secrets_key_arn",
                message=f"account {DOCUMENTATION_ACCOUNT} is AWS's documentation example: give your KMS key's ARN",
            )
        )
    certificate = settings.gateway.certificate_arn
    if certificate and f":{DOCUMENTATION_ACCOUNT}:" in certificate:
        problems.append(
            Problem(
                path="modelyard:gateway.certificate_arn",
                message=f"account {DOCUMENTATION_ACCOUNT} is AWS's documentation example: give your certificate's ARN "
                "(for a cell: one naming its hostname and the global entry, docs/regions.md)",
            )
        )
    return problems
