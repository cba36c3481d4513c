"""Honest unit economics (issue 19, part 7): several dated hosted offers of the same open model, cost per
token per model beside them and the proprietary APIs, and the break-even at the stack's own maximum replicas."""

from __future__ import annotations

import datetime
import json
import re
from dataclasses import replace
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import pytest

from components import catalog
from components.cli import main as cli_main
from components.cost import economics
from components.cost.estimate import stack_cost
from components.cost.prices import PriceBook, PriceBookError, default_book, parse
from components.plan.render import markdown_report, text_report
from tests.conftest import ROOT
from tests.test_cost import plan_of

SHIPPED_STACKS = ("pilot", "product", "core")


def pilot_like(make_settings, max_replicas: int, **overrides: Any):
    """The minimal preset with room in its pool for `max_replicas` replicas of its 8B model."""
    return make_settings(
        "minimal",
        pools={"l40s": {"max_gpus": 16}},
        models={"llama-8b": {"replicas": {"min": 1, "max": max_replicas}}},
        tenants={"internal": {"gpu_quota": 16}},
        **overrides,
    )


def book_with_8b_at(usd_per_million_output: Decimal) -> PriceBook:
    """The default book with one offer of Llama 3.1 8B at this price per million output tokens (input free)."""
    book = default_book()
    model = book.hosted_open["llama-3.1-8b"][0]
    offer = replace(model, provider="Test host", input=Decimal(0), output=usd_per_million_output)
    return replace(book, hosted_open=MappingProxyType({**book.hosted_open, "llama-3.1-8b": (offer,)}))


def test_every_model_a_shipped_stack_serves_has_four_dated_hosted_offers_of_the_same_model(plans) -> None:
    book = default_book()
    served = {m["catalog_model"] for plan in plans.values() for m in plan["cost"]["tokens"]["models"]}
    assert {"llama-3.1-8b", "llama-3.3-70b", "llama-3.1-405b", "deepseek-r1"} <= served
    for model in served:
        same = [o for o in book.hosted_open[model] if o.same_model]
        assert len({o.provider for o in same}) >= 4, model


def test_every_hosted_offer_carries_its_own_date_and_a_source() -> None:
    book = default_book()
    assert set(book.hosted_open) <= set(catalog.models()), "hosted offers are keyed by catalog model"
    for model, offers in book.hosted_open.items():
        assert offers, model
        for o in offers:
            assert datetime.date.fromisoformat(o.date) <= datetime.date.fromisoformat(o.source.date), (model, o)
            assert o.source.citation and o.ref and o.provider and o.offer, (model, o)
            assert o.quality in "MOTU" and o.input >= 0 and o.output > 0, (model, o)
            assert o.same_model or o.note, f"{model}: a stand-in says what it stands in for"


def test_the_loader_refuses_an_offer_without_its_date_or_provider() -> None:
    source = {"A": {"citation": "a table", "date": "2026-08-21", "quality": "M"}}
    good = {"provider": "P", "offer": "m", "ref": "p.yml", "input": 1, "output": 2, "source": "A", "date": "2026-01-02"}
    book = parse({"sources": source, "apis": {"hosted_open": {"m": [good]}}})
    assert book.hosted_open["m"][0].cite == "A 2026-01-02 (M)"
    with pytest.raises(PriceBookError) as err:
        parse(
            {
                "sources": source,
                "apis": {
                    "hosted_open": {
                        "m": [{**good, "date": None}, {**good, "provider": ""}, {**good, "source": "NOPE"}],
                        "n": {"provider": "P"},
                    }
                },
            }
        )
    text = "\n".join(err.value.problems)
    assert "apis.hosted_open.m[0].date: expected the offer's own date as YYYY-MM-DD" in text
    assert "apis.hosted_open.m[1]: missing provider" in text
    assert "apis.hosted_open.m[2].source: 'NOPE' is not a key of sources" in text
    assert "apis.hosted_open.n: expected a list of offers" in text


def test_break_even_arithmetic() -> None:
    # Fixed $100 a month; the nodes of replicas.min cost $50, all nodes $200 for 100 M tokens at most.
    part = economics.Part(floor_monthly=Decimal(50), max_monthly=Decimal(200), max_mtok=Decimal(100))
    never = economics.break_even(Decimal(100), [part], Decimal(2))
    assert never.lowest == Decimal(3) and never.mtok is None and not never.can_break_even
    # At $4 per million: 100 + max(50, 2V) = 4V at V = 50, half of what the maximum replicas produce.
    v = economics.break_even(Decimal(100), [part], Decimal(4))
    assert v.mtok == Decimal(50) and v.share_of_max == Decimal("0.5")
    # At $7: the replicas.min nodes alone pay off first: 150 = 7V.
    early = economics.break_even(Decimal(100), [part], Decimal(7))
    assert abs(early.mtok - Decimal(150) / 7) < Decimal("1e-20")
    text = economics.statement(never, who="x", replicas="2 replicas", against="a host")
    assert text.startswith("x cannot break even at its maximum replicas") and "$3.00" in text and "$2.00" in text


