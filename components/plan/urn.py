"""Pulumi URNs as the engine builds them (pulumi's sdk/go/common/resource/urn.go and the step generator), without
the SDK: the plan gives each resource its URN, and `modelyard diff` reads them.

A URN is `urn:pulumi:<stack>::<project>::<qualified type>::<name>`; the qualified type is every ancestor's type
below the stack, top-level first, then the resource's own, joined by `$`. It holds no parent's name, which is why a
plan key (the parents' names) and a URN (their types) can each change while the other stays.
"""

from __future__ import annotations

ROOT_TYPE = "pulumi:pulumi:Stack"


def parse_urn(urn: str) -> tuple[str, str, str, str] | None:
    """(stack, project, qualified type, name) of a URN `urn:pulumi:<stack>::<project>::<qualified type>::<name>`."""
    if not urn.startswith("urn:pulumi:"):
        return None
    parts = urn[len("urn:pulumi:") :].split("::", 3)
    if len(parts) != 4:
        return None
    stack, project, qualified, name = parts
    return stack, project, qualified, name


def new_urn(stack: str, project: str, parent_type: str, type_: str, name: str) -> str:
    """The URN the Pulumi engine gives a resource (pulumi's resource.NewURN): the parent's whole qualified type
    (every ancestor's type, top-level first), `$`, the resource's type; nothing for a parent that is the stack."""
    qualified = f"{parent_type}${type_}" if parent_type and parent_type != ROOT_TYPE else type_
    return f"urn:pulumi:{stack}::{project}::{qualified}::{name}"


def create_urn(name: str, type_: str, parent_urn: str, project: str, stack: str) -> str:
    """pulumi's resource.CreateURN (the engine's, and the SDK's create_urn): under a parent's URN, or at the top
    of `stack` and `project` without one."""
    if parent_urn:
        return f"{parent_urn[: parent_urn.rfind('::')]}${type_}::{name}"
    return f"urn:pulumi:{stack}::{project}::{type_}::{name}"
