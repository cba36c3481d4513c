"""External tools some tests need (promtool, checkov). Locally a missing tool skips those tests;
in CI (.ci/run sets MODELYARD_REQUIRE_TOOLS=1) it fails them, so CI never passes by skipping."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def require_tool(name: str) -> str:
    """The path of a tool: `promtool` from PATH, `checkov` from the repo's .venv-checkov."""
    if name == "checkov":
        candidate = ROOT / ".venv-checkov" / "bin" / "checkov"
        path = str(candidate) if candidate.is_file() else None
    else:
        path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (.ci/run installs it)"
        if os.environ.get("MODELYARD_REQUIRE_TOOLS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


@contextlib.contextmanager
def background_checkov(target: Path, objects: list[dict[str, Any]], skips_file: Path) -> Iterator[dict[str, Any]]:
    """Start checkov over `objects` (written to `target`) in the background: it takes seconds to start, so
    a module's other tests run meanwhile. Yields {"process": Popen} (empty without checkov; the test then
    calls require_tool). Always reaps the process and closes its pipes, read or not."""
    run: dict[str, Any] = {}
    checkov = ROOT / ".venv-checkov" / "bin" / "checkov"
    if checkov.is_file():
        target.write_text(yaml.safe_dump_all(objects, sort_keys=False))
        skips = yaml.safe_load(skips_file.read_text())["skips"] or []
        command = [str(checkov), "--framework", "kubernetes", "--skip-download", "--quiet", "--compact", "-o", "json"]
        if skips:
            command += ["--skip-check", ",".join(s["id"] for s in skips)]
        run["process"] = subprocess.Popen(
            [*command, "-d", str(target.parent)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"},
            start_new_session=True,
        )
    try:
        yield run
    finally:
        if "process" in run:
            if run["process"].poll() is None:
                os.killpg(run["process"].pid, signal.SIGKILL)
            run["process"].communicate()


def validate_strict(objects: list[dict[str, Any]], version: str, crd_groups: frozenset[str]) -> set[str]:
    """Every object against Kubernetes `version`'s schemas, strict; a missing schema is allowed only for the
    CRD groups named. Returns the CRD groups met, so a test can check its allow-list is not stale."""
    import kubernetes_validate

    seen: set[str] = set()
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            group = obj["apiVersion"].split("/")[0]
            assert group in crd_groups, f"no schema for {obj['apiVersion']} {obj['kind']}"
            seen.add(group)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{obj['kind']} {obj['metadata']['name']}: {exc.message}")
    return seen
