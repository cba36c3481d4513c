"""The Cluster: its settings' refusals, and what every shipped stack's plan must prove about it."""

from __future__ import annotations

import pytest

from components.errors import InputError
from components.settings.model import EndpointAccess


def problems(exc: pytest.ExceptionInfo[InputError]) -> dict[str, str]:
    return {p.path: p.message for p in exc.value.problems}


# --- settings -------------------------------------------------------------------------------------


def test_presets_limit_or_close_the_public_endpoint(make_settings):
    for preset in ("minimal", "moderate"):
        cluster = make_settings(preset).cluster
        assert cluster.endpoint is EndpointAccess.PUBLIC_AND_PRIVATE
        assert cluster.public_cidrs and "0.0.0.0/0" not in cluster.public_cidrs
        assert not cluster.allow_public_world
    enterprise = make_settings("enterprise").cluster
    assert enterprise.endpoint is EndpointAccess.PRIVATE and not enterprise.public_cidrs


def test_public_endpoint_without_cidrs_is_refused(make_settings):
    with pytest.raises(InputError) as exc:
        make_settings("minimal", cluster={"public_cidrs": []})
    assert "needs the CIDRs" in problems(exc)["modelyard:cluster.public_cidrs"]


def test_whole_internet_is_refused_without_the_override(make_settings):
    with pytest.raises(InputError) as exc:
        make_settings("minimal", cluster={"public_cidrs": ["0.0.0.0/0"]})
    assert "allow_public_world" in problems(exc)["modelyard:cluster.public_cidrs[0]"]


def test_whole_internet_is_allowed_only_when_deliberately_overridden(make_settings):
    settings = make_settings("minimal", cluster={"public_cidrs": ["0.0.0.0/0"], "allow_public_world": True})
    assert settings.cluster.public_cidrs == ("0.0.0.0/0",)


def test_private_endpoint_takes_no_cidrs_nor_override(make_settings):
    with pytest.raises(InputError) as exc:
        make_settings("enterprise", cluster={"public_cidrs": ["198.51.100.0/24"], "allow_public_world": True})
    found = problems(exc)
    assert "modelyard:cluster.public_cidrs" in found and "modelyard:cluster.allow_public_world" in found


@pytest.mark.parametrize(
    ("cidr", "expected"),
    [("10.0.0.0/8", "private range"), ("198.51.100.1/24", "not a network address"), ("banana", "does not match")],
)
def test_bad_public_cidrs_are_named(make_settings, cidr, expected):
    with pytest.raises(InputError) as exc:
        make_settings("minimal", cluster={"public_cidrs": [cidr]})
    assert expected in problems(exc)["modelyard:cluster.public_cidrs[0]"]


def test_unpinned_version_is_refused(make_settings):
    with pytest.raises(InputError) as exc:
        make_settings("minimal", cluster={"version": "1.29"})
    assert "choose one of 1.33" in problems(exc)["modelyard:cluster.version"]


def test_admins_must_be_iam_arns(make_settings):
    ok = make_settings("minimal", cluster={"admins": ["arn:aws:iam::123456789012:role/platform-admin"]})
    assert ok.cluster.admins == ("arn:aws:iam::123456789012:role/platform-admin",)
    with pytest.raises(InputError) as exc:
        make_settings("minimal", cluster={"admins": ["platform-admin"]})
    assert "IAM role or user ARN" in problems(exc)["modelyard:cluster.admins[0]"]


@pytest.mark.parametrize(
    ("system_nodes", "path", "expected"),
    [
        ({"instance_type": "g6e.xlarge"}, "instance_type", "GPU type"),
        ({"instance_type": "m7i.larg"}, "instance_type", "did you mean 'm7i.large'"),
        ({"min_nodes": 3, "max_nodes": 2, "desired_nodes": 2}, "max_nodes", "below min_nodes"),
        ({"min_nodes": 2, "max_nodes": 3, "desired_nodes": 5}, "desired_nodes", "outside 2..3"),
    ],
)
def test_bad_system_nodes_are_refused(make_settings, system_nodes, path, expected):
    with pytest.raises(InputError) as exc:
        make_settings("minimal", cluster={"system_nodes": system_nodes})
    assert expected in problems(exc)[f"modelyard:cluster.system_nodes.{path}"]
