"""Cost of ownership: prices with sources (prices.yaml), the cost of a plan, TCO, tokens and break-even.

``stack_cost(plan, settings)`` returns the plan JSON's ``cost`` object; ``modelyard tco`` prints it and
``modelyard diff`` compares two plans with it.
"""

from components.cost.estimate import BANDS, STATEFUL_TYPES, stack_cost

__all__ = ["BANDS", "STATEFUL_TYPES", "stack_cost"]
