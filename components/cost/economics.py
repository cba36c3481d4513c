"""Unit economics: the lowest cost per token a stack can reach, and where (or whether) it breaks even.

Pure arithmetic on Decimal, no I/O. A stack's monthly cost at a volume of V million output tokens is

    cost(V) = fixed + sum over models of max(floor_m, usd_per_mtok_m x share_m x V)

where `fixed` is everything that does not grow with traffic (people, tools, the cluster, the network...),
`floor_m` what a model's GPU nodes cost at replicas.min (they run whatever the traffic), `usd_per_mtok_m`
what its GPU nodes cost per million output tokens at its maximum replicas fully used, and `share_m` its part
of the stack's tokens (its share of what the maximum replicas can produce). Buying the same tokens costs
`price x V`. The stack breaks even at the smallest V, within what its maximum replicas can produce, at
which cost(V) <= price x V; past that capacity more traffic needs more replicas than replicas.max allows,
so a stack whose cost per token at full maximum replicas is above the price cannot break even at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

TENTH = Decimal("0.1")
CENT = Decimal("0.01")
CANNOT = "cannot break even at its maximum replicas"


@dataclass(frozen=True, kw_only=True)
class Part:
    """One model's GPU nodes, as the break-even sees them."""

    floor_monthly: Decimal  # USD a month for the nodes of replicas.min, used or not
    max_monthly: Decimal  # USD a month for the nodes of the maximum replicas, all month
    max_mtok: Decimal  # million output tokens a month at the maximum replicas fully used


@dataclass(frozen=True, kw_only=True)
class Verdict:
    price: Decimal  # USD per million output tokens bought elsewhere
    lowest: Decimal  # USD per million output tokens at the maximum replicas fully used
    max_mtok: Decimal
    mtok: Decimal | None  # the monthly volume at which the two cost the same; None: never within max replicas

    @property
    def can_break_even(self) -> bool:
        return self.mtok is not None

    @property
    def share_of_max(self) -> Decimal | None:
        return None if self.mtok is None or not self.max_mtok else self.mtok / self.max_mtok


def _cost(fixed: Decimal, parts: Sequence[Part], volume: Decimal, total: Decimal) -> Decimal:
    # A model's share of the volume is its share of the capacity, so its nodes at that volume cost
    # max_monthly x volume / total (all of them at volume = total), never less than its replicas.min nodes.
    return fixed + sum((max(p.floor_monthly, p.max_monthly * volume / total) for p in parts), Decimal(0))


def break_even(fixed: Decimal, parts: Sequence[Part], price: Decimal) -> Verdict:
    """Where buying tokens at `price` (USD per million output tokens) costs what running `parts` does."""
    total = sum((p.max_mtok for p in parts), Decimal(0))
    if total <= 0:
        raise ValueError("no capacity: every part produces no tokens")
    lowest = _cost(fixed, parts, total, total) / total

    def gap(volume: Decimal) -> Decimal:
        return _cost(fixed, parts, volume, total) - price * volume

    # cost(V) - price x V is convex and piecewise linear: its kinks are where a model's traffic outgrows the
    # nodes of its replicas.min. Walk the pieces and solve the first one that crosses zero.
    kinks = sorted(
        {p.floor_monthly * total / p.max_monthly for p in parts if p.max_monthly > 0} | {total},
    )
    start, at_start = Decimal(0), gap(Decimal(0))
    if at_start <= 0:
        return Verdict(price=price, lowest=lowest, max_mtok=total, mtok=Decimal(0))
    for end in (k for k in kinks if 0 < k <= total):
        at_end = gap(end)
        if at_end <= 0:
            volume = start + at_start * (end - start) / (at_start - at_end)
            return Verdict(price=price, lowest=lowest, max_mtok=total, mtok=volume)
        start, at_start = end, at_end
    return Verdict(price=price, lowest=lowest, max_mtok=total, mtok=None)


def usd(value: Decimal) -> str:
    return f"${value.quantize(CENT, rounding=ROUND_HALF_UP):,}"


def mtok_text(value: Decimal) -> str:
    return f"{value.quantize(TENTH, rounding=ROUND_HALF_UP):,}"


def statement(v: Verdict, *, who: str, replicas: str, against: str) -> str:
    """The verdict in one plain sentence (tco and the plan print it as it is)."""
    lowest = (
        f"at {replicas} fully used ({mtok_text(v.max_mtok)} million output tokens a month) "
        f"its lowest cost is {usd(v.lowest)} per million output tokens"
    )
    if v.mtok is None:
        return f"{who} {CANNOT}: {lowest}, above {against} at {usd(v.price)}"
    share = v.share_of_max or Decimal(0)
    return (
        f"{who} breaks even with {against} ({usd(v.price)} per million) at "
        f"{mtok_text(v.mtok)} million output tokens a month, {share:.0%} of what {replicas} produce; {lowest}"
    )


def to_json(v: Verdict, text: str) -> dict[str, object]:
    share = v.share_of_max
    return {
        "against_usd_per_million_output_tokens": str(v.price.quantize(CENT, rounding=ROUND_HALF_UP)),
        "lowest_usd_per_million_output_tokens": str(v.lowest.quantize(CENT, rounding=ROUND_HALF_UP)),
        "million_output_tokens_per_month_at_max": str(v.max_mtok.quantize(TENTH, rounding=ROUND_HALF_UP)),
        "can_break_even": v.can_break_even,
        "break_even_million_output_tokens_per_month": None
        if v.mtok is None
        else str(v.mtok.quantize(TENTH, rounding=ROUND_HALF_UP)),
        "break_even_share_of_max": None if share is None else str(share.quantize(CENT, rounding=ROUND_HALF_UP)),
        "statement": text,
    }
