"""A deployment across regions (docs/regions.md): the cells core (us-east-1) and core-eu (eu-west-1), the global stack
core-global in front of them, weights replicated into the EU cell's bucket, residency and model coverage across cells,
the deployment's TCO."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.cli import main as cli_main
from components.cost.estimate import BANDS
from components.errors import InputError
from components.settings.cells import deployment_of
from components.settings.types import Tier
from tests.conftest import ROOT, by_type

HEALTH_CHECK = "aws:route53/healthCheck:HealthCheck"
RECORD = "aws:route53/record:Record"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
CELLS = {"us-east-1": "core", "eu-west-1": "core-eu"}


@pytest.fixture(scope="module")
def entry(global_plans) -> dict[str, Any]:
    return global_plans["core-global"]


def _one(plan: dict[str, Any], type_token: str, name: str) -> dict[str, Any]:
    (found,) = [r for r in by_type(plan, type_token) if r["name"] == name]
    return found


def test_the_shipped_deployment_has_two_cells_and_a_global_stack(entry, plans) -> None:
    assert entry["cells"] == CELLS
    assert plans["core"]["outputs"]["cell_region"] == "us-east-1"
    assert plans["core-eu"]["outputs"]["cell_region"] == "eu-west-1"
    assert entry["outputs"]["entry"] == "https://api.llm.example.internal"
    # Only a tenant both cells serve can be routed anywhere by the entry; eu-health calls its cell's own name.
    assert entry["outputs"]["entry_tenants"] == ["assistant"]


@pytest.mark.parametrize(("region", "stack"), sorted(CELLS.items()))
def test_each_cell_alarms_on_its_gateway_nlbs_healthy_targets(plans, region, stack) -> None:
    plan = plans[stack]
    alarm = _one(plan, ALARM, "cell-health-gateway-healthy")
    i = alarm["inputs"]
    assert i["name"] == f"modelyard-{stack}-gateway-healthy" == plan["outputs"]["cell_health_alarm_name"]
    assert (i["namespace"], i["metricName"], i["statistic"]) == ("AWS/NetworkELB", "HealthyHostCount", "Minimum")
    assert (i["comparisonOperator"], i["threshold"], i["treatMissingData"]) == ("LessThanThreshold", 1, "breaching")
    assert (i["period"], i["evaluationPeriods"], i["datapointsToAlarm"]) == (60, 2, 2)
    assert alarm["key"].startswith(f"{region}/")
    assert re.fullmatch(r"net/.+/.+", i["dimensions"]["LoadBalancer"])
    assert re.fullmatch(r"targetgroup/.+/.+", i["dimensions"]["TargetGroup"])


@pytest.mark.parametrize(("region", "stack"), sorted(CELLS.items()))
def test_the_entry_has_a_latency_record_per_cell_health_checked_through_its_alarm(entry, plans, region, stack) -> None:
    outputs = plans[stack]["outputs"]
    check = _one(entry, HEALTH_CHECK, f"entry-{region}")["inputs"]
    assert check == {
        **check,
        "type": "CLOUDWATCH_METRIC",
        "cloudwatchAlarmName": outputs["cell_health_alarm_name"],
        "cloudwatchAlarmRegion": region,
        "insufficientDataHealthStatus": "LastKnownStatus",
    }
    record = _one(entry, RECORD, f"entry-{region}")["inputs"]
    assert record["name"] == "api.llm.example.internal" and record["type"] == "A"
    assert record["setIdentifier"] == region
    assert record["latencyRoutingPolicies"] == [{"region": region}]
    assert record["aliases"] == [
        {
            "name": outputs["cell_gateway_dns_name"],
            "zoneId": outputs["cell_gateway_zone_id"],
            "evaluateTargetHealth": True,
        }
    ]
    assert record["healthCheckId"]


def test_the_entrys_private_zone_is_attached_to_every_cells_vpc_and_kept(entry, plans) -> None:
    (zone,) = [z for z in by_type(entry, "aws:route53/zone:Zone") if z["name"] == "entry-zone"]
    assert zone["inputs"]["name"] == "llm.example.internal"
    assert sorted((v["vpcRegion"], v["vpcId"]) for v in zone["inputs"]["vpcs"]) == sorted(
        (region, plans[stack]["outputs"]["cell_vpc_id"]) for region, stack in CELLS.items()
    )
    assert zone["protect"] and zone["retain_on_delete"]
    assert zone["inputs"]["tags"]["modelyard:stack"] == "core-global"


def test_the_cell_contract_is_what_the_cells_export_and_the_docs_list(plans) -> None:
    from components.platform import CELL_OUTPUT_PREFIX, CellOutputs

    fields = {f.name for f in dataclasses.fields(CellOutputs)}
    assert all(name.startswith(CELL_OUTPUT_PREFIX) for name in fields)
    for stack in CELLS.values():
        assert {k for k in plans[stack]["outputs"] if k.startswith(CELL_OUTPUT_PREFIX)} == fields
    assert not any(k.startswith(CELL_OUTPUT_PREFIX) for k in plans["pilot"]["outputs"])
    text = (ROOT / "docs" / "regions.md").read_text()
    table = text.split("| output | what the global stack (or a replicating cell) does with it |", 1)[1]
    assert set(re.findall(r"`(cell_[a-z_]+)`", table.split("\n\n", 1)[0])) == fields


def test_core_replicates_its_weights_into_the_eu_cells_own_bucket_with_its_key(plans) -> None:
    (config,) = by_type(plans["core"], "aws:s3/bucketReplicationConfig:BucketReplicationConfig")
    (rule,) = config["inputs"]["rules"]
    eu = plans["core-eu"]["outputs"]
    # Only the weights of the one model core-eu serves; no tenant's prefix leaves us-east-1.
    assert rule["filter"] == {"prefix": "models/llama-3.1-8b/"}
    policy = next(
        json.loads(p["inputs"]["policy"])
        for p in by_type(plans["core"], "aws:iam/rolePolicy:RolePolicy")
        if p["name"] == "models-replication-role"
    )
    (read,) = [st for st in policy["Statement"] if st["Sid"] == "ReadSourceVersions"]
    assert all(arn.endswith("/models/llama-3.1-8b/*") for arn in read["Resource"])
    assert rule["destination"]["bucket"] == f"arn:aws:s3:::{eu['cell_model_bucket']}"
    assert rule["destination"]["encryptionConfiguration"] == {"replicaKmsKeyId": eu["cell_model_key_arn"]}
    assert eu["cell_model_key_arn"].startswith("arn:aws:kms:eu-west-1:")
    # No replica bucket of core's own: the cell's bucket is the replica.
    assert not by_type(plans["core"], "modelyard:aws:ModelReplica")
    line = next(
        ln for ln in plans["core"]["cost"]["lines"] if ln["item"] == f"replication to {eu['cell_model_bucket']}"
    )
    # One revision a month of llama-8b's 16 GB at $0.02 a GB: what crosses, not the 405B's and DeepSeek's too.
    assert Decimal(line["monthly"]) == Decimal("0.34") and "(llama-3.1-8b)" in line["basis"]


def test_a_replica_missing_a_model_its_cell_serves_is_refused_naming_the_key(tmp_path, capsys) -> None:
    replicas = {"eu-west-1": {"cell": "core-eu", "models": ["llama-405b"]}}
    project = _project(tmp_path, {"core": {"storage": {"replicas": replicas}}})
    with pytest.raises(InputError) as refused:
        deployment_of(project, "core-global")
    messages = [f"{p.path}: {p.message}" for p in refused.value.problems]
    assert any(
        m.startswith("modelyard:storage.replicas.eu-west-1.models:") and "serves llama-3.1-8b" in m for m in messages
    ), messages
    # The cell's own plan refuses it too (it reads the cell it replicates into).
    assert cli_main(["plan", "--stack", "core", "--project-dir", str(project)]) == 2
    err = capsys.readouterr().err
    assert "modelyard:storage.replicas.eu-west-1.models" in err and "Traceback" not in err


def test_the_eu_cell_serves_only_the_small_model_for_its_tenants(plans) -> None:
    from components.plan.run import load_settings

    eu = load_settings(ROOT, "core-eu")[1]
    assert set(eu.models) == {"llama-8b"} and set(eu.tenants) == {"assistant", "eu-health"}
    assert eu.tenants["eu-health"].regions == ("eu-west-1",)
    assert eu.region == "eu-west-1" and all(z.startswith("euw1-") for z in eu.network.zone_ids)


def test_the_deployments_tco_is_its_cells_plus_the_entry_and_inside_the_enterprise_band(entry, plans) -> None:
    cost = entry["cost"]
    cells = sum((Decimal(plans[s]["cost"]["monthly_total"]) for s in CELLS.values()), Decimal(0))
    assert Decimal(cost["monthly_total"]) == cells + Decimal(cost["global_monthly"])
    # The entry's zone and two health checks at $0.50, and the metrics workspace, its key, peering and endpoint
    # (tests/test_metrics_peering.py).
    entry_lines = [ln for ln in cost["lines"] if ln["id"].startswith("us-east-1/entry/")]
    assert sum(Decimal(ln["monthly"]) for ln in entry_lines) == Decimal("1.50")
    assert Decimal(cost["global_monthly"]) == sum(Decimal(ln["monthly"]) for ln in cost["lines"])
    low, high = BANDS[Tier.ENTERPRISE]
    assert cost["band"]["within"] and low <= Decimal(cost["annual_total"]) <= high
    assert {r: c["stack"] for r, c in cost["cells"].items()} == CELLS
    assert cost["cells"]["eu-west-1"]["region_price_multiplier"] == "1.1"
    assert Decimal(cost["aws_monthly"]) == Decimal(cost["by_category"]["aws"])


def test_tco_of_the_global_stack_prints_each_region_and_the_total(capsys, entry) -> None:
    assert cli_main(["tco", "--stack", "core-global"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"eu-west-1\s+core-eu\s+\$[\d,.]+ a month", out)
    assert re.search(r"us-east-1\s+core\s+\$[\d,.]+ a month", out)
    assert "inside the band" in out
    assert cli_main(["tco", "--stack", "core-eu"]) == 0
    assert "judged with its deployment (a cell of core-global" in capsys.readouterr().out


# --- validation across cells: a scratch copy of the shipped stacks, one stack file changed -------------------------


def _project(tmp_path: Path, changes: dict[str, dict[str, Any]]) -> Path:
    """The kit's stacks in a scratch project; `changes` maps a stack to `modelyard:` keys it sets (None removes)."""
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copytree(ROOT / "stacks", tmp_path / "stacks")
    (tmp_path / "charts").symlink_to(ROOT / "charts")
    for stack, keys in changes.items():
        path = tmp_path / "stacks" / f"Pulumi.{stack}.yaml"
        data = yaml.safe_load(path.read_text())
        for key, value in keys.items():
            if value is None:
                data["config"].pop(f"modelyard:{key}", None)
            else:
                data["config"][f"modelyard:{key}"] = value
        path.write_text(yaml.safe_dump(data))
    return tmp_path


