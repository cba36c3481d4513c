"""Resources made for a list entry are named after what the entry stands for (a principal's digest, a CIDR, a
role), not after its position: removing an entry leaves the others alone. Stacks named by position before move to
these names through aliases, which `modelyard diff` shows as moves."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from components.cli import main as cli_main
from components.errors import InputError
from components.options import cidr_part, digest
from components.plan.diff import diff_plans
from tests.conftest import ROOT, plan_with

GOLDEN = ROOT / "tests" / "golden" / "names" / "by-position-432667a.json"
ACCESS_ENTRY = "aws:eks/accessEntry:AccessEntry"
ASSOCIATION = "aws:eks/accessPolicyAssociation:AccessPolicyAssociation"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
ADMINS = [f"arn:aws:iam::111122223333:role/platform-{x}" for x in "abc"]


def test_digest_is_eight_hex_digits_of_sha256():
    # sha256("abc") = ba7816bf 8f01cfea ... (FIPS 180-2, appendix B.1)
    assert digest("abc") == "ba7816bf"
    assert cidr_part("10.200.0.0/16") == "10-200-0-0-16"


@pytest.fixture(scope="module")
def golden() -> dict[str, Any]:
    return json.loads(GOLDEN.read_text())


def test_a_stack_named_by_position_moves_to_the_new_names(tmp_path, golden, capsys):
    """The same settings planned by the last commit that named by position (the golden plan) and by this code:
    every such resource is found under its alias, nothing is replaced or deleted, and only Name tags change."""
    base = golden["plan"]
    head = plan_with(tmp_path, "moderate", golden["overrides"])
    diff = diff_plans(base, head)
    assert diff["counts"]["replace"] == diff["counts"]["delete"] == diff["counts"]["update"] == 0
    assert not diff["warnings"] and not diff["notes"]
    moves = {c["moved_from"]: c for c in diff["changes"] if c["action"] == "move"}
    assert sorted(moves) == sorted(r["key"] for r in base["resources"])
    names = {c["name"] for c in moves.values()}
    # Every kind the kit named by position: admins' and teams' access entries, the API's and the gateway load
    # balancer's ingress rules, the gateway state's rules, the image cache's role attachments.
    assert {re.sub(r"-[0-9a-f]{8}$|-(\d+-){4}\d+$", "-*", n) for n in names} == {
        "cluster-admin-*",
        "cluster-api-from-*",
        "gateway-exposure-lb-in-*",
        "gateway-state-database-from-cluster",
        "gateway-state-redis-from-cluster",
        "image-cache-pull-karpenter",
        "image-cache-pull-system",
        "isolation-team-*",
    }
    for old, change in moves.items():
        assert {f["path"] for f in change["fields"]} <= {"tags.Name"}, old
    # Each moved to what its old position held: the same principal, CIDR or role.
    before = {r["key"]: r["inputs"] for r in base["resources"]}
    after = {r["key"]: r["inputs"] for r in head["resources"]}
    for old, change in moves.items():
        same = {k: v for k, v in before[old].items() if k != "tags"}
        assert same == {k: v for k, v in after[change["key"]].items() if k != "tags"}

    # What a reviewer sees: `modelyard diff` on the two files.
    (tmp_path / "base.json").write_text(json.dumps(base))
    (tmp_path / "head.json").write_text(json.dumps(head))
    assert cli_main(["diff", str(tmp_path / "base.json"), str(tmp_path / "head.json")]) == 0
    summary = capsys.readouterr().out.splitlines()[0]
    assert summary.endswith(f"0 to change, 0 to replace, 0 to delete, {len(moves)} to move.")


def test_by_position_removing_the_first_admin_replaced_the_others(golden):
    """What the names by position did (the golden plan's): without the first admin, the second and third took its
    names, so `pulumi up` replaced their entries (another principal is another entry) and deleted the last."""
    admins = [r for r in golden["plan"]["resources"] if re.search(r"-admin-\d$", r["name"])]

    def shifted(r: dict[str, Any]) -> dict[str, Any]:
        index = int(r["name"].rsplit("-", 1)[1])
        out = copy.deepcopy(r)
        for field in ("key", "name", "urn"):
            out[field] = out[field].replace(f"admin-{index}", f"admin-{index - 1}")
        return out

    head = [shifted(r) for r in admins if not r["name"].endswith("-0")]
    diff = diff_plans({**golden["plan"], "resources": admins}, {**golden["plan"], "resources": head})
    assert diff["counts"] == {"create": 0, "update": 0, "replace": 4, "delete": 2, "move": 0}
    for change in (c for c in diff["changes"] if c["action"] == "replace"):
        assert [f["path"] for f in change["fields"] if f["forces_replacement"]] == ["principalArn"]


def _access(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["key"]: r for r in plan["resources"] if r["type"] in (ACCESS_ENTRY, ASSOCIATION, INGRESS)}


def test_removing_the_first_entry_leaves_the_others_alone(tmp_path: Path):
    three = {"cluster": {"admins": ADMINS, "private_access_cidrs": ["10.200.0.0/16", "10.201.0.0/16", "10.202.0.0/16"]}}
    two = {"cluster": {"admins": ADMINS[1:], "private_access_cidrs": ["10.201.0.0/16", "10.202.0.0/16"]}}
    (tmp_path / "three").mkdir()
    (tmp_path / "two").mkdir()
    base = plan_with(tmp_path / "three", "moderate", three)
    head = plan_with(tmp_path / "two", "moderate", two)
    diff = diff_plans(base, head)
    gone = [(c["name"], c["type"]) for c in diff["changes"] if c["action"] == "delete"]
    assert sorted(gone) == sorted(
        [
            (f"cluster-admin-{digest(ADMINS[0])}", ACCESS_ENTRY),
            (f"cluster-admin-{digest(ADMINS[0])}", ASSOCIATION),
            (f"cluster-api-from-{cidr_part('10.200.0.0/16')}", INGRESS),
        ]
    ), "the removed entries only"
    # The two admins and two CIDRs left: the same keys, the same inputs, not in the diff at all.
    kept = {k: r for k, r in _access(head).items() if k in _access(base)}
    assert len([r for r in kept.values() if r["name"].startswith("cluster-admin-")]) == 4
    assert len([r for r in kept.values() if r["name"].startswith("cluster-api-from-")]) == 2
    assert not {c["key"] for c in diff["changes"]} & set(kept)
    assert {k: r["inputs"] for k, r in kept.items()} == {k: _access(base)[k]["inputs"] for k in kept}
    assert diff["counts"] == {"create": 0, "update": 0, "replace": 0, "delete": 3, "move": 0}


@pytest.mark.parametrize(
    ("overrides", "path"),
    [
        ({"cluster": {"admins": [ADMINS[0], ADMINS[1], ADMINS[0]]}}, "cluster.admins[2]"),
        ({"cluster": {"private_access_cidrs": ["10.200.0.0/16", "10.200.0.0/16"]}}, "cluster.private_access_cidrs[1]"),
        (
            {"gateway": {"hostname": "llm.example.internal", "allowed_cidrs": ["10.50.0.0/16", "10.50.0.0/16"]}},
            "gateway.allowed_cidrs[1]",
        ),
        ({"tenants": {"product": {"principals": [ADMINS[1], ADMINS[1]]}}}, "tenants.product.principals[1]"),
    ],
)
def test_an_entry_listed_twice_is_refused(make_settings, overrides, path):
    """Two entries alike would name two resources alike; the settings say which, before anything is built."""
    with pytest.raises(InputError) as exc:
        make_settings("moderate", **overrides)
    found = {p.path: p.message for p in exc.value.problems}
    assert found[f"modelyard:{path}"] == f"repeats {path.rsplit('[', 1)[0]}[0]: list each once"
