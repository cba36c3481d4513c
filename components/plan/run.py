"""`modelyard plan` end to end: stack file -> validated settings -> program under mocks -> plan JSON v1."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pulumi

from components.errors import InputError, Problem
from components.plan.document import build_plan
from components.plan.engine import run_program
from components.plan.stackfile import StackFile
from components.settings import Settings, build_settings


def load_settings(project_dir: Path, stack: str) -> tuple[StackFile, Settings]:
    """Read and validate a stack before anything runs (InputError names every problem)."""
    stack_file = StackFile.load(project_dir, stack)
    settings = build_settings(
        project=stack_file.project,
        stack=stack,
        config=stack_file.engine_config(),
        presets_dir=StackFile.stacks_dir(project_dir) / "presets",
    )
    return stack_file, settings


def plan_stack(project_dir: Path, stack: str, *, preview: bool = False) -> dict[str, Any]:
    stack_file, settings = load_settings(project_dir, stack)
    with warnings.catch_warnings():
        # pulumi_aws 7 warns on import of its deprecated S3 *V2 classes, which the kit does not use.
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"pulumi_aws\..*")
        try:
            recording = run_program(stack_file, preview=preview)
        except pulumi.RunError as exc:
            # The program stops with RunError only for input it can judge against the engine's config alone
            # (a key held in plain text where a secret belongs): the message names the key.
            raise InputError(Problem(path=f"stack {stack!r}", message=str(exc))) from None
    return build_plan(settings=settings, recording=recording, catalog_date=_catalog_date(), project_dir=project_dir)


def _catalog_date() -> str:
    """The date of the newest dated source in the catalog: how fresh the prices and specs are."""
    from components.catalog import sources

    return max(s.date for s in sources().values() if s.date[:1].isdigit())
