"""Build Settings from a preset and a stack's `modelyard:*` config, validating everything first.

Both engines come through here: `pulumi up` hands the program its config (scalars as strings,
objects JSON-encoded); the offline plan reads the stack file and hands over the same shape.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import Any

from components.errors import InputError, Problem, keep_secret, redact
from components.settings import cross_checks
from components.settings.schema import Converter, close_matches, secret_fields
from components.settings.stackfile import SECRET_PLACEHOLDER, replace_secure
from components.settings.types import STACK_NAME, STACK_NAME_DOC, Layers, Settings, StackLayer
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


def preset_names(presets_dir: Path = PRESETS_DIR) -> list[str]:
    """The presets a stack may name: every YAML file of the presets folder, the kit's and a team's own."""
    return sorted(p.stem for p in presets_dir.glob("*.yaml"))


def load_preset(name: str, presets_dir: Path = PRESETS_DIR) -> dict[str, Any]:
    return read_yaml_mapping(presets_dir / f"{name}.yaml", "preset file")


def decode_config(config: Mapping[str, str]) -> dict[str, Any]:
    """`modelyard:*` config as the Pulumi engine hands it (objects as JSON text) -> plain data by key."""
    values: dict[str, Any] = {}
    problems = []
    for full_key, raw in config.items():
        namespace, _, key = full_key.partition(":")
        if namespace != NAMESPACE:
            if close_matches(namespace, [NAMESPACE]):
                # Read by nobody: a setting under a misspelled namespace would silently keep the preset's value.
                problems.append(
                    Problem(
                        path=full_key,
                        message=f"namespace {namespace!r} is not read by the kit: did you mean {NAMESPACE}:{key}?",
                    )
                )
            continue
        if isinstance(raw, str) and raw[:1] in ("{", "["):
            try:
                values[key] = json.loads(raw)
            except ValueError as exc:  # JSONDecodeError, or an integer of more digits than Python converts
                raise InputError(Problem(path=full_key, message=f"not valid JSON: {exc}")) from None
        else:
            values[key] = raw
    if problems:
        raise InputError(problems)
    return values


LAYER_OF = "layer_of"


class _ForeignSecret:
    """A `secure:` value of the AWS layer's stack file, which the Kubernetes layer's stack cannot decrypt."""

    def __repr__(self) -> str:
        return "<secret of another stack>"


def _paths_of_foreign_secrets(value: Any, path: str) -> list[str]:
    if isinstance(value, _ForeignSecret):
        return [path]
    if isinstance(value, Mapping):
        return [p for k, v in value.items() for p in _paths_of_foreign_secrets(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _paths_of_foreign_secrets(v, f"{path}[{i}]")]
    return []


def _receiver_routes(values: Mapping[str, Any]) -> set[str]:
    """The alert routes (monitoring.receivers keys) a set of `modelyard:` values gives a receiver."""
    monitoring = values.get("monitoring")
    receivers = monitoring.get("receivers") if isinstance(monitoring, Mapping) else None
    return {str(route) for route in receivers} if isinstance(receivers, Mapping) else set()


def _aws_layer_values(
    *, stack: str, aws_stack: Any, values: Mapping[str, Any], secret_keys: Collection[str], stacks_dir: Path
) -> tuple[dict[str, Any], set[str]]:
    """The Kubernetes layer's values: the AWS layer's stack file, overlaid by this stack's own secrets.

    Both layers of a split deployment are built from one set of settings, kept in the AWS layer's stack
    file. Secrets are the exception: a stack cannot decrypt another stack's ciphertext, so the Kubernetes
    layer's stack file holds the secrets it uses (and nothing else but `layer_of`). Also returns the alert
    routes the AWS layer's stack file gives a receiver (both layers send alerts to them).
    """
    key = f"{NAMESPACE}:{LAYER_OF}"
    if not isinstance(aws_stack, str) or not aws_stack:
        raise InputError(Problem(path=key, message="must name the stack that holds the AWS layer"))
    if not re.fullmatch(STACK_NAME, aws_stack):
        # Checked before it becomes part of a file name: a path, or a name longer than the file system takes.
        raise InputError(Problem(path=key, message=f"{aws_stack!r} is not {STACK_NAME_DOC}"))
    if aws_stack == stack:
        raise InputError(Problem(path=key, message="names this stack itself; name the AWS layer's stack"))
    path = stacks_dir / f"Pulumi.{aws_stack}.yaml"
    if not path.is_file():
        known = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in stacks_dir.glob("Pulumi.*.yaml"))
        raise InputError(
            Problem(
                path=key,
                message=f"no stack {aws_stack!r} ({path} does not exist)" + close_matches(aws_stack, known),
            )
        )
    problems = [
        Problem(
            path=f"{NAMESPACE}:{name}",
            message=f"the Kubernetes layer's stack file holds only {key} and secrets; set this in {path.name}, "
            "which both layers read",
        )
        for name in sorted(values)
        if name != LAYER_OF and f"{NAMESPACE}:{name}" not in secret_keys
    ]
    if problems:
        raise InputError(problems, heading=f"stack {stack!r}: {len(problems)} problem(s) in the settings")
    raw = read_yaml_mapping(path, "stack file").get("config") or {}
    base: dict[str, Any] = {}
    for full_key, value in raw.items():
        namespace, _, name = str(full_key).partition(":")
        if namespace == NAMESPACE:
            base[name] = replace_secure(value, _ForeignSecret())
    if LAYER_OF in base:
        raise InputError(
            Problem(path=key, message=f"{aws_stack!r} is itself a Kubernetes layer ({path.name} sets {key})")
        )
    return merge(base, {k: v for k, v in values.items() if k != LAYER_OF}), _receiver_routes(base)


def build_settings(
    *,
    project: str,
    stack: str,
    config: Mapping[str, str],
    presets_dir: Path = PRESETS_DIR,
    secret_keys: Collection[str] | None = None,
) -> Settings:
    """Preset + stack config -> Settings. Raises InputError naming every problem; returns only valid settings.

    `secret_keys`: the config keys the engine holds as secrets (`secure:` in the stack file). Both engines pass
    them, and then a secret setting given in plain text is refused; None (tests, the docs) does not check that.
    A stack whose config sets `modelyard:layer_of: <stack>` is the Kubernetes layer of that stack: its
    settings are that stack's (docs/deploy.md), and `secret_keys` tells which of its own values are the secrets
    it may add.
    """
    values = decode_config(config)
    prefix = f"{NAMESPACE}:"
    secret_roots = {key[len(prefix) :] for key in secret_keys or () if key.startswith(prefix)}
    # A top-level value held whole as a secret: hidden from every message from here on.
    whole = [values.get(root) for root in secret_roots]
    keep_secret(text for text in whole if isinstance(text, str) and text != SECRET_PLACEHOLDER)
    aws_stack: str | None = None
    # Kubernetes layer only: routes whose receiver this stack's file sets and the AWS layer's does not.
    routes_of_this_layer: set[str] = set()
    if LAYER_OF in values:
        aws_stack = values[LAYER_OF]
        routes_of_this_layer = _receiver_routes(values)
        values, aws_routes = _aws_layer_values(
            stack=stack,
            aws_stack=aws_stack,
            values=values,
            secret_keys=secret_keys or (),
            stacks_dir=presets_dir.parent,
        )
        routes_of_this_layer -= aws_routes
    preset = values.pop("preset", None)
    allowed = preset_names(presets_dir)
    choose = f"choose one of {', '.join(allowed)}"
    if preset is None:
        raise InputError(
            Problem(path=f"{NAMESPACE}:preset", message=f"required: a preset file of {presets_dir}; {choose}")
        )
    if preset not in allowed:
        raise InputError(
            Problem(
                path=f"{NAMESPACE}:preset",
                message=f"{preset!r} is not a preset (no such file in {presets_dir}); {choose}"
                + close_matches(str(preset), allowed),
            )
        )
    preset_values = load_preset(preset, presets_dir)
    routes_of_this_layer -= _receiver_routes(preset_values)
    merged = merge(preset_values, values)
    merged["preset"] = preset
    problems: list[Problem] = [
        Problem(
            path=f"{NAMESPACE}:{path}",
            message=f"a secret of stack {aws_stack!r}, which this stack cannot decrypt: set it here too with "
            f"`pulumi config set --secret --path '{NAMESPACE}:{path}' ...` (docs/deploy.md)",
        )
        for path in sorted(found.lstrip(".") for found in _paths_of_foreign_secrets(merged, ""))
    ]
    if problems:
        raise InputError(problems, heading=f"stack {stack!r}: {len(problems)} problem(s) in the settings")
    problems += _secret_problems(merged, values, secret_keys=secret_keys, preset_file=presets_dir / f"{preset}.yaml")
    aws_region = config.get("aws:region")
    if aws_region and merged.get("region") and aws_region != merged["region"]:
        problems.append(
            Problem(
                path="aws:region",
                message=f"{aws_region!r} differs from modelyard:region {merged['region']!r}; the kit uses its own "
                "AWS provider in modelyard:region: remove aws:region or make them equal",
            )
        )
    converter = Converter(secret_roots=secret_roots)
    settings = converter.convert_object(Settings, merged, "", project=project, stack=stack)
    problems += [Problem(path=f"{NAMESPACE}:{p.path}", message=p.message) for p in converter.problems]
    if isinstance(settings, Settings):
        settings = _with_layer(settings, aws_stack, problems)
        if settings.security.findings_routed:
            problems += [
                Problem(
                    path=f"{NAMESPACE}:monitoring.receivers.{route}",
                    message=f"set in this stack only: the AWS layer (stack {aws_stack!r}) sends GuardDuty findings "
                    f"to the receivers (security.findings) and cannot read it; set it in Pulumi.{aws_stack}.yaml "
                    "too, or security.findings: off (docs/security.md#findings-to-the-receivers)",
                )
                for route in sorted(routes_of_this_layer)
            ]
        # Built despite unknown keys (those leave the object whole): cross-field rules still apply.
        problems += cross_checks.check(settings)
    if problems:
        raise InputError(problems, heading=f"stack {stack!r}: {len(problems)} problem(s) in the settings")
    return settings


def _is_set(data: Any, keys: tuple[Any, ...]) -> bool:
    for key in keys:
        if not isinstance(data, Mapping) or key not in data:
            return False
        data = data[key]
    return True


class _Index(int):
    """A list item's place among the keys of a config path (printed [i], where a key prints .key)."""


