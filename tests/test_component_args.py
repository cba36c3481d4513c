"""Serving, Monitoring and Gateway take narrow args of plain values: only the platform knows the whole Settings.

The components' modules must neither import nor annotate `Settings` (an AST check, string annotations
included), and no field of their Args, nor of a dataclass an Args field holds, may be typed with it.
components/platform.py builds each component's args from the settings (`serving_args`, `monitoring_args`,
`gateway_args`).
"""

from __future__ import annotations

import ast
import dataclasses
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pulumi.output
import pytest

from components.k8s.gateway.component import GatewayArgs
from components.k8s.monitoring.component import MonitoringArgs
from components.k8s.serving import ServingArgs
from components.settings import Settings
from tests.conftest import ROOT

K8S = ROOT / "components" / "k8s"
NARROW_MODULES = sorted([*K8S.glob("serving*.py"), *(K8S / "gateway").glob("*.py"), *(K8S / "monitoring").glob("*.py")])
NARROW_ARGS = (ServingArgs, MonitoringArgs, GatewayArgs)


def _annotations(tree: ast.AST) -> Iterator[ast.expr]:
    for node in ast.walk(tree):
        if isinstance(node, ast.arg | ast.AnnAssign) and node.annotation is not None:
            yield node.annotation
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.returns is not None:
            yield node.returns


def _names(tree: ast.AST) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            yield node.lineno, node.id
        elif isinstance(node, ast.Attribute):
            yield node.lineno, node.attr


def settings_references(source: str) -> list[str]:
    """Where `source` imports or names `Settings` ("<line>: <what>"), in code or in a string annotation."""
    tree = ast.parse(source)
    found = [
        f"{node.lineno}: imports {alias.name}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
        if alias.name.rsplit(".", 1)[-1] == "Settings"
    ]
    found += [f"{line}: names {name}" for line, name in _names(tree) if name == "Settings"]
    for annotation in _annotations(tree):
        for node in ast.walk(annotation):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                quoted = ast.parse(node.value, mode="eval")
                found += [f"{node.lineno}: annotates {name}" for _, name in _names(quoted) if name == "Settings"]
    return sorted(set(found), key=lambda where: (int(where.split(":")[0]), where))


def holds_settings(hint: Any, seen: set[type] | None = None) -> bool:
    """Whether a type, its type arguments or the fields of a dataclass it names are `Settings`."""
    seen = set() if seen is None else seen
    if hint is Settings:
        return True
    if isinstance(hint, list):  # Callable's parameter list
        return any(holds_settings(h, seen) for h in hint)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if hint in seen:
            return False
        seen.add(hint)
        # pulumi.Input names "Output[T]" as a string: resolved in the SDK's own module.
        hints = typing.get_type_hints(hint, localns=vars(pulumi.output))
        return any(holds_settings(h, seen) for h in hints.values())
    return any(holds_settings(h, seen) for h in typing.get_args(hint))


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Wide:
    settings: Settings


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Nested:
    by_name: Mapping[str, _Wide]


def test_the_modules_are_the_three_components() -> None:
    names = {path.relative_to(K8S).as_posix() for path in NARROW_MODULES}
    assert {"serving.py", "serving_values.py", "gateway/component.py", "monitoring/values.py"} <= names


@pytest.mark.parametrize("path", NARROW_MODULES, ids=lambda p: p.relative_to(K8S).as_posix())
def test_the_components_modules_never_import_or_annotate_settings(path: Path) -> None:
    assert settings_references(path.read_text()) == []


@pytest.mark.parametrize("args", NARROW_ARGS, ids=lambda a: a.__name__)
def test_no_args_field_holds_settings(args: type) -> None:
    hints = typing.get_type_hints(args, localns=vars(pulumi.output))
    assert set(hints) == {f.name for f in dataclasses.fields(args)}
    assert [name for name, hint in hints.items() if holds_settings(hint)] == []
    params = dataclasses.fields(args)[0]
    assert args.__dataclass_params__.frozen and params.kw_only  # type: ignore[attr-defined]


def test_the_checks_catch_the_whole_settings() -> None:
    source = (
        "from __future__ import annotations\n"
        "from components.settings import Settings as S\n"
        "import components.settings\n"
        "def f(a: components.settings.Settings, b: 'Mapping[str, Settings]') -> None: ...\n"
    )
    assert settings_references(source) == ["2: imports Settings", "4: annotates Settings", "4: names Settings"]
    assert settings_references("from components.settings.types import ModelSettings, Preset\n") == []
    assert holds_settings(_Wide) and holds_settings(_Nested)
    assert not holds_settings(Mapping[str, int])
