"""The modelyard policy pack: the kit's plan rules (components.policy) enforced on `pulumi preview` and `up`.

    pulumi preview --stack <env> --policy-pack policy/

Each rule is a stack validation over every resource (rendered chart objects included), adapted by
rules_adapter.py; values unknown during preview are undecided, never violations.
"""

from pulumi_policy import EnforcementLevel, PolicyPack, StackValidationPolicy
from rules_adapter import policies

PolicyPack(
    name="modelyard",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[StackValidationPolicy(name=p.id, description=p.description, validate=p.validate) for p in policies()],
)
