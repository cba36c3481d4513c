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
