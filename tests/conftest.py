"""Shared fixtures: the kit's root, plans of every shipped stack (run once per session), settings builders."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from components.plan.run import plan_stack
from components.settings import Settings, build_settings
from components.settings.stackfile import StackFile

if TYPE_CHECKING:
    from components.platform import AwsLayer

ROOT = Path(__file__).resolve().parent.parent
# One entry per deployment: a Kubernetes layer's stack (`modelyard:layer_of`) is planned with its AWS layer's.
SHIPPED_STACKS = StackFile.deployments(ROOT)
# Global stacks of deployments across regions: planned with their cells (`global_plans`).
GLOBAL_STACKS = StackFile.global_stacks(ROOT)


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def plans() -> dict[str, dict[str, Any]]:
    """Plan JSON of every shipped stack, with plausible outputs (as after an apply)."""
    return {stack: plan_stack(ROOT, stack) for stack in SHIPPED_STACKS}


@pytest.fixture(scope="session")
def global_plans(plans: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Plan JSON of every shipped global stack (docs/regions.md), from the cells' plans above."""
    from components.plan.run import plan_global

    return {stack: plan_global(ROOT, stack, cell_plans=plans) for stack in GLOBAL_STACKS}


@pytest.fixture(scope="session")
def preview_plans() -> dict[str, dict[str, Any]]:
    """The same stacks in preview mode: every computed output unknown."""
    return {stack: plan_stack(ROOT, stack, preview=True) for stack in SHIPPED_STACKS}


def config_for(preset: str, **overrides: Any) -> dict[str, str]:
    """Engine-shaped config (objects as JSON text) for a preset plus overrides under modelyard:."""
    config = {"modelyard:preset": preset}
    for key, value in overrides.items():
        config[f"modelyard:{key}"] = value if isinstance(value, str) else json.dumps(value)
    return config


@pytest.fixture
def make_settings() -> Callable[..., Settings]:
    def make(preset: str = "minimal", *, stack: str = "test", extra: Mapping[str, str] | None = None, **overrides: Any):
        config = config_for(preset, **overrides)
        config.update(extra or {})
        return build_settings(project="modelyard", stack=stack, config=config)

    return make


def aws_layer(**outputs: Any) -> AwsLayer:
    """An AwsLayer of placeholder outputs (each a string naming its field; the account the tests' ECR registry
    names; Redis on 6379), for component args built from settings outside a stack's run
    (`components.platform.<component>_args(settings, aws_layer())`); `outputs` replaces some of them."""
    import dataclasses

    from components.platform import AwsLayer

    placeholders: dict[str, Any] = {field.name: f"<{field.name}>" for field in dataclasses.fields(AwsLayer)}
    placeholders.update(account_id="123456789012", gateway_redis_port=6379, gpu_security_groups={})
    return AwsLayer(**{**placeholders, **outputs})


def by_type(plan: Mapping[str, Any], type_token: str) -> list[dict[str, Any]]:
    return [r for r in plan["resources"] if r["type"] == type_token]


def plan_with(tmp_path: Path, preset: str, overrides: Mapping[str, Any], *, stack: str = "custom") -> dict[str, Any]:
    """Plan a stack that is a shipped preset plus `modelyard:` overrides, in a scratch project folder."""
    import shutil

    import yaml

    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copytree(ROOT / "stacks" / "presets", tmp_path / "stacks" / "presets")
    (tmp_path / "charts").symlink_to(ROOT / "charts")  # the plan renders the kit's charts from the project
    config = {"modelyard:preset": preset, **{f"modelyard:{k}": v for k, v in overrides.items()}}
    (tmp_path / "stacks" / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump({"config": config}))
    return plan_stack(tmp_path, stack)


@pytest.fixture(scope="module")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's server on 127.0.0.1 (port 0), dummy credentials, every boto3 client pointed at it; one per module."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    nothing = str(tmp_path_factory.mktemp("aws") / "none")
    with pytest.MonkeyPatch.context() as patch:
        for key, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_CONFIG_FILE": nothing,
            "AWS_SHARED_CREDENTIALS_FILE": nothing,
            "AWS_EC2_METADATA_DISABLED": "true",
            "NO_PROXY": "127.0.0.1,localhost",
            "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",  # the server runs in this process: skip ~1 s of AMI data
        }.items():
            patch.setenv(key, value)
        patch.delenv("AWS_PROFILE", raising=False)
        yield endpoint
    server.stop()