def _eu_tenants(**tenants: Any) -> dict[str, Any]:
    return {"core": None, "analytics": None, **tenants}


GLOBAL = yaml.safe_load((ROOT / "stacks" / "Pulumi.core-global.yaml").read_text())["config"]["modelyard:global"]
ASSISTANT = {"models": ["llama-8b"], "gpu_quota": 8, "rpm_limit": 600, "tpm_limit": 360000}
EU_HEALTH = {"models": ["llama-8b"], "regions": ["eu-west-1"], "rpm_limit": 300, "tpm_limit": 180000}
EU_KEY = yaml.safe_load((ROOT / "stacks" / "Pulumi.core-eu.yaml").read_text())["config"]["modelyard:deploy"][
    "secrets_key_arn"
]
CORE_TENANTS = {"assistant": {"models": ["llama-8b"], "rpm_limit": 600, "tpm_limit": 360000}}


@pytest.mark.parametrize(
    ("changes", "path", "words"),
    [
        # A cell without the models its tenants need: assistant calls llama-405b in us-east-1, not in eu-west-1.
        (
            {
                "core": {
                    "tenants": {"assistant": {**CORE_TENANTS["assistant"], "models": ["llama-8b", "llama-405b"]}},
                    "models": {"llama-8b": {"owner": "core"}, "llama-405b": {"owner": "core"}},
                }
            },
            "global.cells.eu-west-1",
            "serves tenant assistant without llama-405b",
        ),
        # Residency: eu-health, pinned to eu-west-1 in the EU cell, also served (unpinned) by the us-east-1 cell.
        (
            {"core": {"tenants": {**CORE_TENANTS, "eu-health": {**EU_HEALTH, "regions": []}}}},
            "global.cells.us-east-1",
            "which is pinned to eu-west-1: its prompts would be processed in us-east-1",
        ),
        # A cell that does not say it is one (no alarm for the entry's health check).
        (
            {"core-eu": {"deploy": {"secrets_key_arn": EU_KEY}, "monitoring": None}},
            "global.cells.eu-west-1",
            "is not a cell of 'core-global'",
        ),
        # A cell whose certificate would not name the entry.
        (
            {"core-eu": {"gateway": {"hostname": "eu.llm.acmecorp.io", "public_zone_id": "Z0123456789ABC"}}},
            "global.cells.eu-west-1",
            "requests a certificate for eu.llm.acmecorp.io alone",
        ),
        # A cell in another region than the key says.
        (
            {"core-global": {"global": {**GLOBAL, "cells": {"eu-west-1": "core", "us-east-1": "core-eu"}}}},
            "global.cells.eu-west-1",
            "is in us-east-1",
        ),
        (
            {"core-global": {"global": {**GLOBAL, "routing": "failover"}}},
            "global.primary",
            "failover needs the primary",
        ),
        ({"core-global": {"global": {**GLOBAL, "cells": {"us-east-1": "core"}}}}, "global.cells", "two cells or more"),
        (
            {"core-global": {"global": {**GLOBAL, "cells": {**GLOBAL["cells"], "eu-west-2": "nowhere"}}}},
            "global.cells.eu-west-2",
            "no cell stack 'nowhere'",
        ),
        ({"core-global": {"preset": "enterprise"}}, "preset", "holds modelyard:global only"),
    ],
)
def test_a_deployment_across_regions_is_refused_naming_the_key(tmp_path, changes, path, words) -> None:
    project = _project(tmp_path, changes)
    with pytest.raises(InputError) as refused:
        deployment_of(project, "core-global")
    messages = [f"{p.path}: {p.message}" for p in refused.value.problems]
    assert any(m.startswith(f"modelyard:{path}:") and words in m for m in messages), messages


