"""AWS's published IPv4 ranges of Amazon S3, by region: where tenant pods may open HTTPS with `egress: s3`.

A NetworkPolicy takes CIDRs, not the managed prefix list `com.amazonaws.<region>.s3` the gateway endpoint
routes, so the kit carries a dated copy of what AWS publishes in ip-ranges.json (the entries of service
S3), in s3_ranges.yaml beside this module, with where and when it was read. Nothing is looked up while a
stack is planned or applied: the same settings give the same plan. `modelyard preflight` compares the copy
with the account's live prefix list (docs/preflight.md), and this module regenerates the copy from a fresh
ip-ranges.json:

    curl -sO https://ip-ranges.amazonaws.com/ip-ranges.json
    python -m components.catalog.s3_ranges ip-ranges.json

Entries of region GLOBAL (the ranges of S3 Multi-Region Access Points, which a gateway endpoint does not
serve) and IPv6 prefixes (the kit's VPCs are IPv4 only) are left out.
"""

from __future__ import annotations

import argparse
import functools
import ipaddress
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from components.yamlio import parse_yaml

DATA_FILE = Path(__file__).with_name("s3_ranges.yaml")
IP_RANGES_URL = "https://ip-ranges.amazonaws.com/ip-ranges.json"
S3_SERVICE = "S3"
GLOBAL_REGION = "GLOBAL"


@dataclass(frozen=True, kw_only=True)
class S3RangesSource:
    url: str
    """Where AWS publishes the ranges."""
    create_date: str
    """ip-ranges.json's own `createDate` (YYYY-MM-DD-hh-mm-ss, UTC): when AWS generated it."""
    sync_token: str
    """ip-ranges.json's `syncToken` (the publication time in epoch seconds)."""
    copy: str
    """How the kit's authors got the file (a direct download, or which mirror at which commit)."""
    read: str
    """When the kit's authors read it (YYYY-MM-DD)."""

    @property
    def date(self) -> str:
        """The publication day, YYYY-MM-DD."""
        return self.create_date[:10]


@dataclass(frozen=True, kw_only=True)
class S3Ranges:
    source: S3RangesSource
    regions: Mapping[str, tuple[str, ...]]
    """Region -> its S3 IPv4 CIDRs, in address order."""


class S3RangesError(ValueError):
    """The data file is malformed: the message names the file and the entry."""


def _cidrs(region: str, values: Any) -> tuple[str, ...]:
    if not isinstance(values, list) or not values:
        raise S3RangesError(f"{DATA_FILE.name}: regions.{region}: expected a non-empty list of CIDRs")
    networks = []
    for value in values:
        try:
            network = ipaddress.IPv4Network(str(value), strict=True)
        except ValueError as exc:
            raise S3RangesError(
                f"{DATA_FILE.name}: regions.{region}: {value!r} is not an IPv4 network ({exc})"
            ) from exc
        if not network.is_global:
            # A private or link-local range here would open the VPC, IMDS or the node to tenant pods.
            raise S3RangesError(f"{DATA_FILE.name}: regions.{region}: {network} is not a public range")
        networks.append(network)
    return tuple(str(n) for n in sorted(set(networks)))


def parse(data: Mapping[str, Any]) -> S3Ranges:
    """The table from the data file's contents; raises S3RangesError naming the entry at fault."""
    raw_source = data.get("source")
    fields = ("url", "create_date", "sync_token", "copy", "read")
    if not isinstance(raw_source, Mapping) or sorted(raw_source) != sorted(fields):
        raise S3RangesError(f"{DATA_FILE.name}: source: expected exactly the keys {', '.join(fields)}")
    regions = data.get("regions")
    if not isinstance(regions, Mapping) or not regions:
        raise S3RangesError(f"{DATA_FILE.name}: regions: expected a mapping of region to CIDRs")
    return S3Ranges(
        source=S3RangesSource(**{key: str(raw_source[key]) for key in fields}),
        regions=MappingProxyType(
            {str(region): _cidrs(str(region), cidrs) for region, cidrs in sorted(regions.items())}
        ),
    )


@functools.cache
def s3_ranges() -> S3Ranges:
    """The kit's table, read once per process."""
    return parse(parse_yaml(DATA_FILE.read_text(encoding="utf-8")))


def region_cidrs(region: str) -> tuple[str, ...]:
    """The S3 IPv4 CIDRs of a region; empty for a region the table does not know."""
    return s3_ranges().regions.get(region, ())


def from_ip_ranges(document: Mapping[str, Any], *, copy: str, read: str) -> dict[str, Any]:
    """The data file's contents from an ip-ranges.json document (its S3 IPv4 entries, GLOBAL left out)."""
    regions: dict[str, set[str]] = {}
    for prefix in document["prefixes"]:
        if prefix.get("service") == S3_SERVICE and prefix.get("region") != GLOBAL_REGION:
            regions.setdefault(prefix["region"], set()).add(prefix["ip_prefix"])
    return {
        "source": {
            "url": IP_RANGES_URL,
            "create_date": str(document["createDate"]),
            "sync_token": str(document["syncToken"]),
            "copy": copy,
            "read": read,
        },
        "regions": {
            region: [str(n) for n in sorted(ipaddress.IPv4Network(c) for c in cidrs)]
            for region, cidrs in sorted(regions.items())
        },
    }


HEADER = """\
# AWS's published IPv4 ranges of Amazon S3 by region: the entries of service S3 in ip-ranges.json, region
# GLOBAL (S3 Multi-Region Access Points) left out. Tenant pods with egress s3 may open HTTPS to their region's
# ranges and to no other public address (components/k8s/isolation.py, docs/security.md).
# Generated by components/catalog/s3_ranges.py: regenerate it from a fresh ip-ranges.json, never edit it by hand.
"""


def render(contents: Mapping[str, Any]) -> str:
    source = yaml.safe_dump({"source": contents["source"]}, sort_keys=False, default_flow_style=False, width=1000)
    regions = yaml.safe_dump({"regions": contents["regions"]}, sort_keys=False, default_flow_style=None, width=110)
    return HEADER + source + regions


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m components.catalog.s3_ranges",
        description=f"Rewrite {DATA_FILE.name} from a copy of {IP_RANGES_URL}.",
    )
    parser.add_argument("ip_ranges", type=Path, help="a downloaded ip-ranges.json")
    parser.add_argument(
        "--copy", default=f"downloaded from {IP_RANGES_URL}", help="how the file was obtained (default: downloaded)"
    )
    parser.add_argument("--output", type=Path, default=DATA_FILE, help=f"where to write (default: {DATA_FILE})")
    args = parser.parse_args(argv)
    try:
        document = json.loads(args.ip_ranges.read_text(encoding="utf-8"))
        contents = from_ip_ranges(document, copy=args.copy, read=datetime.now(UTC).date().isoformat())
        parse(contents)  # what is written must load
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"{args.ip_ranges}: not a usable ip-ranges.json: {exc}", file=sys.stderr)
        return 2
    args.output.write_text(render(contents), encoding="utf-8")
    regions = contents["regions"]
    print(f"{args.output}: {sum(len(c) for c in regions.values())} ranges in {len(regions)} regions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
