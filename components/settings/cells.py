"""A deployment across regions: cells joined by a global stack (docs/regions.md).

A cell is an ordinary deployment (one stack, or an AWS-layer and a Kubernetes-layer stack) in one region whose
`deploy.global_stack` names the global stack. The global stack's file sets `modelyard:global` and nothing of a
preset: which region each cell serves, and the DNS entry in front of them. Its settings are validated with every
cell's, because what only the whole deployment shows lives here: a tenant served by several cells must find every
model it calls in each of them (the entry may send any request to any cell), and a tenant pinned to regions must be
served by no cell outside them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from components import catalog
from components.errors import InputError, Problem
from components.settings.load import NAMESPACE, build_settings, decode_config
from components.settings.schema import Converter, doc_field
from components.settings.stackfile import StackFile
from components.settings.types import NatMode, Settings

# The config key that makes a stack the global stack of a deployment across regions.
GLOBAL_KEY = "global"

_DNS_NAME = r"(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?"
_REGION = r"[a-z]{2}(-[a-z]+)+-\d"


class Routing(StrEnum):
    """How the entry's records choose a cell (Route 53 routing policies)."""

    LATENCY = "latency"  # the healthy cell with the lowest latency from the resolver's region
    FAILOVER = "failover"  # the primary while its health check passes, else the secondary


@dataclass(frozen=True, kw_only=True)
class GlobalSettings:
    """The global stack of a deployment across regions: the cells, and the DNS entry in front of their gateways."""

    project: str = field(metadata={"context": True})
    stack: str = field(metadata={"context": True})
    region: str = doc_field(
        "the region of the global stack's AWS provider: Route 53 and its health checks are global services, the "
        "provider still needs one for its API calls",
        default="us-east-1",
        pattern=_REGION,
        pattern_doc="an AWS region such as us-east-1",
    )
    zone_name: str = doc_field(
        "the private hosted zone of the entry, created by this stack and attached to every cell's VPC (clients "
        "outside the VPCs resolve it through a Route 53 Resolver inbound endpoint); it must not be a cell's "
        "gateway.hostname, which has a zone of its own",
        pattern=_DNS_NAME,
        pattern_doc="a lower-case DNS name of two labels or more, such as llm.example.internal",
    )
    record: str = doc_field(
        "the entry's label inside zone_name: clients call https://<record>.<zone_name>/v1",
        default="api",
        pattern=r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?",
        pattern_doc="one lower-case DNS label",
    )
    routing: Routing = doc_field(
        "latency: every healthy cell answers, the nearest first; failover: the primary cell while healthy, then "
        "the other (two cells only)",
        default=Routing.LATENCY,
    )
    primary: str | None = doc_field(
        "failover only: the region (a key of cells) of the primary cell", default=None, pattern=_REGION
    )
    cells: Mapping[str, str] = doc_field(
        "region -> the stack of the cell there (the stack holding its AWS layer), at least two",
        key_pattern=_REGION,
        key_pattern_doc="an AWS region such as eu-west-1",
    )

    @property
    def entry(self) -> str:
        """The DNS name clients call."""
        return f"{self.record}.{self.zone_name}"


@dataclass(frozen=True, kw_only=True)
class Deployment:
    """A global stack's settings with its cells' (by region, valid), as one validated whole."""

    settings: GlobalSettings
    cells: Mapping[str, Settings]

    def tenant_cells(self) -> dict[str, list[str]]:
        """Tenant -> the regions of the cells serving it, in region order."""
        found: dict[str, list[str]] = {}
        for region in sorted(self.cells):
            for tenant in self.cells[region].tenants:
                found.setdefault(tenant, []).append(region)
        return dict(sorted(found.items()))

    def entry_tenants(self) -> list[str]:
        """Tenants served by every cell: the only ones the entry can route anywhere (the others call their cells'
        own hostnames; through the entry their requests may land in a cell where their keys do not exist)."""
        return [t for t, regions in self.tenant_cells().items() if len(regions) == len(self.cells)]


