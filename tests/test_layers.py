"""The layering of components/ (docs/architecture.md): import-linter's contracts, and the contract module's reach."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.conftest import ROOT

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def contracts() -> dict[str, dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {c["id"]: c for c in config["contracts"]}


def test_the_layer_rules_are_the_documented_ones():
    rules = contracts()
    assert set(rules) == {
        "layers-independent",
        "settings-know-no-layer",
        "components-know-no-engine",
        "contract-is-a-leaf",
    }
    assert rules["layers-independent"]["type"] == "independence"
    assert set(rules["layers-independent"]["modules"]) == {"components.aws", "components.k8s"}
    assert {"components.aws", "components.k8s"} <= set(rules["settings-know-no-layer"]["forbidden_modules"])
    assert {"components.plan", "components.platform", "components.cost"} <= set(
        rules["components-know-no-engine"]["forbidden_modules"]
    )
    # Every package of the kit but the contract itself is out of the contract's reach.
    packages = {
        f"components.{p.stem}" for p in (ROOT / "components").iterdir() if p.stem not in ("__init__", "contract")
    }
    packages -= {"components.__pycache__", "components.bench"}
    assert packages <= set(rules["contract-is-a-leaf"]["forbidden_modules"]) | {"components.bench"}
    docs = (ROOT / "docs" / "architecture.md").read_text()
    for rule in rules.values():
        assert rule["id"] in docs, f"docs/architecture.md does not explain layer rule {rule['id']}"


def run_lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=root, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_kit_keeps_its_layers():
    result = run_lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_aws_component_importing_the_kubernetes_layer_is_caught(tmp_path: Path):
    shutil.copytree(ROOT / "components", tmp_path / "components", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    network = tmp_path / "components" / "aws" / "network.py"
    network.write_text(network.read_text() + "\nfrom components.k8s.isolation import PRIVATE_RANGES  # noqa\n")
    result = run_lint(tmp_path)
    assert result.returncode != 0
    assert "components.aws.network -> components.k8s.isolation" in result.stdout


def stdlib_only(path: Path, allowed: set[str]) -> list[str]:
    """Imports of `path` at module level that are neither the standard library nor in `allowed`."""
    tree = ast.parse(path.read_text())
    found = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return [m for m in found if m.split(".")[0] not in sys.stdlib_module_names and m not in allowed]


def test_the_contract_imports_only_the_standard_library():
    assert stdlib_only(ROOT / "components" / "contract.py", set()) == []


def test_the_chart_table_runs_with_a_bare_python():
    # deploy/runner.Dockerfile runs `python -m components.k8s.charts` before any package is installed.
    assert stdlib_only(ROOT / "components" / "k8s" / "charts.py", {"components.contract"}) == []
