"""The Pulumi program: the one entry point both engines run (`pulumi up` and `modelyard plan`)."""

from __future__ import annotations

from contextvars import ContextVar
from pathlib import Path

import pulumi

from components.errors import InputError
from components.platform import build_global, build_platform
from components.settings import Settings, build_settings
from components.settings.cells import build_deployment, is_global


def stack_config() -> dict[str, str]:
    """Every config value the engine handed this program, by full key (`namespace:key`)."""
    from pulumi.runtime import config as runtime_config

    values = dict(runtime_config.get_config_env())
    values.update(runtime_config.CONFIG.get())
    return values


# Where the stack files are: the project's `stacks/` (Pulumi runs the program from the project); the offline
# engine sets it to the project it plans, which a Kubernetes layer's settings are read from.
STACKS_DIR: ContextVar[Path | None] = ContextVar("modelyard_stacks_dir", default=None)


def settings_from_engine() -> Settings:
    """The stack's settings from the config the engine holds. Raises InputError with every problem."""
    from pulumi.runtime.config import is_config_secret

    config = stack_config()
    stacks_dir = STACKS_DIR.get()
    return build_settings(
        project=pulumi.get_project(),
        stack=pulumi.get_stack(),
        config=config,
        secret_keys=[key for key in config if is_config_secret(key)],
        **({"presets_dir": stacks_dir / "presets"} if stacks_dir is not None else {}),
    )


def run(*, deploying: bool = False) -> None:
    """Validate all settings, then build. Bad settings stop the run before any resource is registered.

    `deploying`: the Pulumi CLI runs the program (__main__.py), so placeholders the offline plan accepts
    (components/settings/placeholders.py) are refused too."""
    config = stack_config()
    if is_global(config):
        try:
            stacks_dir = STACKS_DIR.get()
            deployment = build_deployment(
                project=pulumi.get_project(),
                stack=pulumi.get_stack(),
                config=config,
                project_dir=stacks_dir.parent if stacks_dir is not None else Path.cwd(),
            )
        except InputError as exc:
            raise pulumi.RunError(exc.render()) from None
        build_global(deployment)
        return
    try:
        settings = settings_from_engine()
        if deploying:
            from components.settings.placeholders import placeholders

            unfilled = placeholders(settings)
            if unfilled:
                raise InputError(unfilled)
    except InputError as exc:
        # One error carrying every problem; RunError prints without a Python traceback.
        raise pulumi.RunError(exc.render()) from None
    build_platform(settings)