def is_global(config: Mapping[str, object]) -> bool:
    return f"{NAMESPACE}:{GLOBAL_KEY}" in config


def _p(path: str, message: str) -> Problem:
    return Problem(path=f"{NAMESPACE}:{GLOBAL_KEY}.{path}", message=message)


def build_deployment(*, project: str, stack: str, config: Mapping[str, str], project_dir: Path) -> Deployment:
    """The global stack's settings and its cells'. Raises InputError naming every problem (a cell's own problems
    come as that cell's stack reports them)."""
    values = decode_config(config)
    others = sorted(set(values) - {GLOBAL_KEY})
    problems: list[Problem] = [
        Problem(path=f"{NAMESPACE}:{key}", message="a global stack holds modelyard:global only: set it in the cells")
        for key in others
    ]
    converter = Converter()
    settings = converter.convert_object(
        GlobalSettings, values.get(GLOBAL_KEY), GLOBAL_KEY, project=project, stack=stack
    )
    problems += [Problem(path=f"{NAMESPACE}:{p.path}", message=p.message) for p in converter.problems]
    if problems or not isinstance(settings, GlobalSettings):
        raise InputError(problems, heading=f"stack {stack!r}: {len(problems)} problem(s) in the settings")
    cells: dict[str, Settings] = {}
    stacks_dir = StackFile.stacks_dir(project_dir)
    for region, cell_stack in sorted(settings.cells.items()):
        path = stacks_dir / f"Pulumi.{cell_stack}.yaml"
        if cell_stack == stack or not path.is_file():
            problems.append(_p(f"cells.{region}", f"no cell stack {cell_stack!r} ({path.name} does not exist)"))
            continue
        stack_file = StackFile.load(project_dir, cell_stack)
        if "modelyard:layer_of" in stack_file.config or is_global(stack_file.config):
            problems.append(
                _p(f"cells.{region}", f"{cell_stack!r} is not a cell: name the stack that holds a cell's AWS layer")
            )
            continue
        cells[region] = build_settings(
            project=project,
            stack=cell_stack,
            config=stack_file.engine_config(),
            presets_dir=stacks_dir / "presets",
            secret_keys=stack_file.secret_keys,
        )
    problems += _cell_problems(settings, cells)
    if problems:
        raise InputError(problems, heading=f"stack {stack!r}: {len(problems)} problem(s) in the deployment")
    return Deployment(settings=settings, cells=cells)


def _cell_problems(g: GlobalSettings, cells: Mapping[str, Settings]) -> list[Problem]:
    problems: list[Problem] = []
    if len(g.cells) < 2:
        problems.append(_p("cells", "a global entry needs two cells or more: one has nothing to fail over to"))
    if g.routing is Routing.FAILOVER:
        if len(g.cells) != 2:
            problems.append(_p("routing", "failover routes to a primary and one secondary: name exactly two cells"))
        if g.primary not in g.cells:
            problems.append(_p("primary", f"failover needs the primary cell's region, one of {', '.join(g.cells)}"))
    elif g.primary is not None:
        problems.append(_p("primary", "only with routing: failover"))
    for region, cell in sorted(cells.items()):
        path = f"cells.{region}"
        if cell.region != region:
            problems.append(_p(path, f"stack {cell.stack!r} is in {cell.region} (its modelyard:region), not {region}"))
        if cell.deploy.global_stack != g.stack:
            problems.append(
                _p(
                    path,
                    f"stack {cell.stack!r} is not a cell of {g.stack!r}: set deploy.global_stack: {g.stack} in its "
                    "stack file (the cell then creates the alarm the entry's health check reads)",
                )
            )
        hostname = cell.gateway.hostname
        if hostname is not None and (hostname == g.zone_name or hostname == g.entry):
            problems.append(
                _p("zone_name", f"stack {cell.stack!r} uses {hostname} as gateway.hostname: choose another")
            )
        if cell.gateway.certificate_arn is None:
            problems.append(
                _p(
                    path,
                    f"stack {cell.stack!r} requests a certificate for {hostname} alone, which clients of {g.entry} "
                    "would refuse: set its gateway.certificate_arn to a certificate naming both (imported, or from "
                    "ACM Private CA)",
                )
            )
    problems += _tenant_problems(cells)
    problems += _remote_write_problems(cells)
    for source in cells.values():
        for region, replica in sorted(source.storage.replicas.items()):
            if replica.cell is not None and region in cells and cells[region].stack == replica.cell:
                problems += unreplicated_weights(source, region, cells[region])
    return problems


