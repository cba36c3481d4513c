"""Resource options the platform composes with: aliases for moved and renamed resources, dependencies that reach
children; and the parts of resource names that follow what an entry stands for, not its position in a list."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pulumi


def digest(text: str) -> str:
    """8 hex digits of the SHA-256 of `text`: the name part of a list entry with no short name of its own (an IAM
    ARN). Named by position instead, removing the first entry would rename, and so replace, every one after it."""
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def cidr_part(cidr: str) -> str:
    """An IPv4 CIDR as a name part: 10.200.0.0/16 -> 10-200-0-0-16 (settings admit only IPv4 network addresses,
    whose five numbers make the part unique)."""
    return cidr.replace(".", "-").replace("/", "-")


def renamed_from(name: str) -> pulumi.Alias:
    """The resource was named `name` under the same parent, with the same type: `pulumi up` finds it under that name
    and keeps it instead of replacing it."""
    return pulumi.Alias(name=name)


def moved_from(parent_type: str, parent_name: str, name: str) -> pulumi.Alias:
    """The resource `name` used to be a child of the top-level component `parent_name` (type `parent_type`)."""
    return pulumi.Alias(name=name, parent=pulumi.resource.create_urn(parent_name, parent_type))


def children_moved_from(own_type: str, parent_type: str, parent_name: str) -> pulumi.ResourceOptions:
    """Options for a component whose direct children used to be children of another top-level component:
    each child (not the component itself) gets an alias under its own name, and one under each former name it
    lists (`renamed_from`): a stack deployed before both changes had it there, under that name."""

    def transform(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
        if args.type_ == own_type:
            return None
        former = _former_names(args.opts.aliases)
        aliases = [moved_from(parent_type, parent_name, n) for n in (args.name, *former)]
        return pulumi.ResourceTransformationResult(
            args.props, pulumi.ResourceOptions.merge(args.opts, pulumi.ResourceOptions(aliases=aliases))
        )

    return pulumi.ResourceOptions(transformations=[transform])


def _former_names(aliases: Sequence[object] | None) -> list[str]:
    """The names of the `aliases` that name only a former name (`renamed_from`): same parent, type, stack, project."""
    return [
        a.name
        for a in aliases or []
        if isinstance(a, pulumi.Alias)
        and isinstance(a.name, str)
        and all(part is ... for part in (a.type_, a.parent, a.stack, a.project))
    ]


def after(*resources: pulumi.Resource) -> pulumi.ResourceOptions:
    """Options for a component that must wait for `resources`: its own dependency and every descendant's.

    A component's `depends_on` is not passed to its children: the SDK registers each child with its own
    dependencies only, so a chart inside the component could be applied before the CRDs it needs exist.
    """
    deps = list(resources)

    def transform(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult:
        return pulumi.ResourceTransformationResult(
            args.props, pulumi.ResourceOptions.merge(args.opts, pulumi.ResourceOptions(depends_on=deps))
        )

    return pulumi.ResourceOptions(depends_on=deps, transformations=[transform] if deps else None)
