"""Build Settings from a preset and a stack's `modelyard:*` config, validating everything first.

Both engines come through here: `pulumi up` hands the program its config (scalars as strings,
objects JSON-encoded); the offline plan reads the stack file and hands over the same shape.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from components.errors import InputError, Problem
from components.settings import rules
from components.settings.model import Preset, Settings
from components.settings.schema import Converter, close_matches
from components.yamlio import read_yaml_mapping

NAMESPACE = "modelyard"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
PRESETS_DIR = PROJECT_ROOT / "stacks" / "presets"


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge: maps merge key by key (pools, models, tenants included); lists and scalars replace;
    a null in the override removes the key (how a stack drops a preset's model or pool)."""
    out = dict(base)
    for key, value in override.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def load_preset(name: str, presets_dir: Path = PRESETS_DIR) -> dict[str, Any]:
    return read_yaml_mapping(presets_dir / f"{name}.yaml", "preset file")


def decode_config(config: Mapping[str, str]) -> dict[str, Any]:
    """`modelyard:*` config as the Pulumi engine hands it (objects as JSON text) -> plain data by key."""
    values: dict[str, Any] = {}
    for full_key, raw in config.items():
        namespace, _, key = full_key.partition(":")
        if namespace != NAMESPACE:
            continue
        if isinstance(raw, str) and raw[:1] in "{[":
            try:
                values[key] = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise InputError(Problem(path=full_key, message=f"not valid JSON: {exc}")) from None
        else:
            values[key] = raw
    return values


def build_settings(*, project: str, stack: str, config: Mapping[str, str], presets_dir: Path = PRESETS_DIR) -> Settings:
    """Preset + stack config -> Settings. Raises InputError naming every problem; returns only valid settings."""
    values = decode_config(config)
    preset = values.pop("preset", None)
    allowed = [p.value for p in Preset]
    if preset is None:
        raise InputError(Problem(path=f"{NAMESPACE}:preset", message=f"required; choose one of {', '.join(allowed)}"))
    if preset not in allowed:
        raise InputError(
            Problem(
                path=f"{NAMESPACE}:preset",
                message=f"{preset!r} is not a preset; choose one of {', '.join(allowed)}"
                + close_matches(str(preset), allowed),
            )
        )
    merged = merge(load_preset(preset, presets_dir), values)
    merged["preset"] = preset
    problems: list[Problem] = []
    aws_region = config.get("aws:region")
    if aws_region and merged.get("region") and aws_region != merged["region"]:
        problems.append(
            Problem(
                path="aws:region",
                message=f"{aws_region!r} differs from modelyard:region {merged['region']!r}; the kit uses its own "
                "AWS provider in modelyard:region: remove aws:region or make them equal",
            )
        )
    converter = Converter()
    settings = converter.convert_object(Settings, merged, "", project=project, stack=stack)
    problems += [Problem(path=f"{NAMESPACE}:{p.path}", message=p.message) for p in converter.problems]
    if isinstance(settings, Settings):
        # Built despite unknown keys (those leave the object whole): cross-field rules still apply.
        problems += rules.check(settings)
    if problems:
        raise InputError(problems, heading=f"stack {stack!r}: {len(problems)} problem(s) in the settings")
    return settings