def _remote_write_problems(cells: Mapping[str, Settings]) -> list[Problem]:
    """One workspace for the deployment: every cell writes to it (monitoring.remote_write), in one region, or none."""
    regions = {r: c.monitoring.remote_write.region for r, c in cells.items() if c.monitoring.remote_write is not None}
    if not regions:
        return []
    problems: list[Problem] = []
    for region, cell in sorted(cells.items()):
        if region not in regions:
            problems.append(
                _p(
                    f"cells.{region}",
                    f"other cells write their metrics to the deployment's workspace, stack {cell.stack!r} does not: "
                    "set monitoring.remote_write in every cell (a cross-region view without a cell is not one)",
                )
            )
    if len(set(regions.values())) > 1:
        named = ", ".join(f"{cells[r].stack} {w}" for r, w in sorted(regions.items()))
        problems.append(
            _p(
                "cells",
                f"the cells name different workspace regions ({named}): monitoring.remote_write.region is "
                "the one workspace's region, the same in every cell",
            )
        )
    workspace = next(iter(set(regions.values()))) if len(set(regions.values())) == 1 else None
    peers = [r for r in sorted(cells) if workspace is not None and _peered(cells[r], workspace)]
    if peers and workspace not in cells:
        named = ", ".join(cells[r].stack for r in peers)
        problems.append(
            _p(
                "cells",
                f"{named} (no NAT) reach{'es' if len(peers) == 1 else ''} the workspace in {workspace} only over a "
                f"peering to the deployment's cell there, and there is none: put the workspace "
                "(monitoring.remote_write.region) in a cell's region, or give those cells NAT",
            )
        )
    elif peers and workspace is not None:
        home = cells[workspace]
        for region in peers:
            cell = cells[region]
            if ipaddress.ip_network(cell.network.cidr).overlaps(ipaddress.ip_network(home.network.cidr)):
                problems.append(
                    _p(
                        f"cells.{region}",
                        f"stack {cell.stack!r} (no NAT) reaches the metrics workspace over a VPC peering to "
                        f"{home.stack!r}, and peered VPCs may not overlap: {cell.network.cidr} overlaps "
                        f"{home.network.cidr} (network.cidr is the stack's for good: give the new cell another range)",
                    )
                )
        # The workspace cell routes back to every peer: two peers' ranges may not overlap either.
        for i, first in enumerate(peers):
            for second in peers[i + 1 :]:
                a, b = cells[first].network.cidr, cells[second].network.cidr
                if ipaddress.ip_network(a).overlaps(ipaddress.ip_network(b)):
                    problems.append(
                        _p(
                            f"cells.{second}",
                            f"stack {cells[second].stack!r} and stack {cells[first].stack!r} are both peered to "
                            f"{home.stack!r} for the metrics workspace, and their ranges overlap ({b}, {a}): "
                            f"{home.stack!r} could not route back to both",
                        )
                    )
    return problems


def unreplicated_weights(source: Settings, region: str, cell: Settings) -> list[Problem]:
    """A replica that lists its models (storage.replicas.<region>.models) must hold every model the cell of that
    region serves: its servers read the weights from the replica and would find none."""
    replicated = source.replicated_model_names(region)
    if replicated is None:
        return []
    served = {catalog.resolve_model(m.model).name: key for key, m in cell.models.items()}
    missing = sorted(name for name in served if name not in replicated)
    if not missing:
        return []
    named = ", ".join(f"{name} (its model {served[name]!r})" for name in missing)
    return [
        Problem(
            path=f"{NAMESPACE}:storage.replicas.{region}.models",
            message=f"stack {cell.stack!r} serves {named} from this replica, whose weights would not be replicated "
            f"there: add the model to stack {source.stack!r}'s storage.replicas.{region}.models",
        )
    ]


