"""GatewayIdentity: the gateway's AWS role, for its Bedrock fallbacks (docs/gateway.md, "Bedrock").

An IAM role that EKS Pod Identity gives the gateway's service account, allowed to invoke exactly the
foundation models the stack's Bedrock fallbacks name, in the stack's region, and nothing else: no other
model, region or Bedrock action. Created only when some tenant may fall back to Bedrock
(`components.k8s.gateway.config.bedrock_models`); LiteLLM's boto3 client then finds the credentials through
the Pod Identity agent (the gateway's NetworkPolicy admits 169.254.170.23 for that case alone).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws.iam import POD_IDENTITY_TRUST

# InvokeModel covers Converse, InvokeModelWithResponseStream covers ConverseStream (Bedrock API reference).
BEDROCK_ACTIONS = ("bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream")


@dataclass(frozen=True, kw_only=True)
class GatewayIdentityArgs:
    cluster_name: pulumi.Input[str]
    """The EKS cluster whose Pod Identity agent hands out the role."""
    region: str
    """The stack's region: the only region whose models the role may invoke."""
    namespace: str
    """The gateway's namespace (components.contract.GATEWAY_NAMESPACE)."""
    service_account: str
    """The gateway's service account (components.contract.GATEWAY_NAME)."""
    bedrock_models: Sequence[str]
    """Foundation-model ids (anthropic.claude-3-5-sonnet-20240620-v1:0, ...); at least one."""
    tags: Mapping[str, str]
    """Tags for every taggable resource."""


def foundation_model_arns(region: str, models: Sequence[str]) -> list[str]:
    """The ARNs of foundation models in one region (they carry no account: AWS owns them)."""
    return [f"arn:aws:bedrock:{region}::foundation-model/{model}" for model in sorted(set(models))]


def bedrock_policy(region: str, models: Sequence[str]) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "InvokeFallbackModels",
                    "Effect": "Allow",
                    "Action": list(BEDROCK_ACTIONS),
                    "Resource": foundation_model_arns(region, models),
                }
            ],
        }
    )


class GatewayIdentity(pulumi.ComponentResource):
    """The gateway's Pod Identity role: Bedrock invocations of its fallback models only."""

    role_arn: pulumi.Output[str]

    def __init__(self, name: str, *, args: GatewayIdentityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        if not args.bedrock_models:
            raise ValueError("GatewayIdentity needs a Bedrock fallback model: create it only when one is used")
        super().__init__("modelyard:aws:GatewayIdentity", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)
        role = aws.iam.Role(
            f"{name}-role",
            description="The LiteLLM gateway's Bedrock fallbacks (EKS Pod Identity)",
            assume_role_policy=POD_IDENTITY_TRUST,
            max_session_duration=3600,
            tags=tags,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-bedrock",
            role=role.id,
            policy=bedrock_policy(args.region, args.bedrock_models),
            opts=child,
        )
        aws.eks.PodIdentityAssociation(
            f"{name}-association",
            cluster_name=args.cluster_name,
            namespace=args.namespace,
            service_account=args.service_account,
            role_arn=role.arn,
            tags=tags,
            opts=child,
        )
        self.role_arn = role.arn
        self.register_outputs({"role_arn": self.role_arn})
