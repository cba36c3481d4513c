"""Security and hygiene rules over plan JSON v1 (components.policy.rules), shared by the tests,
`modelyard plan` (violations printed; `--strict` exits 4) and the Pulumi policy pack in policy/."""

from components.policy.rules import RULES, RULES_BY_ID, Rule, Violation, evaluate

__all__ = ["RULES", "RULES_BY_ID", "Rule", "Violation", "evaluate"]
