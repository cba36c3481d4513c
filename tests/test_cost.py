"""Cost of ownership (issue 10): the price book, pricing of plan resources and controller-made nodes,
TCO lines, the preset bands, cost per token, break-even and `modelyard tco`."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from components.cli import main as cli_main
from components.contract import GPU_ROOT_VOLUME_GIB, POOL_LABEL, SYSTEM_POOL
from components.cost.estimate import (
    BANDS,
    FREE_TYPES,
    PRICERS,
    Pricer,
    gpu_fleets,
    plan_lines,
    stack_cost,
)
from components.cost.prices import PriceBookError, default_book, parse
from components.errors import InputError
from components.settings.types import CostSettings


def resource(key: str, type_: str, **inputs: Any) -> dict[str, Any]:
    return {"key": key, "type": type_, "name": key, "custom": True, "parent": None, "inputs": inputs}


def plan_of(*resources: dict[str, Any], preset: str = "minimal") -> dict[str, Any]:
    return {
        "schema": "modelyard.plan/v1",
        "stack": "test",
        "preset": preset,
        "resources": list(resources),
        "manifests": [],
    }


def by_id(cost: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {line["id"]: line for line in cost["lines"]}


SMALL_PLAN = plan_of(
    resource("eks", "aws:eks/cluster:Cluster", name="c", version="1.33"),
    resource("nat", "aws:ec2/natGateway:NatGateway"),
    resource("eip", "aws:ec2/eip:Eip"),
    resource(
        "ep",
        "aws:ec2/vpcEndpoint:VpcEndpoint",
        serviceName="com.amazonaws.us-east-1.sts",
        vpcEndpointType="Interface",
        subnetIds=["a", "b", "c"],
    ),
    resource(
        "s3", "aws:ec2/vpcEndpoint:VpcEndpoint", serviceName="com.amazonaws.us-east-1.s3", vpcEndpointType="Gateway"
    ),
    resource("logs", "aws:cloudwatch/logGroup:LogGroup", name="/x", retentionInDays=30),
    resource("key", "aws:kms/key:Key"),
    resource(
        "ng",
        "aws:eks/nodeGroup:NodeGroup",
        instanceTypes=["m7i.large"],
        scalingConfig={"desiredSize": 2},
        labels={POOL_LABEL: SYSTEM_POOL},
    ),
    resource("vol", "aws:ebs/volume:Volume", size=100, iops=4000, throughput=125),
    resource("subnet", "aws:ec2/subnet:Subnet"),
    resource("mystery", "aws:foo/bar:Baz"),
)


def test_price_book_every_price_has_a_source_date_and_quality() -> None:
    book = default_book()
    assert book.prices and book.proprietary and book.hosted_open
    for price in book.prices.values():
        assert price.source.citation and price.source.date and price.quality in "MOTU"
        assert price.usd >= 0
    # Prices marked U in docs/sources.md#prices-not-confirmed are assumptions here too.
    for key in (
        "fsx_lustre_250_gb_month",
        "guardduty_eks_vcpu_month",
        "logs_vended_ingest_gb",
        "rds_db.r7g.large_hour",
    ):
        assert book[key].assumed, key
    assert not book["nat_gateway_hour"].assumed
    assert book["eks_cluster_hour"].usd == Decimal("0.10")


def test_price_book_refuses_missing_and_dead_sources() -> None:
    with pytest.raises(PriceBookError) as err:
        parse(
            {
                "sources": {
                    "A": {"citation": "x", "date": "2026", "quality": "M"},
                    "DEAD": {"citation": "y", "date": "2026", "quality": "T"},
                },
                "prices": {
                    "p": {"usd": 1, "unit": "hour", "source": "NOPE"},
                    "q": {"usd": "x", "unit": "h", "source": "A"},
                },
            }
        )
    text = "\n".join(err.value.problems)
    assert "prices.p.source" in text and "prices.q.usd" in text and "sources.DEAD: cited by no price" in text


def test_price_arithmetic_on_a_small_plan(make_settings) -> None:
    settings = make_settings("minimal")
    pricer = Pricer(book=default_book(), settings=CostSettings(), region="us-east-1", zones=2)
    lines, free = plan_lines(SMALL_PLAN, settings, pricer)
    got = {line.id: line.monthly for line in lines}
    assert got["eks"] == Decimal("73.00")  # 0.10 x 730
    assert got["nat"] == Decimal("37.35")  # 0.045 x 730 + 0.045 x 100 GB
    assert got["eip"] == Decimal("3.65")  # 0.005 x 730
    assert got["ep"] == Decimal("22.90")  # 0.01 x 730 x 3 zones + 0.01 x 100 GB
    assert got["s3"] == Decimal("0.00")
    assert got["logs"] == Decimal("2.65")  # 5 GB x 0.50 + 5 GB x 1 month x 0.03
    assert got["key"] == Decimal("1.00")
    assert got["ng"] == Decimal("147.17")  # 2 x 0.1008 x 730
    assert got["ng#volumes"] == Decimal("3.20")  # 2 x 20 GB x 0.08
    assert got["vol"] == Decimal("13.00")  # 100 GB x 0.08 + 1000 IOPS x 0.005
    mystery = next(line for line in lines if line.id == "mystery")
    assert mystery.status == "not priced" and mystery.monthly == 0 and "no rule" in mystery.basis
    assert {"type": "aws:ec2/subnet:Subnet", "count": 1, "reason": "subnets are free"} in free
    assert pricer.assumptions["cost.nat_gb_per_month"] == "100"


def test_region_rule_is_an_explicit_assumption(make_settings) -> None:
    settings = make_settings("minimal")
    plan = plan_of(resource("eks", "aws:eks/cluster:Cluster"))
    away = Pricer(book=default_book(), settings=CostSettings(), region="eu-west-1")
    assert away.region_multiplier == Decimal("1.1")
    (line,) = plan_lines(plan, settings, away)[0]
    assert line.monthly == Decimal("80.30") and "region rule (eu-west-1)" in line.basis
    own = Pricer(book=default_book(), settings=CostSettings(region_price_multiplier=1.25), region="eu-west-1")
    assert plan_lines(plan, settings, own)[0][0].monthly == Decimal("91.25")


def test_gpu_nodes_from_pools_and_sizing(make_settings) -> None:
    settings = make_settings("minimal")
    cost = stack_cost(plan_of(), settings)
    line = by_id(cost)["controllers/gpu/l40s/llama-8b"]
    # One g6e.xlarge always on for replicas.min 1, one more for 25% of the hours up to replicas.max 2.
    assert Decimal(line["monthly"]) == Decimal("1698.16")  # 1.861 x 730 x 1.25
    assert "KARP-PRICE" in line["source"]
    # Each node's 200 GiB gp3 root volume (the size the node classes provision) for the same node-hours.
    assert GPU_ROOT_VOLUME_GIB == 200
    assert Decimal(by_id(cost)["controllers/gpu/l40s/llama-8b#volumes"]["monthly"]) == Decimal("20.00")  # x 0.08 x 1.25


def test_spot_pool_uses_the_smallest_observed_discount(make_settings) -> None:
    settings = make_settings("minimal", pools={"l40s": {"instance_types": ["g6e.2xlarge"], "capacity": "spot"}})
    line = by_id(stack_cost(plan_of(), settings))["controllers/gpu/l40s/llama-8b"]
    expected = (Decimal("2.24208") * (1 - Decimal("0.51")) * 730 * Decimal("1.25")).quantize(Decimal("0.01"))
    assert Decimal(line["monthly"]) == expected and "SKY" in line["source"]


def test_pool_ceiling_caps_the_burst(make_settings) -> None:
    settings = make_settings("moderate")
    fleets = {f.model_key: f for f in gpu_fleets(settings)}
    assert fleets["llama-70b"].always_nodes == 2 and fleets["llama-70b"].burst_nodes == 1  # 12 GPUs / 4 per node
    for f in fleets.values():
        pool = settings.pools[f.pool]
        assert (f.always_nodes + f.burst_nodes) * f.instance.gpu_count <= pool.max_gpus


def test_an_instance_without_a_sourced_price_is_a_visible_unpriced_line(make_settings) -> None:
    settings = make_settings("enterprise", pools={"h200": {"instance_types": ["p5e.48xlarge"]}})
    cost = stack_cost(plan_of(preset="enterprise"), settings)
    line = by_id(cost)["controllers/gpu/h200/deepseek-r1"]
    assert line["status"] == "unpriced" and line["monthly"] == "0.00"
    assert "controllers/gpu/h200/deepseek-r1" in cost["unpriced"]


def test_tco_lines_people_tools_hidden(make_settings) -> None:
    settings = make_settings(
        "minimal", cost={"fte": 1, "evaluation_usd_per_month": 100, "compliance_usd_per_month": 200}
    )
    cost = stack_cost(plan_of(), settings)
    lines = by_id(cost)
    assert lines["people/engineers"]["monthly"] == "17250.00"  # 207,000 / 12
    assert "BLS" in lines["people/engineers"]["source"]
    assert lines["hidden/evaluation"]["monthly"] == "100.00" and lines["hidden/compliance"]["monthly"] == "200.00"
    assert {ln["category"] for ln in cost["lines"]} == {"aws", "people", "tools", "hidden"}
    total = sum(Decimal(ln["monthly"]) for ln in cost["lines"])
    assert Decimal(cost["monthly_total"]) == total
    assert Decimal(cost["annual_total"]) == total * 12
    assert Decimal(cost["aws_monthly"]) == sum(
        Decimal(ln["monthly"]) for ln in cost["lines"] if ln["category"] == "aws"
    )
    for key in ("currency", "band", "per_million_output_tokens", "apis", "break_even"):
        assert key in cost
    assert {a["api"] for a in cost["apis"]} == {"gpt-4o-mini", "gpt-5", "claude-sonnet"}
    assert {a["api"] for a in cost["break_even"]["apis"]} == {"gpt-4o-mini", "gpt-5", "claude-sonnet"}
    assert cost["break_even"]["hosted"]["statement"]


def test_price_overrides_are_yours_and_checked(make_settings) -> None:
    settings = make_settings("minimal", cost={"prices": {"eks_cluster_hour": 0.2}})
    cost = stack_cost(plan_of(resource("eks", "aws:eks/cluster:Cluster")), settings)
    line = by_id(cost)["eks"]
    assert line["monthly"] == "146.00" and line["quality"] == "U" and "STACK" in line["source"]
    with pytest.raises(InputError, match=r"cost.prices.nat_hour"):
        stack_cost(plan_of(), make_settings("minimal", cost={"prices": {"nat_hour": 1}}))


def test_cost_per_token_and_break_even_arithmetic(make_settings) -> None:
    cost = stack_cost(plan_of(), make_settings("minimal"))
    tokens = cost["tokens"]
    mtok = Decimal(tokens["million_output_tokens_per_month"])
    assert abs(Decimal(cost["per_million_output_tokens"]) - Decimal(cost["monthly_total"]) / mtok) < Decimal("0.01")
    gpt5 = next(a for a in cost["apis"] if a["api"] == "gpt-5")
    assert gpt5["usd_per_million_output_tokens"] == "13.75"  # 3 x 1.25 input + 10.00 output
    # The JSON's volume is rounded to 0.1 million tokens: the bill is within 13.75 x 0.05 of it.
    assert abs(Decimal(gpt5["api_monthly_at_same_volume"]) - Decimal("13.75") * mtok) < 1


def test_every_shipped_stack_is_inside_the_band_of_its_tier(plans) -> None:
    from components.plan.run import load_settings
    from tests.conftest import ROOT

    assert plans
    for stack, plan in plans.items():
        cost = plan["cost"]
        settings = load_settings(ROOT, stack)[1]
        tier = settings.tier
        assert tier is not None, f"{stack}: a shipped preset names its cost tier"
        if settings.deploy.global_stack is not None:
            # A cell is judged with its deployment: tests/test_cells.py checks the global stack's total.
            assert cost["band"] is None and cost["deployment"] == settings.deploy.global_stack
            continue
        low, high = BANDS[tier]
        annual = Decimal(cost["annual_total"])
        assert cost["band"]["within"] and low <= annual <= high, (stack, annual)
        assert cost["currency"] == "USD" and cost["per_million_output_tokens"] is not None


def test_every_resource_type_of_the_shipped_stacks_is_priced_or_declared_free(plans) -> None:
    for stack, plan in plans.items():
        not_priced = [ln["item"] for ln in plan["cost"]["lines"] if ln["status"] == "not priced"]
        assert not not_priced, f"{stack}: add a rule in components/cost/estimate.py for {not_priced}"
        for entry in plan["cost"]["free"]:
            assert entry["reason"]
    assert not set(FREE_TYPES) & set(PRICERS)


def test_cost_is_deterministic(plans, make_settings) -> None:
    settings = make_settings("moderate")
    plan = plans.get("product") or plan_of(preset="moderate")
    assert json.dumps(stack_cost(plan, settings)) == json.dumps(stack_cost(plan, settings))


def test_tco_command_text_and_json(capsys, monkeypatch, plans) -> None:
    import components.plan.run

    monkeypatch.setattr(components.plan.run, "plan_stack", lambda _root, stack: plans[stack])  # planned once
    assert cli_main(["tco", "--stack", "pilot"]) == 0
    out = capsys.readouterr().out
    for text in (
        "AWS subtotal a month",
        "Monthly total",
        "Annual total",
        "inside the band",
        "per million output tokens",
        "GPT-5",
        "Claude Sonnet",
        "GPT-4o-mini",
        "<- cheapest",
        "Break-even at the stack's own maximum replicas",
        "[U]",
    ):
        assert text in out, text
    assert cli_main(["tco", "--stack", "pilot", "--json"]) == 0
    cost = json.loads(capsys.readouterr().out)
    assert cost["band"]["preset"] == "minimal" and cost["band"]["within"] is True


def test_tco_command_unknown_stack_is_bad_input(capsys) -> None:
    assert cli_main(["tco", "--stack", "nope"]) == 2


def test_load_balancers_come_from_the_manifests_or_are_expected_for_the_gateway(make_settings) -> None:
    # Without gateway.hostname there is no load balancer; with one and no NLB in the plan (a Kubernetes layer
    # planned alone), the gateway's NLB is expected.
    assert "controllers/lb/gateway" not in by_id(stack_cost(plan_of(), make_settings("minimal")))
    certificate = "arn:aws:acm:us-east-1:111122223333:certificate/01234567-89ab-cdef-0123-456789abcdef"
    settings = make_settings("minimal", gateway={"hostname": "llm.example.internal", "certificate_arn": certificate})
    assert Decimal(by_id(stack_cost(plan_of(), settings))["controllers/lb/gateway"]["monthly"]) == Decimal("20.81")
    svc = resource("gw", "kubernetes:core/v1:Service", spec={"type": "LoadBalancer"})
    ing = resource("web", "kubernetes:networking.k8s.io/v1:Ingress", spec={"ingressClassName": "alb"})
    plan = plan_of(svc, ing)
    plan["manifests"] = [
        {
            "source": "gw",
            "object": {"kind": "Service", "metadata": {"name": "gateway"}, "spec": {"type": "LoadBalancer"}},
        },
        {
            "source": "web",
            "object": {"kind": "Ingress", "metadata": {"name": "web"}, "spec": {"ingressClassName": "alb"}},
        },
    ]
    lines = by_id(stack_cost(plan, settings))
    assert "controllers/lb/gateway" not in lines
    assert lines["controllers/lb/gw/Service/gateway"]["monthly"] == "20.81"  # (0.0225 + 0.006) x 730
    assert lines["controllers/lb/web/Ingress/web"]["monthly"] == "22.27"  # (0.0225 + 0.008) x 730
    assert "gw" not in lines and "web" not in lines  # the Kubernetes objects themselves are free


def test_a_static_pool_is_priced_once(tmp_path) -> None:
    """A static pool's managed node group is in the plan: its nodes and root volumes are priced on the node group's
    line, and its fleet line says so at $0 (measured before the fix: two compute lines for one pool)."""
    from components.settings import build_settings
    from tests.conftest import config_for, plan_with

    pools = {"l40s": {"kind": "static", "capacity": "on-demand", "zone_ids": ["use1-az2"], "min_nodes": 1}}
    plan = plan_with(tmp_path, "minimal", {"pools": pools})
    settings = build_settings(project="modelyard", stack="custom", config=config_for("minimal", pools=pools))
    lines = stack_cost(plan, settings)["lines"]
    gpu_compute = [line for line in lines if line["group"] == "compute" and "g6e" in line["item"]]
    priced = [line for line in gpu_compute if Decimal(line["monthly"]) > 0]
    assert len(priced) == 1 and priced[0]["item"].startswith("node group l40s: 1 x g6e."), gpu_compute
    fleet = by_id({"lines": lines})["controllers/gpu/l40s/llama-8b"]
    assert Decimal(fleet["monthly"]) == 0 and fleet["basis"] == "priced on the node group line of the plan"
    assert "controllers/gpu/l40s/llama-8b#volumes" not in by_id({"lines": lines})
    # The same stack with the pool elastic: no node group, the fleet is priced (the control case).
    (tmp_path / "elastic").mkdir()
    elastic = plan_with(tmp_path / "elastic", "minimal", {})
    elastic_lines = by_id(
        stack_cost(elastic, build_settings(project="modelyard", stack="custom", config=config_for("minimal")))
    )
    assert Decimal(elastic_lines["controllers/gpu/l40s/llama-8b"]["monthly"]) > 0


def test_buckets_are_priced_by_what_they_hold_not_by_their_name(plans) -> None:
    """Every bucket name carries the project's name ("modelyard-..."): only the model bucket is priced at the weights'
    size, and at the checkpoints `models push` stores (core serves Llama 3.1 405B in fp8 from its bf16 checkpoint,
    812 GB, two revisions), not at the served dtype's size."""
    from components.catalog import WeightDtype, resolve_model
    from components.sizing.core import weights_gb

    core = plans["core"]
    lines = {line["id"]: line for line in core["cost"]["lines"]}
    buckets = {r["name"]: lines[r["key"]] for r in core["resources"] if r["type"] == "aws:s3/bucket:Bucket"}
    assert "checkpoints" in buckets["models-bucket"]["basis"]
    assert all("logs or bundles" in line["basis"] for name, line in buckets.items() if name != "models-bucket")
    weights_gb_on_bucket = Decimal(buckets["models-bucket"]["basis"].split(" GB")[0])
    bf16_405b = weights_gb(resolve_model("llama-3.1-405b"), WeightDtype.BF16)[0]
    assert weights_gb_on_bucket >= Decimal(2 * bf16_405b)