def _dotted(keys: tuple[Any, ...]) -> str:
    text = NAMESPACE + ":"
    for i, key in enumerate(keys):
        text += f"[{key}]" if isinstance(key, _Index) else f".{key}" if i else str(key)
    return text


def _secret_problems(
    merged: Mapping[str, Any], values: Mapping[str, Any], *, secret_keys: Collection[str] | None, preset_file: Path
) -> list[Problem]:
    """Remember every secret setting's value as a secret (no message may print it); refuse a secret in plain text
    (where `secret_keys` are known) and a secret's text pasted into a plain setting: a name, a tag or the region
    is printed in plans, logs and the names of resources."""
    found = list(secret_fields(Settings, merged))
    holder: dict[str, str] = {}  # secret text -> the setting that holds it
    for keys, value in found:
        if isinstance(value, str) and value and value != SECRET_PLACEHOLDER:
            holder.setdefault(value, _dotted(keys))
    keep_secret(holder.keys())
    problems = []
    for keys, value in found:
        if secret_keys is None or value is None:
            continue
        command = f"`pulumi config set --secret --path '{_dotted(keys)}' <value>`"
        if not _is_set(values, keys):
            message = (
                f"a secret in plain text in the preset file {preset_file}: secrets belong in each stack's config, "
                f"encrypted: remove it from the preset and set it with {command}"
            )
        elif f"{NAMESPACE}:{keys[0]}" not in secret_keys:
            message = f"a secret in plain text: set it with {command} so that the stack file keeps only ciphertext"
        else:
            continue
        problems.append(Problem(path=_dotted(keys), message=message))
    secret_places = {keys for keys, _ in found}

    def inside(text: Any) -> str | None:
        return next((secret for secret in holder if secret in text), None) if isinstance(text, str) else None

    def pasted(node: Any, keys: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], str]]:
        """(where, the secret) for each plain setting, or name of an entry, that holds a secret's text."""
        if keys in secret_places:
            return
        if isinstance(node, Mapping):
            for key, item in node.items():
                secret = inside(key)
                if secret is not None:
                    yield (*keys, key), secret
                else:
                    yield from pasted(item, (*keys, key))
        elif isinstance(node, list):
            for i, item in enumerate(node):
                yield from pasted(item, (*keys, _Index(i)))
        elif (secret := inside(node)) is not None:
            yield keys, secret

    for keys, secret in pasted(merged, ()) if holder else ():
        problems.append(
            Problem(
                path=redact(_dotted(keys)),
                message=f"holds the text of the secret {redact(holder[secret])}: a plain setting is printed in plans, "
                "logs and the names of resources; take the secret out of it",
            )
        )
    return problems


def _with_layer(settings: Settings, aws_stack: str | None, problems: list[Problem]) -> Settings:
    """Which layer(s) this stack builds, and the join of a split deployment checked from both ends."""
    split = settings.deploy.layers is Layers.SPLIT
    if aws_stack is None:
        return dataclasses.replace(settings, layer=StackLayer.AWS if split else StackLayer.ALL)
    layered = dataclasses.replace(settings, layer=StackLayer.KUBERNETES, aws_stack=aws_stack)
    expected = settings.deploy.kubernetes_stack or f"{aws_stack}-k8s"
    if not split:
        problems.append(
            Problem(
                path=f"{NAMESPACE}:{LAYER_OF}",
                message=f"stack {aws_stack!r} holds both layers (deploy.layers: one-stack); set deploy.layers: split "
                "there to deploy its Kubernetes layer from this stack",
            )
        )
    elif expected != settings.stack:
        problems.append(
            Problem(
                path=f"{NAMESPACE}:{LAYER_OF}",
                message=f"stack {aws_stack!r} expects its Kubernetes layer in stack {expected!r} "
                f"(deploy.kubernetes_stack), not {settings.stack!r}",
            )
        )
    return layered
