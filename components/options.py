"""Resource options the platform composes with: aliases for moved resources, dependencies that reach children."""

from __future__ import annotations

import pulumi


def moved_from(parent_type: str, parent_name: str, name: str) -> pulumi.Alias:
    """The resource `name` used to be a child of the top-level component `parent_name` (type `parent_type`)."""
    return pulumi.Alias(name=name, parent=pulumi.resource.create_urn(parent_name, parent_type))


def children_moved_from(own_type: str, parent_type: str, parent_name: str) -> pulumi.ResourceOptions:
    """Options for a component whose direct children used to be children of another top-level component:
    each child (not the component itself) gets an alias under its own name."""

    def transform(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
        if args.type_ == own_type:
            return None
        alias = moved_from(parent_type, parent_name, args.name)
        return pulumi.ResourceTransformationResult(
            args.props, pulumi.ResourceOptions.merge(args.opts, pulumi.ResourceOptions(aliases=[alias]))
        )

    return pulumi.ResourceOptions(transformations=[transform])


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
