"""IAM documents the AWS components share."""

from __future__ import annotations

import json


def assume_role_policy(service: str, *, tag_session: bool = False) -> str:
    """A role's trust policy for one AWS service principal; `tag_session` for services that tag the session
    (EKS Pod Identity does, and is refused without sts:TagSession)."""
    actions = ["sts:AssumeRole", "sts:TagSession"] if tag_session else "sts:AssumeRole"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": actions}],
        }
    )


# EKS Pod Identity: the agent assumes the role for a service account bound by an association.
POD_IDENTITY_TRUST = assume_role_policy("pods.eks.amazonaws.com", tag_session=True)


def account_administers_key(account: str) -> dict[str, object]:
    """The first statement of a key policy of the kit: the account administers the key, and grants its use to its
    own principals through IAM (a key whose policy forgot it could never be managed again)."""
    return {
        "Sid": "AccountAdministersThroughIam",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }


def topic_tls_only(topic_arn: str) -> dict[str, object]:
    """The topic policy statement every SNS topic of the kit carries: nothing is published over plain HTTP."""
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "sns:Publish",
        "Resource": topic_arn,
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


MANAGED_POLICY_PREFIX = "arn:aws:iam::aws:policy/"
# Node roles (system nodes, Karpenter's and the static GPU pools' nodes): the kubelet's EC2 reads, Pod Identity
# (eks-auth:AssumeRoleForPodIdentity, in the worker node policy) and image pulls. No CNI permissions: the VPC CNI
# (aws-node) has its own Pod Identity role. The EKS user guide ("Amazon EKS node IAM role") asks for the CNI
# policy on the node role only where the CNI gets no role of its own through IRSA or Pod Identity, and
# recommends the separate role.
NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryPullOnly")
