"""The price book: AWS and API prices from prices.yaml, each with its source, date and quality.

The loader refuses the whole file, listing every problem, when a price names no source or an unknown
one, is not a number, or a source is cited by nothing; a hosted offer of an open model without its
provider or its own date (YYYY-MM-DD) is refused too. Prices are Decimal. A stack may replace any
price (settings cost.prices); a replaced price says so wherever it is used.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

from components.yamlio import parse_yaml

PRICES_FILE = Path(__file__).with_name("prices.yaml")
QUALITIES = ("M", "O", "T", "U")  # best to worst


class PriceBookError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("invalid price book:\n  " + "\n  ".join(problems))


@dataclass(frozen=True, kw_only=True)
class PriceSource:
    key: str
    citation: str
    date: str
    quality: str


@dataclass(frozen=True, kw_only=True)
class Price:
    key: str
    usd: Decimal
    unit: str
    source: PriceSource
    quality: str  # the source's quality, or weaker where the price says so
    note: str = ""

    @property
    def cite(self) -> str:
        return f"{self.source.key} {self.source.date} ({self.quality})"

    @property
    def assumed(self) -> bool:
        return self.quality == "U"


@dataclass(frozen=True, kw_only=True)
class ApiPrice:
    key: str
    label: str
    input: Decimal  # USD per million input tokens
    output: Decimal  # USD per million output tokens
    source: PriceSource
    date: str = ""  # the price's own date; the source's when empty
    quality: str = ""  # the source's quality, or weaker where the offer says so; the source's when empty

    def per_million_output(self, input_per_output: Decimal) -> Decimal:
        """USD for one million output tokens and the prompt tokens that come with them."""
        return self.input * input_per_output + self.output

    @property
    def cite(self) -> str:
        return f"{self.source.key} {self.date or self.source.date} ({self.quality or self.source.quality})"


@dataclass(frozen=True, kw_only=True)
class HostedOffer(ApiPrice):
    """One host's per-token price of an open model (by catalog name), dated on its own."""

    provider: str
    offer: str  # the provider's name for the model
    ref: str  # where in the source (a file of the table)
    same_model: bool = True  # False: a stand-in of the same size, never "the same model"
    note: str = ""


@dataclass(frozen=True, kw_only=True)
class PriceBook:
    prices: Mapping[str, Price]
    proprietary: Mapping[str, ApiPrice]
    hosted_open: Mapping[str, tuple[HostedOffer, ...]]  # by catalog model, in the book's order
    sources: Mapping[str, PriceSource]

    def __getitem__(self, key: str) -> Price:
        return self.prices[key]

    def with_overrides(self, overrides: Mapping[str, float]) -> PriceBook:
        """The book with a stack's own prices; unknown keys raise KeyError naming them."""
        unknown = sorted(set(overrides) - set(self.prices))
        if unknown:
            raise KeyError(unknown)
        if not overrides:
            return self
        own = PriceSource(key="STACK", citation="the stack's own price (settings cost.prices)", date="-", quality="U")
        prices = dict(self.prices)
        for key, usd in overrides.items():
            prices[key] = replace(
                prices[key], usd=Decimal(str(usd)), source=own, quality="U", note=f"set in cost.prices.{key}"
            )
        return replace(self, prices=MappingProxyType(prices))


def _number(value: Any, path: str, problems: list[str]) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        problems.append(f"{path}: expected a non-negative number, got {value!r}")
        return None
    return Decimal(str(value))


