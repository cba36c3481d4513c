"""`modelyard plan` end to end: stack file -> validated settings -> program under mocks -> plan JSON v1."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import rpc

from components.errors import InputError, Problem
from components.plan.document import build_plan
from components.plan.engine import ORGANIZATION, StackOutputs, run_program
from components.platform import CELL_OUTPUT_PREFIX, METRICS_QUERY_URL, METRICS_REMOTE_WRITE_URL
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
    """Plan one deployment: one stack, or both layers of a split one joined as `pulumi up` joins them; a global
    stack with its cells (plan_global)."""
    if is_global_stack(project_dir, stack):
        return plan_global(project_dir, stack, preview=preview)
    stacks = deployment(project_dir, stack)
    recordings = []
    references: dict[str, StackOutputs] = replica_cells(project_dir, stacks[0][1])
    references.update(global_workspace(stacks[0][1]))
    with warnings.catch_warnings():
        # pulumi_aws 7 warns on import of its deprecated S3 *V2 classes, which the kit does not use.
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"pulumi_aws\..*")
        for index, (stack_file, _) in enumerate(stacks):
            try:
                recording = run_program(stack_file, preview=preview, references=references)
            except pulumi.RunError as exc:
                # The program stops with RunError only for input it can judge against the engine's config
                # alone (a key held in plain text where a secret belongs): the message names the key.
                raise InputError(Problem(path=f"stack {stack_file.stack!r}", message=str(exc))) from None
            if preview and len(stacks) > 1 and index == 0:
                # The Kubernetes layer runs after the AWS layer was applied: it reads known outputs even
                # when both are previewed (what `pulumi preview` of the Kubernetes stack sees).
                exported = run_program(stack_file, preview=False, references=references).exported
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


def replica_cells(project_dir: Path, settings: Settings) -> dict[str, StackOutputs]:
    """The outputs of the cells a stack replicates its model bucket into (storage.replicas.<region>.cell), as its
    stack references read them after the cells' apply; each cell is validated and planned (its AWS layer) first."""
    found: dict[str, StackOutputs] = {}
    for region, replica in sorted(settings.storage.replicas.items()):
        if replica.cell is None:
            continue
        path = f"modelyard:storage.replicas.{region}.cell"
        if replica.cell not in StackFile.available(project_dir):
            raise InputError(Problem(path=path, message=f"no stack {replica.cell!r} (Pulumi.{replica.cell}.yaml)"))
        cell_file, cell = load_settings(project_dir, replica.cell)
        if cell.layer is StackLayer.KUBERNETES or cell.deploy.global_stack is None or cell.region != region:
            raise InputError(
                Problem(
                    path=path,
                    message=f"stack {replica.cell!r} is not a cell in {region} (a stack of that region with "
                    "deploy.global_stack, holding its AWS layer)",
                )
            )
        if any(r.cell is not None for r in cell.storage.replicas.values()):
            raise InputError(
                Problem(path=path, message=f"stack {replica.cell!r} replicates into a cell itself: keep one source")
            )
        from components.settings.cells import unreplicated_weights

        unserved = unreplicated_weights(settings, region, cell)
        if unserved:
            raise InputError(unserved)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"pulumi_aws\..*")
            exported = run_program(cell_file, preview=False).exported
        values = {k: v for k, v in exported.values.items() if k.startswith(CELL_OUTPUT_PREFIX)}
        found[f"{ORGANIZATION}/{cell_file.project}/{replica.cell}"] = StackOutputs(values=values, secret_names=[])
    return found


def global_workspace(settings: Settings) -> dict[str, StackOutputs]:
    """A cell writing to its deployment's metrics workspace reads its URLs (remote write, and query for its Grafana)
    from the global stack. The global stack is applied after the cell's AWS layer and plans every cell first: a cell's
    own plan shows the URLs as unknown (every other value of the remote write and the data source is the cell's own)."""
    global_stack = settings.deploy.global_stack
    if settings.monitoring.remote_write is None or global_stack is None:
        return {}
    return {
        f"{ORGANIZATION}/{settings.project}/{global_stack}": StackOutputs(
            values={METRICS_REMOTE_WRITE_URL: rpc.UNKNOWN, METRICS_QUERY_URL: rpc.UNKNOWN}, secret_names=[]
        )
    }


def plan_global(
    project_dir: Path,
    stack: str,
    *,
    preview: bool = False,
    cell_plans: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Plan a global stack (docs/regions.md): every cell's deployment (or the plans given, by cell stack), then the
    global program reading the cells' outputs as after their apply. Its cost is the deployment's: each cell's total
    and the entry's own resources."""
    from components.cost.estimate import deployment_cost
    from components.plan.document import build_global_plan
    from components.settings.cells import deployment_of

    found = deployment_of(project_dir, stack)
    if found is None:
        raise InputError(Problem(path="--stack", message=f"{stack!r} is not a global stack (no modelyard:global)"))
    stack_file = StackFile.load(project_dir, stack)
    cells: dict[str, Mapping[str, Any]] = {}
    references: dict[str, StackOutputs] = {}
    for region, cell_stack in sorted(found.settings.cells.items()):
        # The cells are applied before the global stack runs: it reads their known outputs, even in preview.
        plan = (cell_plans or {}).get(cell_stack) or plan_stack(project_dir, cell_stack)
        cells[region] = plan
        values = {k: v for k, v in plan["outputs"].items() if k.startswith(CELL_OUTPUT_PREFIX)}
        references[f"{ORGANIZATION}/{stack_file.project}/{cell_stack}"] = StackOutputs(values=values, secret_names=[])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"pulumi_aws\..*")
        try:
            recording = run_program(stack_file, preview=preview, references=references)
        except pulumi.RunError as exc:
            raise InputError(Problem(path=f"stack {stack!r}", message=str(exc))) from None
    plan = build_global_plan(deployment=found, recording=recording, catalog_date=_catalog_date())
    plan["cost"] = deployment_cost(plan, found, {region: p["cost"] for region, p in cells.items()})
    return plan


def is_global_stack(project_dir: Path, stack: str) -> bool:
    from components.settings.cells import is_global

    return is_global(StackFile.load(project_dir, stack).config)


def _catalog_date() -> str:
    """The date of the newest dated source in the catalog: how fresh the prices and specs are."""
    from components.catalog import sources

    return max(s.date for s in sources().values() if s.date[:1].isdigit())