def test_a_residency_violation_in_the_cell_itself_exits_2_naming_the_key(tmp_path, capsys) -> None:
    project = _project(tmp_path, {"core": {"tenants": {**CORE_TENANTS, "eu-health": EU_HEALTH}}})
    code = cli_main(["plan", "--stack", "core-global", "--project-dir", str(project)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "modelyard:tenants.eu-health.regions" in err and "pinned to eu-west-1" in err


def test_failover_routing_names_a_primary_and_a_secondary(tmp_path, plans) -> None:
    from components.plan.run import plan_global

    project = _project(tmp_path, {"core-global": {"global": {**GLOBAL, "routing": "failover", "primary": "us-east-1"}}})
    plan = plan_global(project, "core-global", cell_plans=plans)
    records = [r for r in by_type(plan, RECORD) if r["name"].startswith("entry-")]
    policies = {r["name"]: r["inputs"]["failoverRoutingPolicies"] for r in records}
    assert policies == {"entry-us-east-1": [{"type": "PRIMARY"}], "entry-eu-west-1": [{"type": "SECONDARY"}]}
    assert not any("latencyRoutingPolicies" in r["inputs"] for r in records)


def test_a_replica_cell_that_is_not_a_cell_of_that_region_exits_2(tmp_path, capsys) -> None:
    project = _project(tmp_path, {"core": {"storage": {"replicas": {"eu-west-1": {"cell": "product"}}}}})
    code = cli_main(["plan", "--stack", "core", "--project-dir", str(project)])
    err = capsys.readouterr().err
    assert code == 2 and "modelyard:storage.replicas.eu-west-1.cell" in err and "is not a cell in eu-west-1" in err


def test_a_cell_needs_a_gateway_hostname(make_settings) -> None:
    with pytest.raises(InputError) as refused:
        make_settings("moderate", deploy={"global_stack": "g"})
    assert any(
        p.path == "modelyard:deploy.global_stack" and "gateway.hostname" in p.message for p in refused.value.problems
    )


def test_the_documentation_certificate_is_refused_on_deploy() -> None:
    from components.plan.run import load_settings
    from components.settings.placeholders import placeholders

    found = {p.path for p in placeholders(load_settings(ROOT, "core-eu")[1])}
    assert "modelyard:gateway.certificate_arn" in found


def test_the_global_plan_is_json_and_diffs_against_itself(entry, tmp_path, capsys) -> None:
    path = tmp_path / "g.json"
    path.write_text(json.dumps(entry))
    assert cli_main(["diff", str(path), str(path)]) == 0
    capsys.readouterr()
