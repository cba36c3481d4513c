"""`pulumi state move` commands from two plans: what a deployment split into two stacks (the AWS layer and its
`<stack>-k8s`) keeps by moving it in the state, before either stack's `up`.

A resource whose key is in both plans while its URN names another stack is one `pulumi up` cannot find: no alias
reaches across stacks, so without a move the destination creates it again and the source deletes it (for a
Kubernetes object: a new object, and its volumes and their data gone). `pulumi state move --source S --dest D
<urn>...` rewrites the two stacks' states: the resources leave S and arrive in D under their URN with D's name
(the CLI renames the stack and project in each URN and in its dependencies, nothing else), with their children, and
copies the providers they use (naming a provider is refused: pulumi's pkg/cmd/pulumi/state/state_move.go).

So a resource can move when its URN in HEAD is its URN in BASE with the stack renamed. What cannot: a resource of
BASE that HEAD no longer has (the source's `up` deletes it), one whose URN changed in more than its stack (its
parents' types: an alias in the program must name the moved URN), and providers (copied, never moved).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from components.cost.estimate import STATEFUL_TYPES
from components.plan.urn import parse_urn

PROVIDER_PREFIX = "pulumi:providers:"


def renamed(urn: str, stack: str) -> str:
    """`urn` in another stack, as `pulumi state move` writes it (the stack part only)."""
    parsed = parse_urn(urn)
    if parsed is None:
        return urn
    _, project, qualified, name = parsed
    return f"urn:pulumi:{stack}::{project}::{qualified}::{name}"


@dataclass(kw_only=True)
class Move:
    source: str
    dest: str
    urns: list[str] = field(default_factory=list)
    """BASE URNs to move, in BASE's order (parents before children, as the state holds them)."""
    providers: list[str] = field(default_factory=list)
    """Providers the moved resources use: copied to `dest` by the CLI, not named."""


@dataclass(kw_only=True)
class StateMoves:
    moves: list[Move]
    cannot: list[str]
    """Why each resource that changes stack, or leaves the source, does not move (one line each)."""

    def commands(self) -> list[str]:
        """One `pulumi state move` per (source, dest), every URN quoted for the shell."""
        out = []
        for move in self.moves:
            if not move.urns:
                continue
            lines = [f"pulumi state move --source {shlex.quote(move.source)} --dest {shlex.quote(move.dest)}"]
            lines += [f"  {shlex.quote(urn)}" for urn in move.urns]
            out.append(" \\\n".join(lines))
        return out


def state_moves(base: Mapping[str, Any], head: Mapping[str, Any]) -> StateMoves:
    """The moves that keep every resource whose key stays while its stack changes (plans with URNs)."""
    base_resources = [r for r in base.get("resources", []) if isinstance(r.get("urn"), str)]
    head_by_key = {r["key"]: r for r in head.get("resources", []) if isinstance(r.get("urn"), str)}
    head_urns = {r["urn"] for r in head_by_key.values()}
    moves: dict[tuple[str, str], Move] = {}
    cannot: list[str] = []
    leaving: list[Mapping[str, Any]] = []
    for r in base_resources:
        parsed = parse_urn(r["urn"])
        after = head_by_key.get(r["key"])
        if parsed is None or r["urn"] in head_urns:
            continue  # found by URN: stays where it is
        if after is None:
            leaving.append(r)
            continue
        parsed_after = parse_urn(after["urn"])
        if parsed_after is None or parsed_after[0] == parsed[0]:
            continue  # same stack, another URN: the diff's business (an alias), not a move
        source, dest = parsed[0], parsed_after[0]
        move = moves.setdefault((source, dest), Move(source=source, dest=dest))
        if r["type"].startswith(PROVIDER_PREFIX):
            move.providers.append(r["urn"])
        elif renamed(r["urn"], dest) == after["urn"]:
            move.urns.append(r["urn"])
        else:
            cannot.append(
                f"{r['key']}: in {dest} its URN is {after['urn']}, not {renamed(r['urn'], dest)}: a move keeps the "
                "parents' types, so the program must alias the moved URN (components/options.py: moved_from)"
            )
    sources = {m.source for m in moves.values()}
    carried = _with_children(base_resources, {urn: m.dest for m in moves.values() for urn in m.urns})
    for r in leaving:
        stack = (parse_urn(r["urn"]) or ("",))[0]
        if stack not in sources:
            continue
        gone = "(stateful: its data goes with it)" if r["type"] in STATEFUL_TYPES else ""
        if r["urn"] in carried:
            where = f"moves with its parent to {carried[r['urn']]}, whose `up` deletes it"
        else:
            where = f"{stack}'s `up` deletes it"
        cannot.append(f"{r['key']}: not in HEAD, nothing to move it to; {where} {gone}".rstrip())
    for move in moves.values():
        for provider in move.providers:
            cannot.append(
                f"{provider}: a provider is never moved; the CLI copies it to {move.dest} with the resources that use "
                f"it, and {move.dest}'s program then updates it in place"
            )
    return StateMoves(moves=sorted(moves.values(), key=lambda m: (m.source, m.dest)), cannot=cannot)


def _with_children(resources: Sequence[Mapping[str, Any]], moved: dict[str, str]) -> dict[str, str]:
    """URN -> destination for the named resources and, as the CLI takes them, every descendant."""
    out = dict(moved)
    urn_by_key = {(r.get("stack"), r["key"]): r.get("urn") for r in resources}
    changed = True
    while changed:
        changed = False
        for r in resources:
            parent = urn_by_key.get((r.get("stack"), r.get("parent")))
            if r.get("urn") not in out and parent in out:
                out[str(r["urn"])] = out[str(parent)]
                changed = True
    return out


def apply_moves(plan: Mapping[str, Any], result: StateMoves) -> dict[str, Any]:
    """`plan` (a BASE) as its state reads after the moves: each moved resource, its descendants and the providers
    it uses under the destination's URN. What `modelyard diff` then compares is what `pulumi up` meets."""
    named = {urn: move.dest for move in result.moves for urn in move.urns + move.providers}
    resources = [dict(r) for r in plan.get("resources", [])]
    moved = _with_children(resources, named)
    for r in resources:
        dest = moved.get(r.get("urn", ""))
        if dest:
            r["urn"], r["stack"] = renamed(r["urn"], dest), dest
    return {**plan, "resources": resources}


def render(result: StateMoves) -> str:
    """The commands, then what cannot move, as text for a terminal or a runbook."""
    out = []
    commands = result.commands()
    if commands:
        out.append(
            "# Before either stack's `up` (docs/upgrades.md, \"Changing tier\"), from the project's folder, logged in "
            "to the stacks' backend;\n# each destination stack initialised first with its secrets provider "
            "(pulumi stack init <dest> --secrets-provider ...)."
        )
        out += commands
    else:
        out.append("# Nothing changes stack: no `pulumi state move` needed.")
    if result.cannot:
        out.append("# What does not move:")
        out += [f"#   {line}" for line in result.cannot]
    return "\n".join(out) + "\n"
