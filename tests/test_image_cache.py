"""The ECR pull-through cache: on where nodes have no NAT, and what nodes pull through it."""

from __future__ import annotations

import json

import pytest

from components.aws.image_cache import mirrored
from components.errors import InputError
from tests.conftest import by_type

RULE = "aws:ecr/pullThroughCacheRule:PullThroughCacheRule"


def test_no_nat_stack_caches_the_public_registries(plans):
    rules = {r["inputs"]["ecrRepositoryPrefix"]: r["inputs"] for r in by_type(plans["core"], RULE)}
    assert set(rules) == {"ecr-public", "k8s", "quay", "docker-hub"}
    assert rules["docker-hub"]["upstreamRegistryUrl"] == "registry-1.docker.io"
    assert rules["docker-hub"]["credentialArn"].split(":secret:")[1].startswith("ecr-pullthroughcache/")
    assert "credentialArn" not in rules["quay"]


@pytest.mark.parametrize("stack", ["pilot", "product"])
def test_stacks_with_nat_have_no_cache(plans, stack):
    assert not by_type(plans[stack], RULE)


def test_nodes_may_import_only_into_cached_repositories(plans):
    (policy,) = [p for p in by_type(plans["core"], "aws:iam/policy:Policy") if p["name"] == "image-cache-pull"]
    (statement,) = json.loads(policy["inputs"]["policy"])["Statement"]
    assert set(statement["Action"]) == {"ecr:BatchImportUpstreamImage", "ecr:CreateRepository"}
    assert all(r.startswith("arn:aws:ecr:us-east-1:123456789012:repository/") for r in statement["Resource"])
    attachments = [
        a
        for a in by_type(plans["core"], "aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a["name"].startswith("image-cache-pull")
    ]
    assert len(attachments) == 2, "system nodes and Karpenter nodes"


def test_karpenter_pulls_through_the_cache_without_nat(plans):
    def repository(stack):
        (release,) = [
            r for r in by_type(plans[stack], "kubernetes:helm.sh/v3:Release") if r["name"] == "cluster-karpenter"
        ]
        return release["inputs"]["values"]["controller"]["image"]["repository"]

    assert repository("core") == "123456789012.dkr.ecr.us-east-1.amazonaws.com/ecr-public/karpenter/controller"
    assert repository("pilot") == "public.ecr.aws/karpenter/controller"


def test_unsupported_upstreams_are_left_alone():
    assert mirrored("nvcr.io", account="1", region="us-east-1") == "nvcr.io"
    assert (
        mirrored("quay.io", account="123456789012", region="eu-west-1")
        == "123456789012.dkr.ecr.eu-west-1.amazonaws.com/quay"
    )


def test_cache_without_docker_hub_credentials_is_refused(make_settings):
    with pytest.raises(InputError) as exc:
        make_settings("minimal", network={"nat": "none"})
    assert exc.value.problems[0].path == "modelyard:cluster.image_cache.docker_hub_secret_arn"


def test_secret_arn_must_be_a_pull_through_cache_secret(make_settings):
    with pytest.raises(InputError) as exc:
        make_settings(
            "minimal",
            cluster={
                "image_cache": {
                    "docker_hub_secret_arn": "arn:aws:secretsmanager:us-east-1:111122223333:secret:dockerhub"
                }
            },
        )
    assert "ecr-pullthroughcache/" in exc.value.problems[0].message
