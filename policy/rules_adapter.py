"""The adapter between pulumi_policy's view of a stack and components.policy's plan rules.

Importing this module never imports pulumi_policy nor builds the PolicyPack (whose constructor starts a
gRPC server and blocks): tests import it to check that the pack runs exactly the kit's rules. The pack
entry point is __main__.py.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

# The pack runs from policy/: the kit's package is one folder up.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from components.policy import RULES, Rule, Violation
from components.policy.rules import UNKNOWN

# pulumi_policy.proxy's sentinels for values unknown during preview (boolean, number, string, array,
# asset, archive, object). Reading one through the pack's proxies raises; the adapter reads the raw
# values and turns each sentinel into the plan's "(known after apply)", which every rule treats as undecided.
UNKNOWN_SENTINELS = (
    "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7",
    "3eeb2bf0-c639-47a8-9e75-3b44932eb421",
    "04da6b54-80e4-46f7-96ec-b56ff0331ba9",
    "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2",
    "030794c1-ac77-496b-92df-f27374a8bd58",
    "e48ece36-62e2-4504-bad9-02848725956a",
    "dd056dcd-154b-4c76-9bd3-c8f88648b5ff",
)


def _raw(value: Any) -> Any:
    """A pulumi_policy proxy's target (its `__target` key), or the value itself."""
    if isinstance(value, (str, bytes, list, tuple, dict)):
        return value
    if isinstance(value, (Mapping, Sequence)):
        try:
            return value["__target"]  # type: ignore[index]
        except (KeyError, IndexError, TypeError):
            return value
    return value


def plain(value: Any) -> Any:
    """Pack props -> plan values: proxies unwrapped, unknown sentinels as UNKNOWN."""
    value = _raw(value)
    if isinstance(value, str):
        return UNKNOWN if value in UNKNOWN_SENTINELS else value
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in _raw(value).items()}
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        return [plain(v) for v in value]
    return value


def plan_from_resources(resources: Iterable[Any]) -> dict[str, Any]:
    """A plan JSON v1 shape built from pulumi_policy PolicyResources (keys are URNs).

    What the pack does not see is left undecided: retain_on_delete (not among the pack's resource
    options) is None, so `stateful-protected` judges protect alone there.
    """
    plan_resources: list[dict[str, Any]] = []
    manifests: list[dict[str, Any]] = []
    for r in resources:
        type_token = str(r.resource_type)
        inputs = plain(r.props) or {}
        opts = getattr(r, "opts", None)
        provider = getattr(r, "provider", None)
        parent = getattr(r, "parent", None)
        plan_resources.append(
            {
                "key": r.urn,
                "type": type_token,
                "name": r.name,
                "custom": not type_token.startswith("modelyard:"),
                "parent": getattr(parent, "urn", None),
                "provider": getattr(provider, "urn", None),
                "protect": bool(getattr(opts, "protect", False)),
                "retain_on_delete": None,
                "depends_on": sorted(d.urn for d in getattr(r, "dependencies", None) or ()),
                "inputs": inputs,
            }
        )
        if provider is not None and getattr(provider, "urn", None):
            plan_resources.append(
                {
                    "key": provider.urn,
                    "type": str(provider.resource_type),
                    "name": provider.name,
                    "custom": True,
                    "inputs": plain(provider.props) or {},
                }
            )
        if (
            type_token.startswith("kubernetes:")
            and not type_token.startswith("kubernetes:helm.sh")
            and isinstance(inputs, Mapping)
            and "apiVersion" in inputs
            and "kind" in inputs
        ):
            manifests.append({"source": r.urn, "object": inputs})
    unique = {p["key"]: p for p in plan_resources}
    return {"schema": "modelyard.plan/v1", "resources": list(unique.values()), "manifests": manifests}


class PackPolicy:
    """One kit rule as a stack validation: (name, description, validate(args, report_violation))."""

    def __init__(self, rule: Rule) -> None:
        self.id = rule.id
        self.description = rule.description
        self._rule = rule

    def violations(self, resources: Iterable[Any]) -> list[Violation]:
        return self._rule.check(plan_from_resources(resources))

    def validate(self, args: Any, report_violation: Callable[..., None]) -> None:
        for violation in self.violations(args.resources):
            report_violation(violation.message, violation.resource)


def policies() -> list[PackPolicy]:
    return [PackPolicy(rule) for rule in RULES]
