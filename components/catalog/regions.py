"""Zone IDs of AWS regions and the catalog's GPU instance types each zone offers (regions.yaml beside this module).

`regions()` reads and checks the file (every `source` a key of sources.yaml, every offered type one of the catalog,
every offering zone one of its region's zones). `python -m components.catalog.regions --refresh REGION ...`
rewrites the named regions from the account's own answers, with the calls `modelyard preflight` makes
(DescribeAvailabilityZones, DescribeInstanceTypeOfferings by availability-zone-id), dated, source AWS-EC2-API.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from components.catalog import CatalogError, instances, sources
from components.yamlio import parse_yaml

DATA_FILE = Path(__file__).with_name("regions.yaml")
REFRESH_SOURCE = "AWS-EC2-API"


@dataclass(frozen=True, kw_only=True)
class Region:
    name: str
    zones: tuple[str, ...]  # zone IDs
    source: str  # sources.yaml key of the zone list
    verified: bool  # read from AWS's own answer (a refresh), not from a copy or the kit's choice
    offerings: Mapping[str, tuple[str, ...]] | None  # zone ID -> GPU instance types offered; None: not known offline
    offerings_source: str | None
    date: str  # when the region's data was written

    def zones_offering(self, instance_types: Sequence[str]) -> tuple[str, ...] | None:
        """Zone IDs that offer every one of `instance_types`, in order; None when offerings are not known."""
        if self.offerings is None:
            return None
        return tuple(z for z in self.zones if set(instance_types) <= set(self.offerings.get(z, ())))


def parse(data: Mapping[str, Any]) -> dict[str, Region]:
    """Regions of a regions.yaml document; CatalogError lists every problem with its path."""
    problems: list[str] = []
    known_sources, gpu_types = sources(), {n for n, i in instances().items() if i.gpu is not None}
    date = str(data.get("date", ""))
    if not date:
        problems.append("regions.yaml: date: missing")
    out: dict[str, Region] = {}
    for name, raw in (data.get("regions") or {}).items():
        path = f"regions.yaml: regions.{name}"
        if not isinstance(raw, Mapping):
            problems.append(f"{path}: expected a mapping")
            continue
        for key in ("source", "offerings_source"):
            if raw.get(key) is not None and raw[key] not in known_sources:
                problems.append(f"{path}.{key}: {raw[key]!r} is not a key of sources.yaml")
        zones = tuple(str(z) for z in raw.get("zones") or ())
        if not zones:
            problems.append(f"{path}.zones: give the region's zone IDs")
        offerings = raw.get("offerings")
        if offerings is not None:
            if raw.get("offerings_source") is None:
                problems.append(f"{path}.offerings_source: offerings need a source")
            for zone, types in offerings.items():
                if zone not in zones:
                    problems.append(f"{path}.offerings.{zone}: not one of the region's zones")
                problems += [
                    f"{path}.offerings.{zone}: {t!r} is no GPU type of the catalog" for t in types if t not in gpu_types
                ]
        out[name] = Region(
            name=name,
            zones=zones,
            source=str(raw.get("source")),
            verified=bool(raw.get("verified", False)),
            offerings=None if offerings is None else {z: tuple(t) for z, t in offerings.items()},
            offerings_source=raw.get("offerings_source"),
            date=str(raw.get("date", date)),
        )
    if problems:
        raise CatalogError(problems)
    return out


@functools.cache
def regions() -> Mapping[str, Region]:
    return parse(parse_yaml(DATA_FILE.read_text(encoding="utf-8")))


def from_aws(ec2: Any, region: str, today: str) -> dict[str, Any]:
    """One region's entry from the account's answers: its available zones and the catalog's GPU types by zone."""
    answer = ec2.describe_availability_zones(
        Filters=[{"Name": "zone-type", "Values": ["availability-zone"]}, {"Name": "state", "Values": ["available"]}]
    )
    zones = sorted(z["ZoneId"] for z in answer["AvailabilityZones"])
    gpu_types = sorted(n for n, i in instances().items() if i.gpu is not None)
    offered: dict[str, set[str]] = {z: set() for z in zones}
    pages = ec2.get_paginator("describe_instance_type_offerings").paginate(
        LocationType="availability-zone-id", Filters=[{"Name": "instance-type", "Values": gpu_types}]
    )
    for page in pages:
        for offering in page["InstanceTypeOfferings"]:
            if offering["Location"] in offered:
                offered[offering["Location"]].add(offering["InstanceType"])
    order = {name: i for i, name in enumerate(instances())}
    return {
        "source": REFRESH_SOURCE,
        "verified": True,
        "date": today,
        "zones": zones,
        "offerings_source": REFRESH_SOURCE,
        "offerings": {z: sorted(types, key=order.__getitem__) for z, types in offered.items()},
    }


def refresh(names: Sequence[str], client_for: Any, today: str, path: Path = DATA_FILE) -> None:
    """Rewrite the named regions of `path` from AWS (`client_for(region)` gives an EC2 client); others stay."""
    text = path.read_text(encoding="utf-8")
    header = "".join(line for line in text.splitlines(keepends=True) if line.startswith("#"))
    data = dict(parse_yaml(text))
    entries = dict(data.get("regions") or {})
    for name in names:
        entries[name] = from_aws(client_for(name), name, today)
    document = {"date": today, "regions": entries}
    parse(document)
    path.write_text(header + yaml.safe_dump(document, sort_keys=False, width=120), encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m components.catalog.regions", description=__doc__)
    parser.add_argument("--refresh", nargs="+", metavar="REGION", required=True, help="regions to read from AWS")
    parser.add_argument("--profile", help="an AWS profile (default: the environment's credentials)")
    args = parser.parse_args(argv)
    import boto3
    from botocore.config import Config

    session = boto3.Session(profile_name=args.profile)
    config = Config(retries={"max_attempts": 5, "mode": "standard"})
    today = datetime.datetime.now(datetime.UTC).date().isoformat()
    refresh(args.refresh, lambda region: session.client("ec2", region_name=region, config=config), today)
    print(f"{DATA_FILE}: {', '.join(args.refresh)} refreshed ({today})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