def test_a_stack_that_cannot_break_even_says_so(capsys, monkeypatch, plans) -> None:
    cost = plans["pilot"]["cost"]
    stack = cost["break_even"]["hosted"]
    assert stack["can_break_even"] is False and stack["break_even_million_output_tokens_per_month"] is None
    assert Decimal(stack["lowest_usd_per_million_output_tokens"]) > Decimal(
        stack["against_usd_per_million_output_tokens"]
    )
    assert "cannot break even at its maximum replicas" in stack["statement"]
    model = cost["tokens"]["models"][0]
    assert model["break_even"]["can_break_even"] is False and model["cheapest_hosted"]
    import components.plan.run

    monkeypatch.setattr(components.plan.run, "plan_stack", lambda _root, stack: plans[stack])
    assert cli_main(["tco", "--stack", "pilot"]) == 0
    out = capsys.readouterr().out
    assert stack["statement"] in out and model["break_even"]["statement"] in out
    for offer in model["hosted"]:  # every offer, with its date and source
        assert f"{offer['source']} {offer['date']} ({offer['quality']})" in out
    assert stack["statement"] in text_report(plans["pilot"]) and stack["statement"] in markdown_report(plans["pilot"])


def test_raising_replicas_max_flips_the_stack_to_breaking_even(make_settings) -> None:
    small = stack_cost(plan_of(), pilot_like(make_settings, 2))
    large = stack_cost(plan_of(), pilot_like(make_settings, 12))
    low_small = Decimal(small["break_even"]["hosted"]["lowest_usd_per_million_output_tokens"])
    low_large = Decimal(large["break_even"]["hosted"]["lowest_usd_per_million_output_tokens"])
    assert low_large < low_small  # the fixed costs spread over more tokens
    book = book_with_8b_at((low_small + low_large) / 2)
    small = stack_cost(plan_of(), pilot_like(make_settings, 2), book)["break_even"]["hosted"]
    large = stack_cost(plan_of(), pilot_like(make_settings, 12), book)["break_even"]["hosted"]
    assert small["can_break_even"] is False and "cannot break even" in small["statement"]
    assert large["can_break_even"] is True and "breaks even" in large["statement"]
    volume = Decimal(large["break_even_million_output_tokens_per_month"])
    assert 0 < volume <= Decimal(large["million_output_tokens_per_month_at_max"])
    assert Decimal(large["break_even_share_of_max"]) == (
        volume / Decimal(large["million_output_tokens_per_month_at_max"])
    ).quantize(Decimal("0.01"))


def test_a_lower_price_flips_it_both_ways(make_settings) -> None:
    settings = pilot_like(make_settings, 12)
    base = stack_cost(plan_of(), settings)
    model = base["tokens"]["models"][0]["break_even"]
    floor = Decimal(model["lowest_usd_per_million_output_tokens"])
    # The model's own GPU nodes against a host selling just above, then just below, their lowest cost.
    above = stack_cost(plan_of(), settings, book_with_8b_at(floor + Decimal("0.05")))["tokens"]["models"][0]
    below = stack_cost(plan_of(), settings, book_with_8b_at(floor - Decimal("0.05")))["tokens"]["models"][0]
    assert above["break_even"]["can_break_even"] is True and above["cheapest_hosted"] == "Test host"
    assert below["break_even"]["can_break_even"] is False
    # A cheaper GPU (cost.compute_discount) lowers the floor under the same hosted price.
    cheaper = stack_cost(plan_of(), pilot_like(make_settings, 12, cost={"compute_discount": 0.5}))
    lower_floor = Decimal(cheaper["tokens"]["models"][0]["break_even"]["lowest_usd_per_million_output_tokens"])
    assert lower_floor < floor - Decimal("0.05")
    flipped = stack_cost(
        plan_of(),
        pilot_like(make_settings, 12, cost={"compute_discount": 0.5}),
        book_with_8b_at(floor - Decimal("0.05")),
    )
    assert flipped["tokens"]["models"][0]["break_even"]["can_break_even"] is True


def test_offers_are_listed_cheapest_first_and_the_cheapest_is_named(plans) -> None:
    for stack in SHIPPED_STACKS:
        cost = plans[stack]["cost"]
        for m in cost["tokens"]["models"]:
            prices = [Decimal(o["usd_per_million_output_tokens"]) for o in m["hosted"]]
            assert prices == sorted(prices) and m["cheapest_hosted"] == m["hosted"][0]["provider"]
            offer = m["hosted"][0]
            ratio = Decimal(cost["tokens"]["input_tokens_per_output_token"])
            blended = Decimal(offer["input"]) * ratio + Decimal(offer["output"])
            assert offer["usd_per_million_output_tokens"] == str(blended.quantize(Decimal("0.01")))


def _documented_keys(heading: str) -> set[str]:
    text = (ROOT / "docs" / "cost.md").read_text(encoding="utf-8")
    section = text.split(f"#### {heading}\n", 1)[1].split("\n#", 1)[0]
    return set(re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.MULTILINE))


def test_the_json_keys_are_the_documented_ones(plans) -> None:
    cost = json.loads(json.dumps(plans["product"]["cost"]))
    model = cost["tokens"]["models"][0]
    assert set(model) == _documented_keys("cost.tokens.models[]")
    assert set(model["hosted"][0]) == _documented_keys("cost.tokens.models[].hosted[]")
    assert set(cost["apis"][0]) == _documented_keys("cost.apis[]")
    assert set(cost["break_even"]) == _documented_keys("cost.break_even")
    verdict = _documented_keys("A break-even verdict")
    assert set(model["break_even"]) == verdict
    assert set(cost["break_even"]["hosted"]) == verdict
    assert set(cost["break_even"]["apis"][0]) == verdict | {"api"}
