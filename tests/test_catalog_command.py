"""`modelyard catalog`: models, instance types, licenses and regions, each with its sources; the regions file and
its refresh against the EC2 API (moto)."""

from __future__ import annotations

import json

import boto3
import pytest
import yaml

from components.catalog import CatalogError, instances, models, sources
from components.catalog.regions import DATA_FILE, parse, refresh, regions
from components.cli import main


def _json(capsys, *argv: str):
    assert main(["catalog", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_models_and_instances_list_the_whole_catalog_with_sources(capsys):
    listed = _json(capsys, "models")
    assert [m["name"] for m in listed] == list(models())
    assert all(m["sources"] and set(m["sources"].values()) <= set(sources()) for m in listed)
    listed = _json(capsys, "instances")
    assert [i["name"] for i in listed] == list(instances())
    assert next(i for i in listed if i["name"] == "g6e.xlarge")["gpu"] == "L40S"


def test_licenses_are_the_exact_strings_a_stack_accepts(capsys, tmp_path):
    from tests.conftest import plan_with

    listed = {e["name"]: e for e in _json(capsys, "licenses")}
    assert "llama-3.1-8b" in listed["Llama 3.1 Community License"]["models"]
    assert all(e["source"] in sources() for e in listed.values())
    # A stack that accepts the printed string plans: the string is the one settings compare with.
    plan = plan_with(tmp_path, "minimal", {"licenses": ["Llama 3.1 Community License"]})
    assert plan["preset"] == "minimal"


def test_regions_carry_zone_ids_their_date_and_sources(capsys):
    listed = {r["name"]: r for r in _json(capsys, "regions")}
    east = listed["us-east-1"]
    assert {"use1-az1", "use1-az2", "use1-az4"} <= set(east["zones"]) and east["date"]
    assert east["source"] in sources() and east["offerings_source"] in sources()
    assert east["verified"] is False  # not read from AWS here: the text says so
    assert main(["catalog", "regions"]) == 0
    out = capsys.readouterr().out
    assert "us-east-1: zones use1-az1" in out and "not verified against AWS" in out
    assert "eu-west-1" in out and "not known offline" in out


def test_every_preset_pool_lies_in_zones_the_regions_file_says_offer_it():
    """The offline offerings of us-east-1 are the presets' zones: they must agree, or init would pick others."""
    east = regions()["us-east-1"]
    for preset in ("minimal", "moderate", "enterprise"):
        data = yaml.safe_load((DATA_FILE.parents[2] / "stacks" / "presets" / f"{preset}.yaml").read_text())
        zones = data["network"]["zone_ids"]
        for pool in data["pools"].values():
            for zone in pool.get("zone_ids") or zones:
                assert set(pool["instance_types"]) <= set(east.offerings[zone]), (preset, zone)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"source": "NOPE"}, "regions.us-east-1.source: 'NOPE' is not a key of sources.yaml"),
        ({"offerings": {"use1-az9": ["g6e.xlarge"]}}, "regions.us-east-1.offerings.use1-az9: not one of"),
        ({"offerings": {"use1-az1": ["g9.huge"]}}, "'g9.huge' is no GPU type of the catalog"),
    ],
)
def test_the_regions_file_is_checked(change, expected):
    data = yaml.safe_load(DATA_FILE.read_text())
    data["regions"]["us-east-1"].update(change)
    with pytest.raises(CatalogError) as exc:
        parse(data)
    assert any(expected in p for p in exc.value.problems), exc.value.problems


def test_refresh_reads_zones_and_offerings_from_the_ec2_api(moto_endpoint, tmp_path):
    copy = tmp_path / "regions.yaml"
    copy.write_text(DATA_FILE.read_text())
    refresh(["us-west-2"], lambda region: boto3.client("ec2", region_name=region), "2026-12-07", path=copy)
    written = parse(yaml.safe_load(copy.read_text()))
    west = written["us-west-2"]
    assert west.verified and west.source == "AWS-EC2-API" and west.date == "2026-12-07"
    assert west.zones and all(z.startswith("usw2-az") for z in west.zones)
    assert west.offerings is not None and set(west.offerings) == set(west.zones)
    offered = {t for types in west.offerings.values() for t in types}
    assert offered and offered <= {n for n, i in instances().items() if i.gpu}
    assert written["us-east-1"] == regions()["us-east-1"]  # other regions stay as they were
    assert copy.read_text().startswith("# Zone IDs of AWS regions")
