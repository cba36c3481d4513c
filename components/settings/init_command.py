"""`modelyard init --stack S --preset P --region R [--models M ...]`: write stacks/Pulumi.<S>.yaml, a stack that plans.

The region's zone IDs come from components/catalog/regions.yaml: as many as the preset's network uses, chosen among
the zones that offer every GPU instance type of the preset's pools where the file knows the offerings (the first
ones otherwise, said in the file); a pool pinned to one zone moves to the first chosen zone offering its types.
`--models` keeps only the named models of the preset (the tenants keep those among theirs). Values the user must
set before `pulumi up` are written as placeholders and marked: the plan runs with them, `modelyard preflight` and
`pulumi up` refuse them, naming the key. The preset's NAT mode is written into the stack file: like the VPC's range it
belongs to the stack, so that moving the stack to another preset keeps its public subnets and NAT gateways
(docs/upgrades.md, "Changing tier"). An existing stack file is never overwritten.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from components.errors import ExitCode, InputError, Problem
from components.settings.load import load_preset, preset_names
from components.settings.placeholders import DOCUMENTATION_NETWORKS
from components.settings.schema import close_matches
from components.settings.types import NetworkSettings

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STACK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modelyard init", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", required=True, help="the new stack's name: writes stacks/Pulumi.<stack>.yaml")
    parser.add_argument("--preset", required=True, help="a preset of stacks/presets/ (minimal, moderate, enterprise)")
    parser.add_argument("--region", required=True, help="the AWS region (`modelyard catalog regions` lists them)")
    parser.add_argument("--models", nargs="+", metavar="MODEL", help="keep only these models of the preset")
    parser.add_argument(
        "--project-dir", type=Path, default=PROJECT_ROOT, metavar="DIR", help="the folder holding stacks/"
    )
    return parser


def _pool_types(preset: dict[str, Any], names: set[str] | None = None) -> list[str]:
    pools = preset.get("pools") or {}
    return sorted({t for name, pool in pools.items() if names is None or name in names for t in pool["instance_types"]})


def choose_zones(preset: dict[str, Any], region: str) -> tuple[list[str], bool]:
    """(zone IDs for the network, whether the region's offerings confirmed them)."""
    from components.catalog.regions import regions

    known = regions()
    if region not in known:
        raise InputError(
            Problem(
                path="--region",
                message=f"{region!r} has no zone IDs in components/catalog/regions.yaml{close_matches(region, known)}; "
                f"known: {', '.join(sorted(known))} (add it: python -m components.catalog.regions --refresh {region})",
            )
        )
    entry = known[region]
    count = len(preset["network"]["zone_ids"])
    offering = entry.zones_offering(_pool_types(preset))
    chosen = list((entry.zones if offering is None else offering)[:count])
    if len(chosen) < count:
        raise InputError(
            Problem(
                path="--region",
                message=f"{region} has {len(chosen)} zone(s) offering {', '.join(_pool_types(preset))} "
                f"(components/catalog/regions.yaml), the preset's network needs {count}",
            )
        )
    return chosen, offering is not None


def preset_nat(preset: dict[str, Any]) -> str:
    """The NAT mode a stack on this preset gets: the preset's `network.nat`, else the setting's default."""
    default = next(f.default for f in dataclasses.fields(NetworkSettings) if f.name == "nat")
    return str((preset.get("network") or {}).get("nat") or default)


def stack_config(preset_name: str, preset: dict[str, Any], region: str, models: list[str] | None) -> dict[str, Any]:
    """The stack's `config:` mapping (only what differs from the preset) and nothing else."""
    zones, _ = choose_zones(preset, region)
    config: dict[str, Any] = {"modelyard:preset": preset_name, "modelyard:region": region}
    config["modelyard:network"] = {"zone_ids": zones, "nat": preset_nat(preset)}
    from components.catalog.regions import regions

    entry = regions()[region]
    pools: dict[str, Any] = {}
    for name, pool in (preset.get("pools") or {}).items():
        if pool.get("zone_ids"):
            wanted = len(pool["zone_ids"])
            fits = entry.zones_offering(pool["instance_types"])
            candidates = [z for z in zones if fits is None or z in fits]
            pools[name] = {"zone_ids": candidates[:wanted]}
    if pools:
        config["modelyard:pools"] = pools
    preset_models = preset.get("models") or {}
    if models is not None:
        unknown = [m for m in models if m not in preset_models]
        if unknown:
            raise InputError(
                [
                    Problem(
                        path="--models",
                        message=f"{m!r} is not a model of preset {preset_name}{close_matches(m, preset_models)}; "
                        f"its models: {', '.join(preset_models)}",
                    )
                    for m in unknown
                ]
            )
        config["modelyard:models"] = {m: None for m in preset_models if m not in models}
        tenants = {}
        for name, tenant in (preset.get("tenants") or {}).items():
            kept = [m for m in tenant.get("models", []) if m in models]
            if kept != tenant.get("models", []):
                tenants[name] = {"models": kept}
        if tenants:
            config["modelyard:tenants"] = tenants
        if not config["modelyard:models"]:
            del config["modelyard:models"]
    arn = (preset.get("deploy") or {}).get("secrets_key_arn")
    if arn and f":{preset.get('region')}:" in arn and region != preset.get("region"):
        # The preset's placeholder names its own region; the key lives in the stack's (still a placeholder).
        config["modelyard:deploy"] = {"secrets_key_arn": arn.replace(f":{preset['region']}:", f":{region}:")}
    cluster = preset.get("cluster") or {}
    if cluster.get("endpoint") == "public-and-private":
        config["modelyard:cluster"] = {"public_cidrs": [str(DOCUMENTATION_NETWORKS[-1])]}
    return config


def to_fill(project_dir: Path, stack: str, config: dict[str, Any]) -> list[Problem]:
    """Validate the stack as the engines will (InputError if it would not plan); the placeholders left to fill."""
    import json

    from components.settings import build_settings
    from components.settings.placeholders import placeholders

    project = yaml.safe_load((project_dir / "Pulumi.yaml").read_text(encoding="utf-8"))["name"]
    encoded = {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    settings = build_settings(
        project=project, stack=stack, config=encoded, presets_dir=project_dir / "stacks" / "presets"
    )
    return placeholders(settings)


def render(
    stack: str, preset_name: str, region: str, config: dict[str, Any], verified: bool, fill: list[Problem]
) -> str:
    body = yaml.safe_dump({"config": config}, sort_keys=False, default_flow_style=None, width=120)
    zones = ", ".join(config["modelyard:network"]["zone_ids"])
    where = (
        "they offer the preset's GPU instance types as components/catalog/regions.yaml says"
        if verified
        else "the region's first zones: components/catalog/regions.yaml does not know where its GPU types are "
        "offered; check with `modelyard preflight`"
    )
    notes = [
        f"# Stack {stack}: preset {preset_name} in {region}, written by `modelyard init`.",
        f"# Plan it offline: modelyard plan --stack {stack}. Every key: docs/settings.md.",
        f"# Zones {zones}: {where}.",
        f"# network.nat {config['modelyard:network']['nat']}: the preset's NAT mode, pinned here because it belongs to "
        "the stack: moving to a preset with another one then keeps the public subnets and NAT gateways "
        '(docs/upgrades.md, "Changing tier").',
        *(f"# FILL before `pulumi up` (preflight and up refuse it): {p.path}: {p.message}" for p in fill),
    ]
    return "\n".join(notes) + "\n" + body


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    problems = []
    if not STACK_NAME.fullmatch(args.stack):
        problems.append(Problem(path="--stack", message=f"{args.stack!r}: letters, digits, '-', '_' and '.' only"))
    stacks_dir = args.project_dir / "stacks"
    target = stacks_dir / f"Pulumi.{args.stack}.yaml"
    if target.exists():
        problems.append(Problem(path="--stack", message=f"{target} exists: init never overwrites a stack file"))
    presets = preset_names(stacks_dir / "presets")
    if args.preset not in presets:
        problems.append(
            Problem(
                path="--preset",
                message=f"{args.preset!r} is not a preset{close_matches(args.preset, presets)}; "
                f"presets: {', '.join(presets)}",
            )
        )
    if problems:
        raise InputError(problems)
    preset = load_preset(args.preset, stacks_dir / "presets")
    # A split stack's Kubernetes layer is a stack file of its own, joined by layer_of (docs/deploy.md).
    layer = f"{args.stack}-k8s" if (preset.get("deploy") or {}).get("layers") == "split" else None
    layer_file = stacks_dir / f"Pulumi.{layer}.yaml"
    if layer and layer_file.exists():
        raise InputError(Problem(path="--stack", message=f"{layer_file} exists: init never overwrites a stack file"))
    config = stack_config(args.preset, preset, args.region, args.models)
    _, verified = choose_zones(preset, args.region)
    text = render(args.stack, args.preset, args.region, config, verified, [])
    with target.open("x", encoding="utf-8") as out:  # "x": never replace a file created meanwhile
        out.write(text)
    written = [target]
    if layer:
        with layer_file.open("x", encoding="utf-8") as out:
            out.write(
                f"# The Kubernetes layer of stack {args.stack} (docs/deploy.md): its settings are {args.stack}'s.\n"
                f"# Planned offline together with it: modelyard plan --stack {args.stack}\n"
                + yaml.safe_dump({"config": {"modelyard:layer_of": args.stack}}, sort_keys=False)
            )
        written.append(layer_file)
    try:
        fill = to_fill(args.project_dir, args.stack, config)
    except InputError:
        for path in written:  # a stack that would not plan is not left behind
            path.unlink()
        raise
    text = render(args.stack, args.preset, args.region, config, verified, fill)
    target.write_text(text, encoding="utf-8")
    sys.stdout.write("".join(f"wrote {p}\n" for p in written) + f"{text}\nnext: modelyard plan --stack {args.stack}\n")
    return ExitCode.OK
