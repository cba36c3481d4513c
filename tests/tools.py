"""External tools some tests need (promtool, checkov). Locally a missing tool skips those tests;
in CI (.ci/run sets MODELYARD_REQUIRE_TOOLS=1) it fails them, so CI never passes by skipping."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

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
