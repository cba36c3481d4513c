"""`modelyard plan` end to end: stack file -> validated settings -> program under mocks -> plan JSON v1."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pulumi

from components.errors import InputError, Problem
from components.plan.document import build_plan
from components.plan.engine import ORGANIZATION, StackOutputs, run_program
from components.settings import Settings, build_settings
from components.settings.stackfile import StackFile
from components.settings.types import StackLayer


def load_settings(project_dir: Path, stack: str) -> tuple[StackFile, Settings]:
    """Read and validate a stack before anything runs (InputError names every problem)."""
    stack_file = StackFile.load(project_dir, stack)
    settings = build_settings(
        project=stack_file.project,
        stack=stack,
        config=stack_file.engine_config(),
        presets_dir=StackFile.stacks_dir(project_dir) / "presets",
        secret_keys=stack_file.secret_keys,
    )
    return stack_file, settings


def deployment(project_dir: Path, stack: str) -> list[tuple[StackFile, Settings]]:
    """The stacks one plan covers, AWS layer first: the stack alone, or both stacks of a split deployment
    (whichever of the two was named). Every stack is validated before anything runs."""
    stack_file, settings = load_settings(project_dir, stack)
    if settings.layer is StackLayer.ALL:
        return [(stack_file, settings)]
    if settings.layer is StackLayer.KUBERNETES:
        assert settings.aws_stack is not None
        return deployment(project_dir, settings.aws_stack)
    kubernetes_stack = settings.kubernetes_stack
    assert kubernetes_stack is not None
    known = StackFile.available(project_dir)
    if kubernetes_stack not in known:
        raise InputError(
            Problem(
                path="modelyard:deploy.layers",
                message=f"stack {stack!r} is split, but its Kubernetes layer's stack file "
                f"Pulumi.{kubernetes_stack}.yaml does not exist: create it with `modelyard:layer_of: {stack}` "
                "(docs/deploy.md)",
            )
        )
    return [(stack_file, settings), load_settings(project_dir, kubernetes_stack)]


def plan_stack(project_dir: Path, stack: str, *, preview: bool = False) -> dict[str, Any]:
    """Plan one deployment: one stack, or both layers of a split one joined as `pulumi up` joins them."""
    stacks = deployment(project_dir, stack)
    recordings = []
    references: dict[str, StackOutputs] = {}
    with warnings.catch_warnings():
        # pulumi_aws 7 warns on import of its deprecated S3 *V2 classes, which the kit does not use.
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"pulumi_aws\..*")
        for stack_file, _ in stacks:
            try:
                recording = run_program(stack_file, preview=preview, references=references)
            except pulumi.RunError as exc:
                # The program stops with RunError only for input it can judge against the engine's config
                # alone (a key held in plain text where a secret belongs): the message names the key.
                raise InputError(Problem(path=f"stack {stack_file.stack!r}", message=str(exc))) from None
            if preview and len(stacks) > 1 and not references:
                # The Kubernetes layer runs after the AWS layer was applied: it reads known outputs even
                # when both are previewed (what `pulumi preview` of the Kubernetes stack sees).
                exported = run_program(stack_file, preview=False).exported
            else:
                exported = recording.exported
            references[f"{ORGANIZATION}/{stack_file.project}/{stack_file.stack}"] = exported
            recordings.append(recording)
    settings = stacks[0][1]
    plan = build_plan(settings=settings, recordings=recordings, catalog_date=_catalog_date(), project_dir=project_dir)
    if settings.traffic.trace is not None and plan.get("cost"):
        from components.simulate.profile import traffic_summary

        plan["cost"]["traffic"] = traffic_summary(settings, project_dir)
    return plan


def _catalog_date() -> str:
    """The date of the newest dated source in the catalog: how fresh the prices and specs are."""
    from components.catalog import sources

    return max(s.date for s in sources().values() if s.date[:1].isdigit())
