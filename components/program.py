"""The Pulumi program: the one entry point both engines run (`pulumi up` and `modelyard plan`)."""

from __future__ import annotations

import pulumi

from components.errors import InputError
from components.platform import build_platform
from components.settings import Settings, build_settings


def stack_config() -> dict[str, str]:
    """Every config value the engine handed this program, by full key (`namespace:key`)."""
    from pulumi.runtime import config as runtime_config

    values = dict(runtime_config.get_config_env())
    values.update(runtime_config.CONFIG.get())
    return values


def settings_from_engine() -> Settings:
    """The stack's settings from the config the engine holds. Raises InputError with every problem."""
    return build_settings(project=pulumi.get_project(), stack=pulumi.get_stack(), config=stack_config())


def run() -> None:
    """Validate all settings, then build. Bad settings stop the run before any resource is registered."""
    try:
        settings = settings_from_engine()
    except InputError as exc:
        # One error carrying every problem; RunError prints without a Python traceback.
        raise pulumi.RunError(exc.render()) from None
    build_platform(settings)
