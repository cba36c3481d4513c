"""Plan JSON v1: the recorded program turned into a stable, reviewable document (docs/architecture.md#plan-json-v1).

Stability rules: resource keys are built from names (region, parent chain, type), never URNs or
mock ids; maps are sorted when dumped; lists the kit builds without order are sorted here; money is
Decimal rounded to cents; nothing depends on the time or the machine.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from components.contract import SECRET
from components.errors import InputError
from components.plan.admission import admission_problems
from components.plan.availability import availability
from components.plan.charts import RELEASE_TYPES, local_chart, render_release
from components.plan.engine import AliasSpec, Recording, Registration, normalise, secret_map_keys
from components.plan.urn import ROOT_TYPE, create_urn, new_urn, parse_urn
from components.settings import Settings
from components.settings.cells import Deployment

SCHEMA = "modelyard.plan/v1"
_PACKAGES = ("pulumi", "pulumi-aws", "pulumi-kubernetes")


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


_ROOT_TYPE = ROOT_TYPE


@dataclass(frozen=True)
class _Place:
    """Where a resource is or was: names and types from the top-level ancestor down (a URN without stack and
    project, plus the parents' names that a URN lacks). The empty place is the stack itself."""

    names: tuple[str, ...] = ()
    types: tuple[str, ...] = ()

    def child(self, name: str, type_: str) -> _Place:
        return _Place((*self.names, name), (*self.types, type_))

    @property
    def path(self) -> str:
        """What names it in a URN: the qualified type and the name."""
        return f"{'$'.join(self.types)}::{self.names[-1]}" if self.names else ""

    def key(self, region: str) -> str:
        return f"{region}/" * bool(region) + f"{'/'.join(self.names)}::{self.types[-1]}"


def _regions(registrations: list[Registration]) -> dict[str, str]:
    """Provider URN -> the region it sets."""
    return {
        r.urn: r.inputs["region"]
        for r in registrations
        if r.type.startswith("pulumi:providers:") and isinstance(r.inputs.get("region"), str)
    }


def _places(registrations: list[Registration], stack_urn: str) -> dict[str, _Place]:
    by_urn = {r.urn: r for r in registrations}
    places: dict[str, _Place] = {}
    for r in registrations:
        names, types = [r.name], [r.type]
        parent = r.parent_urn
        while parent and parent != stack_urn and parent in by_urn:
            names.append(by_urn[parent].name)
            types.append(by_urn[parent].type)
            parent = by_urn[parent].parent_urn
        places[r.urn] = _Place(tuple(reversed(names)), tuple(reversed(types)))
    return places


def resource_keys(registrations: list[Registration], stack_urn: str) -> dict[str, str]:
    """URN -> stable key `<region>/<parent names>/<name>::<type>` (region only where a provider sets one)."""
    regions = _regions(registrations)
    places = _places(registrations, stack_urn)
    return {r.urn: places[r.urn].key(regions.get(r.urn) or regions.get(r.provider_urn, "")) for r in registrations}


def _urn_parts(urn: str) -> tuple[str, str, str, str] | None:
    """(stack, project, qualified type, name) of a URN. The recording monitor gives the engine's URNs; a URN that
    the SDK built under the stack resource itself (create_urn(..., parent=<stack>)) starts its qualified type with
    `pulumi:pulumi:Stack$`, where the place is the top level: dropped."""
    parts = parse_urn(urn)
    if parts is None:
        return None
    stack, project, qualified, name = parts
    return stack, project, qualified.removeprefix(_ROOT_TYPE + "$"), name


def alias_urns(registrations: list[Registration], stack_urn: str) -> dict[str, list[str]]:
    """URN -> the URNs, other than its own, under which `pulumi up` may find the resource in the stack's state.

    As pulumi's step generator computes them (collapseAliasToUrn, inheritedChildAlias, generateAliases): a whole-URN
    alias as given; a spec's empty name or type is the resource's own, its parent the current one unless it names
    one (`noParent`, or a parent that is the stack: none), its stack and project this deployment's unless it names
    them (a URN under a parent takes the parent's); a child inherits each alias of its parent, its name's prefix
    renamed as the parent was (the `<parent>-<child>` convention), once as it is and once per alias of its own.
    The engine uses only the alias its parent (or an alias's explicit parent) was found under in the old state;
    offline there is no state, so every alias of the parent counts: a superset, never fewer.
    """
    own = parse_urn(stack_urn)
    stack, project = (own[0], own[1]) if own else ("", "")
    by_urn = {r.urn: r for r in registrations}
    former: dict[str, list[str]] = {}  # URN -> its alias URNs, own and inherited (parents come before children)

    def collapse(r: Registration, alias: AliasSpec) -> list[str]:
        if alias.urn:
            return [alias.urn]
        parents = [alias.parent_urn, *former.get(alias.parent_urn, [])] if alias.parent_urn else [r.parent_urn]
        out = []
        for parent in parents:
            parsed = parse_urn(parent) if parent and not alias.no_parent else None
            parent = parent if parsed and parsed[2] != ROOT_TYPE else ""
            name, type_ = alias.name or r.name, alias.type or r.type
            out.append(create_urn(name, type_, parent, alias.project or project, alias.stack or stack))
        return out

    def inherited(child_type: str, child_name: str, parent_name: str, parent_alias: str) -> str:
        parsed = parse_urn(parent_alias)
        if parsed is None:
            return ""
        if child_name.startswith(parent_name):
            child_name = parsed[3] + child_name[len(parent_name) :]
        return new_urn(stack, project, parsed[2], child_type, child_name)

    out: dict[str, list[str]] = {}
    for r in registrations:
        found = [u for alias in r.aliases for u in collapse(r, alias)]
        parent = by_urn.get(r.parent_urn)
        if parent is not None:
            for parent_alias in former.get(parent.urn, []):
                found.append(inherited(r.type, r.name, parent.name, parent_alias))
                for own_alias in [u for alias in r.aliases for u in collapse(r, alias)]:
                    parsed = parse_urn(own_alias)
                    if parsed is not None:
                        found.append(inherited(parsed[2].rsplit("$", 1)[-1], parsed[3], parent.name, parent_alias))
        former[r.urn] = [u for u in dict.fromkeys(found) if u and u != r.urn]
        if former[r.urn]:
            out[r.urn] = sorted(former[r.urn])
    return out


def alias_keys(registrations: list[Registration], stack_urn: str) -> dict[str, list[str]]:
    """URN -> the keys, other than its own, that the resource had under its aliases: where the engine would find it
    in the stack's state instead of deleting the old resource and creating a new one.

    As the engine reads aliases (collapseAliasToUrn, generateAliases in pulumi's step generator): a spec's empty name
    or type is the resource's own, an empty parent its current parent, `noParent` the stack; an explicit parent that
    was itself aliased may be meant at any of its former places; a child inherits every alias of its parent (its name's
    prefix renamed as the parent was: the `<parent>-<child>` convention). Left out, since the plan cannot name the
    place: a whole-URN alias nested under a parent the plan does not know (a URN lacks the names of the parent's
    ancestors), and an alias into another stack or project.
    """
    own = _urn_parts(stack_urn)
    stack, project = (own[0], own[1]) if own else ("", "")
    regions = _regions(registrations)
    places = _places(registrations, stack_urn)
    former: dict[str, list[_Place]] = {}  # URN -> its places under its aliases, own and inherited
    known: dict[str, tuple[_Place, str]] = {places[r.urn].path: (places[r.urn], r.urn) for r in registrations}

    def here(urn: str) -> tuple[str, str] | None:
        """(qualified type, name) of a URN of this stack, None for another stack's or project's."""
        parts = _urn_parts(urn)
        if parts is None or (parts[0], parts[1]) != (stack, project):
            return None
        return parts[2], parts[3]

    def parent_places(urn: str) -> list[_Place]:
        """Where an alias's explicit parent is or was."""
        parts = here(urn)
        if urn == stack_urn or (parts and parts[0] == _ROOT_TYPE):
            return [_Place()]
        if parts is None:
            return []
        place, now = (places[urn], urn) if urn in places else known.get(f"{parts[0]}::{parts[1]}", (None, ""))
        if place is not None:
            return [place, *former.get(now, [])]
        if "$" not in parts[0]:  # a top-level resource that the program no longer registers
            return [_Place((parts[1],), (parts[0],))]
        return []

    out: dict[str, list[str]] = {}
    for r in registrations:
        parent_urn = r.parent_urn if r.parent_urn in places else ""
        aliased: list[tuple[str, str]] = []  # (name, type) of each own alias: the parent's aliases multiply them
        found: list[_Place] = []
        for alias in r.aliases:
            if alias.urn:
                parts = here(alias.urn)
                if parts is None:
                    continue
                qualified, name = parts
                aliased.append((name, qualified.rsplit("$", 1)[-1]))
                if "$" not in qualified:
                    found.append(_Place((name,), (qualified,)))
                elif f"{qualified}::{name}" in known:
                    found.append(known[f"{qualified}::{name}"][0])
                continue
            if alias.stack not in ("", stack) or alias.project not in ("", project):
                continue
            name, type_ = alias.name or r.name, alias.type or r.type
            aliased.append((name, type_))
            if alias.no_parent:
                parents = [_Place()]
            elif alias.parent_urn:
                parents = parent_places(alias.parent_urn)
            else:
                parents = [places[parent_urn] if parent_urn else _Place()]
            found += [p.child(name, type_) for p in parents]
        if parent_urn:
            parent_name = places[parent_urn].names[-1]
            for parent_alias in former.get(parent_urn, []):
                for name, type_ in [(r.name, r.type), *aliased]:
                    if name.startswith(parent_name):
                        name = parent_alias.names[-1] + name[len(parent_name) :]
                    found.append(parent_alias.child(name, type_))
        former[r.urn] = [p for p in dict.fromkeys(found) if p != places[r.urn]]
        for p in former[r.urn]:
            known.setdefault(p.path, (p, ""))
        region = regions.get(r.urn) or regions.get(r.provider_urn, "")
        keys = sorted({p.key(region) for p in former[r.urn]} - {places[r.urn].key(region)})
        if keys:
            out[r.urn] = keys
    return out


# What a Kubernetes Secret holds: each of its keys stays, its value printed [secret] (a manifest that is still a valid
# Secret, and a diff that shows which key changed).
_SECRET_TYPE = "kubernetes:core/v1:Secret"
_SECRET_FIELDS = ("data", "stringData")


def _inputs(r: Registration, keys: dict[str, str]) -> dict[str, Any]:
    inputs: dict[str, Any] = normalise(r.inputs, urn_keys=keys)
    if r.type == _SECRET_TYPE:
        for field in _SECRET_FIELDS:
            names = secret_map_keys(r.inputs.get(field))
            if names is not None:
                inputs[field] = dict.fromkeys(names, SECRET)
    return inputs


def _resource(
    r: Registration, keys: dict[str, str], stack_urn: str, aliases: dict[str, list[str]], urns: dict[str, list[str]]
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "key": keys[r.urn],
        "urn": r.urn,  # the engine's URN (the recording monitor gives no mock URNs): what `pulumi up` matches state by
        "type": r.type,
        "name": r.name,
        "parent": keys.get(r.parent_urn) if r.parent_urn != stack_urn else None,
        "custom": r.custom,
        "provider": keys.get(r.provider_urn) if r.provider_urn else None,
        "protect": r.protect,
        "retain_on_delete": r.retain_on_delete,
        "depends_on": sorted({keys[u] for u in r.dependency_urns if u in keys}),
        "inputs": _inputs(r, keys),
    }
    property_dependencies = {
        prop: deps
        for prop, urns in sorted(r.property_dependency_urns.items())
        if (deps := sorted({keys[u] for u in urns if u in keys}))
    }
    if property_dependencies:  # per input, the resources its value comes from (the diff's replacement cascade)
        entry["property_dependencies"] = property_dependencies
    if aliases.get(r.urn):  # only where there are some: a plan without aliases keeps its bytes
        entry["aliases"] = aliases[r.urn]
    if urns.get(r.urn):
        entry["alias_urns"] = urns[r.urn]
    options: dict[str, Any] = {}
    if r.ignore_changes:
        options["ignore_changes"] = sorted(r.ignore_changes)
    if r.custom_timeouts:
        options["custom_timeouts"] = dict(sorted(r.custom_timeouts.items()))
    if options:
        entry["options"] = options
    return entry


def plan_resources(recording: Recording, keys: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The plan's entries for one stack's recording, in registration order (build_plan sorts the deployment's)."""
    keys = keys if keys is not None else resource_keys(recording.registrations, recording.stack_urn)
    aliases = alias_keys(recording.registrations, recording.stack_urn)
    urns = alias_urns(recording.registrations, recording.stack_urn)
    return [
        {**_resource(r, keys, recording.stack_urn, aliases, urns), "stack": recording.stack}
        for r in recording.registrations
    ]


def _manifest_object(r: Registration, keys: dict[str, str]) -> dict[str, Any] | None:
    """A Kubernetes object the resource applies, from its inputs (Helm releases are listed, not expanded)."""
    if not r.custom or not r.type.startswith("kubernetes:") or r.type.startswith("kubernetes:helm.sh"):
        return None
    obj = _inputs(r, keys)
    return obj if "apiVersion" in obj and "kind" in obj else None


def _release_objects(resources: list[dict[str, Any]], project_dir: Path) -> list[dict[str, Any]]:
    """Objects of releases of the kit's own charts, rendered with Helm's engine (components/plan/charts.py)."""
    out: list[dict[str, Any]] = []
    for resource in resources:
        if resource["type"] not in RELEASE_TYPES:
            continue
        chart_dir = local_chart(resource["inputs"], project_dir)
        if chart_dir is not None:
            out += [{"source": resource["key"], "object": obj} for obj in render_release(chart_dir, resource["inputs"])]
    return out


def serving_summary(settings: Settings, manifests: list[dict[str, Any]]) -> dict[str, Any]:
    """Per model, what its operators should know before a replica is needed: the estimated cold start of one
    replica on a new node (components.sizing.cold_start), part by part, and the weight path it uses; and what its
    servers survive, read from the rendered objects (components/plan/availability.py; None where this plan renders
    no server for it: a stack of the AWS layer alone)."""
    from components.k8s.serving_values import cold_start

    served = availability(manifests)
    return {
        name: {
            "cold_start": cold_start(
                name,
                model,
                settings.pools[model.pool],
                fsx_throughput_mb_per_second=settings.storage.fsx.throughput_mb_per_second
                if settings.storage.fsx is not None
                else None,
            ).to_json(),
            "availability": served.get(name),
        }
        for name, model in sorted(settings.models.items())
    }


def build_plan(
    *, settings: Settings, recordings: list[Recording], catalog_date: str, project_dir: Path
) -> dict[str, Any]:
    """One document for a deployment: one stack's recording, or both layers' of a split deployment (keys
    never collide: the layers' components have distinct names; each resource says which stack holds it)."""
    resources: list[dict[str, Any]] = []
    found: list[dict[str, Any]] = []
    outputs: dict[str, Any] = {}
    for recording in recordings:
        # A URN lacks the parents' names: one name and type under two same-typed parents is one URN, which `pulumi up`
        # refuses (duplicate resource URN), and which the recording cannot tell apart.
        urns = sorted(urn for urn, count in Counter(r.urn for r in recording.registrations).items() if count > 1)
        if urns:
            raise ValueError(f"two resources have one URN, which `pulumi up` refuses: {urns}")
        keys = resource_keys(recording.registrations, recording.stack_urn)
        resources += plan_resources(recording, keys)
        for r in recording.registrations:
            obj = _manifest_object(r, keys)
            if obj is not None:
                found.append({"source": keys[r.urn], "object": obj})
        for name, value in recording.outputs.items():
            # The Kubernetes layer re-exports region and preset: the same values.
            outputs.setdefault(name, normalise(value, urn_keys=keys))
    resources.sort(key=lambda e: e["key"])
    duplicates = sorted(key for key, count in Counter(e["key"] for e in resources).items() if count > 1)
    if duplicates:
        raise ValueError(f"resource keys collide across the deployment's stacks: {duplicates}")
    manifests: list[dict[str, Any]] = sorted(
        [*found, *_release_objects(resources, project_dir)],
        key=lambda m: (
            str(m["source"]),
            m["object"]["kind"],
            m["object"]["metadata"].get("namespace", ""),
            m["object"]["metadata"]["name"],
        ),
    )
    problems = admission_problems(manifests)
    if problems:
        raise InputError(
            problems, heading=f"stack {settings.stack!r}: {len(problems)} object(s) the cluster would refuse"
        )
    plan: dict[str, Any] = {
        "schema": SCHEMA,
        "project": settings.project,
        "stack": settings.stack,
        "stacks": [recording.stack for recording in recordings],
        "preset": settings.preset,
        "meta": {
            "kit_version": _version("modelyard"),
            "catalog_date": catalog_date,
            "packages": {p: _version(p) for p in _PACKAGES},
        },
        "resources": resources,
        "manifests": manifests,
        "outputs": dict(sorted(outputs.items())),
        "serving": serving_summary(settings, manifests),
        "cost": None,
    }
    from components.cost import stack_cost  # prices this plan's resources plus what controllers create

    plan["cost"] = stack_cost(plan, settings)
    return plan


def type_counts(plan: dict[str, Any]) -> list[tuple[str, int]]:
    counts = Counter(r["type"] for r in plan["resources"])
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def build_global_plan(*, deployment: Deployment, recording: Recording, catalog_date: str) -> dict[str, Any]:
    """The plan of a global stack (docs/regions.md): its own resources and outputs; `cost` is added by the caller
    (the deployment's, cells included). `preset` is its cells' preset, `cells` which stack serves each region."""
    keys = resource_keys(recording.registrations, recording.stack_urn)
    g = deployment.settings
    first = deployment.cells[min(deployment.cells)]
    return {
        "schema": SCHEMA,
        "project": g.project,
        "stack": g.stack,
        "stacks": [recording.stack],
        "preset": first.preset,
        "cells": dict(sorted(g.cells.items())),
        "meta": {
            "kit_version": _version("modelyard"),
            "catalog_date": catalog_date,
            "packages": {p: _version(p) for p in _PACKAGES},
        },
        "resources": sorted(plan_resources(recording, keys), key=lambda e: e["key"]),
        "manifests": [],
        "outputs": dict(sorted((k, normalise(v, urn_keys=keys)) for k, v in recording.outputs.items())),
        "serving": {},
        "cost": None,
    }