def _offer(
    model: str,
    index: int,
    a: Any,
    source_of: Any,
    problems: list[str],
) -> HostedOffer | None:
    path = f"apis.hosted_open.{model}[{index}]"
    if not isinstance(a, Mapping):
        problems.append(f"{path}: expected a mapping, got {a!r}")
        return None
    source = source_of(a, path)
    inp = _number(a.get("input"), f"{path}.input", problems)
    out = _number(a.get("output"), f"{path}.output", problems)
    missing = [f for f in ("provider", "offer", "ref") if not a.get(f)]
    if missing:
        problems.append(f"{path}: missing {', '.join(missing)}")
    date = str(a.get("date") or "")
    try:
        datetime.date.fromisoformat(date)
    except ValueError:
        problems.append(f"{path}.date: expected the offer's own date as YYYY-MM-DD, got {a.get('date')!r}")
        date = ""
    quality = a.get("quality")
    if quality is not None and quality not in QUALITIES:
        problems.append(f"{path}.quality: {quality!r} is not one of {', '.join(QUALITIES)}")
        return None
    same_model = a.get("same_model", True)
    if not isinstance(same_model, bool):
        problems.append(f"{path}.same_model: expected true or false, got {same_model!r}")
        return None
    if source is None or inp is None or out is None or missing or not date:
        return None
    worst = max(source.quality, quality or source.quality, key=QUALITIES.index)
    return HostedOffer(
        key=f"{model}/{a['provider']}",
        label=f"{a['provider']} {a['offer']}",
        input=inp,
        output=out,
        source=source,
        date=date,
        quality=worst,
        provider=str(a["provider"]),
        offer=str(a["offer"]),
        ref=str(a["ref"]),
        same_model=same_model,
        note=str(a.get("note", "")),
    )


def parse(data: Mapping[str, Any]) -> PriceBook:
    problems: list[str] = []
    sources: dict[str, PriceSource] = {}
    for key, s in (data.get("sources") or {}).items():
        missing = [f for f in ("citation", "date", "quality") if not s.get(f)]
        if missing:
            problems.append(f"sources.{key}: missing {', '.join(missing)}")
            continue
        if s["quality"] not in QUALITIES:
            problems.append(f"sources.{key}.quality: {s['quality']!r} is not one of {', '.join(QUALITIES)}")
            continue
        sources[key] = PriceSource(key=key, citation=s["citation"], date=str(s["date"]), quality=s["quality"])
    cited: set[str] = set()

    def source_of(entry: Mapping[str, Any], path: str) -> PriceSource | None:
        key = entry.get("source")
        if key not in sources:
            problems.append(f"{path}.source: {key!r} is not a key of sources")
            return None
        cited.add(key)
        return sources[key]

    prices: dict[str, Price] = {}
    for key, p in (data.get("prices") or {}).items():
        path = f"prices.{key}"
        source = source_of(p, path)
        usd = _number(p.get("usd"), f"{path}.usd", problems)
        if not p.get("unit"):
            problems.append(f"{path}.unit: missing")
        quality = p.get("quality")
        if quality is not None and quality not in QUALITIES:
            problems.append(f"{path}.quality: {quality!r} is not one of {', '.join(QUALITIES)}")
            continue
        if source is None or usd is None:
            continue
        worst = max(source.quality, quality or source.quality, key=QUALITIES.index)
        prices[key] = Price(
            key=key, usd=usd, unit=str(p.get("unit", "")), source=source, quality=worst, note=p.get("note", "")
        )
    apis = data.get("apis") or {}
    proprietary: dict[str, ApiPrice] = {}
    for key, a in (apis.get("proprietary") or {}).items():
        path = f"apis.proprietary.{key}"
        source = source_of(a, path)
        inp = _number(a.get("input"), f"{path}.input", problems)
        out = _number(a.get("output"), f"{path}.output", problems)
        if source is None or inp is None or out is None:
            continue
        proprietary[key] = ApiPrice(key=key, label=a.get("label", key), input=inp, output=out, source=source)
    hosted: dict[str, tuple[HostedOffer, ...]] = {}
    for model, offers in (apis.get("hosted_open") or {}).items():
        if not isinstance(offers, list) or not offers:
            problems.append(f"apis.hosted_open.{model}: expected a list of offers, got {offers!r}")
            continue
        parsed = [_offer(model, i, a, source_of, problems) for i, a in enumerate(offers)]
        kept = [o for o in parsed if o is not None]
        if len(kept) == len(parsed):
            hosted[model] = tuple(kept)
    for key in sorted(set(sources) - cited):
        problems.append(f"sources.{key}: cited by no price")
    if problems:
        raise PriceBookError(problems)
    return PriceBook(
        prices=MappingProxyType(prices),
        proprietary=MappingProxyType(proprietary),
        hosted_open=MappingProxyType(hosted),
        sources=MappingProxyType(sources),
    )


def load(path: Path = PRICES_FILE) -> PriceBook:
    return parse(parse_yaml(path.read_text(encoding="utf-8")) or {})


@functools.cache
def default_book() -> PriceBook:
    return load()