def _peered(cell: Settings, workspace: str) -> bool:
    """A cell without NAT writing to a workspace in another region: the global stack peers it (docs/regions.md)."""
    return cell.monitoring.remote_write is not None and cell.network.nat is NatMode.NONE and cell.region != workspace


def peered_cells(deployment: Deployment) -> list[str]:
    """The regions of the cells the global stack peers to the workspace's cell."""
    workspace = workspace_region(deployment)
    if workspace is None:
        return []
    return [r for r, cell in sorted(deployment.cells.items()) if _peered(cell, workspace)]


def workspace_region(deployment: Deployment) -> str | None:
    """The region of the deployment's metrics workspace (None: no cell writes to one)."""
    for cell in deployment.cells.values():
        if cell.monitoring.remote_write is not None:
            return cell.monitoring.remote_write.region
    return None


def _tenant_problems(cells: Mapping[str, Settings]) -> list[Problem]:
    """Every cell serving a tenant serves every model the tenant calls in any cell (the same catalog model under
    the same name); a tenant pinned to regions is pinned alike everywhere and served in no other region."""
    problems: list[Problem] = []
    serving: dict[str, list[str]] = {}
    for region in sorted(cells):
        for tenant in cells[region].tenants:
            serving.setdefault(tenant, []).append(region)
    for tenant, regions in sorted(serving.items()):
        needs = sorted({m for r in regions for m in cells[r].tenants[tenant].models})
        for region in regions:
            cell = cells[region]
            missing = [m for m in needs if m not in cell.tenants[tenant].models]
            for model in missing:
                has = next(r for r in regions if model in cells[r].tenants[tenant].models)
                problems.append(
                    _p(
                        f"cells.{region}",
                        f"stack {cell.stack!r} serves tenant {tenant} without {model}, which the tenant calls in "
                        f"{has} (stack {cells[has].stack!r}): a request the entry sends to {region} would fail. Add "
                        f"{model} to tenants.{tenant}.models there (and serve it), or drop it from the other cells",
                    )
                )
            for model in sorted(set(needs) - set(missing)):
                names = {cells[r].models[model].model for r in regions if model in cells[r].tenants[tenant].models}
                if len(names) > 1 and region == regions[0]:
                    problems.append(
                        _p(
                            f"cells.{region}",
                            f"model {model} of tenant {tenant} is {' in one cell and '.join(sorted(names))} in "
                            "another: one name must mean one model in every cell",
                        )
                    )
        pins = {r: tuple(sorted(cells[r].tenants[tenant].regions)) for r in regions}
        pinned = sorted({region for pin in pins.values() for region in pin})
        if not pinned:
            continue
        for region in regions:
            cell = cells[region]
            if pins[region] != tuple(pinned):
                problems.append(
                    _p(
                        f"cells.{region}",
                        f"tenant {tenant} is pinned to {', '.join(pinned)} in another cell, but stack {cell.stack!r} "
                        f"sets tenants.{tenant}.regions to [{', '.join(pins[region])}]: pin it alike in every cell",
                    )
                )
            if region not in pinned:
                problems.append(
                    _p(
                        f"cells.{region}",
                        f"stack {cell.stack!r} serves tenant {tenant}, which is pinned to {', '.join(pinned)}: its "
                        f"prompts would be processed in {region}; remove the tenant from that stack",
                    )
                )
    return problems


def deployment_of(project_dir: Path, stack: str) -> Deployment | None:
    """The deployment a global stack names (None: `stack` is not a global stack)."""
    stack_file = StackFile.load(project_dir, stack)
    if not is_global(stack_file.config):
        return None
    return build_deployment(
        project=stack_file.project,
        stack=stack,
        config=stack_file.engine_config(),
        project_dir=project_dir,
    )
