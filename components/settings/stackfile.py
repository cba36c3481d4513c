"""Read Pulumi.yaml and stacks/Pulumi.<stack>.yaml the way the Pulumi CLI hands config to a program."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.errors import InputError, Problem
from components.settings.schema import close_matches
from components.settings.types import STACK_NAME, STACK_NAME_DOC
from components.yamlio import read_yaml_mapping

# What the program sees in place of a `secure:` value: the ciphertext cannot be decrypted offline.
SECRET_PLACEHOLDER = "offline-secret-placeholder"


def _has_secure(value: Any) -> bool:
    if isinstance(value, Mapping):
        return set(value) == {"secure"} or any(_has_secure(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_secure(v) for v in value)
    return False


def replace_secure(value: Any, replacement: Any) -> Any:
    """`value` with every `secure:` ciphertext replaced by `replacement` (it cannot be decrypted offline)."""
    if isinstance(value, Mapping):
        if set(value) == {"secure"}:
            return replacement
        return {k: replace_secure(v, replacement) for k, v in value.items()}
    if isinstance(value, list):
        return [replace_secure(v, replacement) for v in value]
    return value


def _not_json(value: Any, path: str) -> list[Problem]:
    """What YAML read below `value` that JSON, in which the engine hands config over, cannot hold: a key that is not
    text (`1:`, `true:`, `null:`), a value of another kind (`!!binary`, `!!set`)."""
    if isinstance(value, Mapping):
        out = []
        for key, item in value.items():
            if isinstance(key, str):
                out += _not_json(item, f"{path}.{key}")
            elif isinstance(key, (bool, int, float)) or key is None:
                written = json.dumps(key)  # as YAML writes it: null, true, 1.5
                read_as = "null" if key is None else f"{type(key).__name__} {written}"
                out.append(Problem(path=f"{path}.{written}", message=f"YAML reads this key as {read_as}: quote it"))
            else:
                out.append(Problem(path=path, message=f"a key YAML reads as {type(key).__name__}: write it as text"))
        return out
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in _not_json(item, f"{path}[{i}]")]
    if value is None or isinstance(value, (str, bool, int, float)):
        return []
    return [
        Problem(path=path, message=f"YAML reads this as {type(value).__name__}: write text, a number, a list or a map")
    ]


def _engine_text(value: Any) -> str:
    """How the Pulumi CLI passes a config value: strings as they are, everything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)


@dataclass(frozen=True, kw_only=True)
class StackFile:
    project: str
    stack: str
    path: Path
    config: Mapping[str, Any]
    """Full key -> value, project-level defaults from Pulumi.yaml overlaid by the stack file."""
    secret_keys: frozenset[str]

    @staticmethod
    def stacks_dir(project_dir: Path) -> Path:
        project = read_yaml_mapping(project_dir / "Pulumi.yaml", "Pulumi.yaml")
        return project_dir / str(project.get("stackConfigDir", "."))

    @classmethod
    def available(cls, project_dir: Path) -> list[str]:
        return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in cls.stacks_dir(project_dir).glob("Pulumi.*.yaml"))

    @classmethod
    def load(cls, project_dir: Path, stack: str) -> StackFile:
        project = read_yaml_mapping(project_dir / "Pulumi.yaml", "Pulumi.yaml")
        name = project.get("name")
        if not isinstance(name, str):
            raise InputError(Problem(path=str(project_dir / "Pulumi.yaml"), message="needs a project name"))
        if not re.fullmatch(STACK_NAME, stack):
            raise InputError(Problem(path="--stack", message=f"{stack!r} is not {STACK_NAME_DOC}"))
        path = cls.stacks_dir(project_dir) / f"Pulumi.{stack}.yaml"
        if not path.is_file():
            known = cls.available(project_dir)
            raise InputError(
                Problem(
                    path="--stack",
                    message=f"no stack {stack!r} ({path} does not exist); shipped stacks: {', '.join(known)}"
                    + close_matches(stack, known),
                )
            )
        data = read_yaml_mapping(path, "stack file")
        config: dict[str, Any] = {}
        for key, entry in (project.get("config") or {}).items():
            default = entry.get("value", entry.get("default")) if isinstance(entry, Mapping) else entry
            if default is not None:
                config[key if ":" in key else f"{name}:{key}"] = default
        stack_config = data.get("config") or {}
        if not isinstance(stack_config, Mapping):
            raise InputError(Problem(path=f"{path}: config", message="must be a mapping of config keys"))
        secret_keys = set()
        problems = []
        given_as: dict[str, str] = {}
        for key, value in stack_config.items():
            if not isinstance(key, str):
                problems.append(Problem(path=f"{path}: config", message=f"key {key!r} is not a string"))
                continue
            full = key if ":" in key else f"{name}:{key}"
            if full in given_as:
                problems.append(
                    Problem(path=f"{path}: {key}", message=f"sets {full} again (also given as {given_as[full]!r})")
                )
                continue
            given_as[full] = key
            problems += [Problem(path=f"{path}: {p.path}", message=p.message) for p in _not_json(value, key)]
            if _has_secure(value):
                secret_keys.add(full)
            config[full] = replace_secure(value, SECRET_PLACEHOLDER)
        if problems:
            raise InputError(problems, heading=f"{len(problems)} problem(s) in {path.name}")
        return cls(project=name, stack=stack, path=path, config=config, secret_keys=frozenset(secret_keys))

    @classmethod
    def deployments(cls, project_dir: Path) -> list[str]:
        """Stacks that name a deployment: all but Kubernetes layers (`modelyard:layer_of`), which are planned
        with their AWS layer's stack, and global stacks (`modelyard:global`), which hold no cluster (global_stacks)."""
        return [
            s
            for s in cls.available(project_dir)
            if not {"modelyard:layer_of", "modelyard:global"} & set(cls.load(project_dir, s).config)
        ]

    @classmethod
    def global_stacks(cls, project_dir: Path) -> list[str]:
        """Global stacks of deployments across regions (docs/regions.md): planned with their cells."""
        return [s for s in cls.available(project_dir) if "modelyard:global" in cls.load(project_dir, s).config]

    def engine_config(self) -> dict[str, str]:
        return {key: _engine_text(value) for key, value in self.config.items()}
