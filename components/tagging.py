"""Tags every taggable AWS resource of the kit carries.

Tags are set on each resource explicitly, not through provider default tags: default tags do not
appear in resource inputs, so neither the offline plan nor a policy could see them (docs/architecture.md#tags).
"""

from __future__ import annotations

import importlib
import inspect
import keyword
from collections.abc import Mapping
from functools import cache

KIT_TAG_KEYS = (
    "modelyard:project",
    "modelyard:stack",
    "modelyard:preset",
    "modelyard:component",
    "modelyard:cost-center",
)

# AWS allows 50 user tags per resource (Tagging AWS resources, "Tag naming limits and requirements").
MAX_TAGS_PER_RESOURCE = 50


def tags_for(
    *, project: str, stack: str, preset: str, component: str, cost_center: str, extra: Mapping[str, str]
) -> dict[str, str]:
    """The full tag set for one resource: the stack's extra tags, then the kit's (which win)."""
    tags = dict(extra)
    tags.update(
        {
            "modelyard:project": project,
            "modelyard:stack": stack,
            "modelyard:preset": preset,
            "modelyard:component": component,
            "modelyard:cost-center": cost_center,
        }
    )
    return tags


@cache
def is_taggable(type_token: str) -> bool:
    """Whether a pulumi-aws resource type accepts tags, read from the SDK's own signature.

    `aws:ec2/vpc:Vpc` -> pulumi_aws.ec2.Vpc; a type takes tags when its constructor has `tags`.
    """
    package, module_path, class_name = type_token.split(":")
    if package != "aws":
        return False
    module_name = module_path.split("/")[0]
    # The SDK spells a module named like a Python keyword with a trailing underscore (`lambda` -> `lambda_`).
    module = importlib.import_module(
        f"pulumi_aws.{module_name}_" if keyword.iskeyword(module_name) else f"pulumi_aws.{module_name}"
    )
    cls = getattr(module, class_name, None)
    if cls is None:
        return False
    return "tags" in inspect.signature(cls._internal_init).parameters
