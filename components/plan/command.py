"""`modelyard plan`: run the stack's program offline and write what it would create."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from components.errors import ExitCode, InputError, Problem, redact_data

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Written into a --manifests folder: the files the last plan wrote there, so the next one removes exactly those
# (objects that no longer exist leave no stale file behind) and nothing else.
MANIFESTS_MARKER = ".modelyard-manifests"
MARKER_HEADER = "# written by `modelyard plan --manifests`: the files below are removed before the next plan writes\n"


def owned_by_plan(directory: Path) -> bool:
    """A folder `--manifests` may write into: empty, or written by it before (its marker file present)."""
    return (directory / MANIFESTS_MARKER).is_file() or not any(directory.iterdir())


def replace_manifests(plan: dict[str, object], directory: Path) -> list[Path]:
    """Remove the files the previous plan wrote (its marker lists them); write this plan's; list them in the marker."""
    from components.plan.render import write_manifests

    directory.mkdir(parents=True, exist_ok=True)
    marker = directory / MANIFESTS_MARKER
    if marker.is_file():
        root = directory.resolve()
        for line in marker.read_text(encoding="utf-8").splitlines():
            old = (directory / line).resolve()
            if line and not line.startswith("#") and old.parent.is_relative_to(root) and old.is_file():
                old.unlink()
                if old.parent != root and not any(old.parent.iterdir()):
                    old.parent.rmdir()
    written = write_manifests(plan, directory)
    listed = sorted(path.relative_to(directory).as_posix() for path in written)
    marker.write_text(MARKER_HEADER + "".join(f"{name}\n" for name in listed), encoding="utf-8")
    return written


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelyard plan",
        description="Run the same program `pulumi up` runs, under the SDK's mocks: no AWS credentials, "
        "no cluster, no Pulumi CLI. Prints a summary per component (the resource tree with --tree); writes plan JSON, "
        "markdown and manifests.",
    )
    parser.add_argument("--stack", required=True, help="a stack of stacks/Pulumi.<stack>.yaml")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write plan JSON v1 here")
    parser.add_argument("--markdown", type=Path, metavar="FILE", help="write a markdown summary here")
    parser.add_argument(
        "--manifests",
        type=Path,
        metavar="DIR",
        help="write one YAML file per Kubernetes object into a new or empty folder, or one this command wrote "
        "before (its previous files are removed first)",
    )
    parser.add_argument(
        "--tree", action="store_true", help="also print the resource tree, counts by type, unit economics, outputs"
    )
    parser.add_argument(
        "--project-dir",
        type=Path,
        default=PROJECT_ROOT,
        metavar="DIR",
        help="the folder holding Pulumi.yaml and the stacks (default: this kit)",
    )
    parser.add_argument(
        "--preview",
        action="store_true",
        help="answer like `pulumi preview` for a new stack: computed outputs are unknown",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="exit 4 when a policy rule is violated (violations are printed either way)",
    )
    return parser


def check_outputs(json_file: Path | None, markdown_file: Path | None, manifests_dir: Path | None) -> None:
    """Refuse every output path that cannot be written, before anything is planned or written (exit 2)."""
    problems = []
    for option, path in (("--json", json_file), ("--markdown", markdown_file)):
        if path is None:
            continue
        if path.is_dir():
            problems.append(Problem(path=option, message=f"{path} is a directory: give a file name"))
        elif not path.parent.is_dir():
            problems.append(Problem(path=option, message=f"folder {path.parent} does not exist"))
    if manifests_dir is not None:
        existing = next((p for p in (manifests_dir, *manifests_dir.parents) if p.exists()), None)
        if existing is not None and not existing.is_dir():
            problems.append(Problem(path="--manifests", message=f"{existing} is a file: give a folder"))
        elif manifests_dir.is_dir() and not owned_by_plan(manifests_dir):
            problems.append(
                Problem(
                    path="--manifests",
                    message=f"{manifests_dir} holds files `modelyard plan` did not write (no {MANIFESTS_MARKER}): "
                    "give a new or empty folder",
                )
            )
    if problems:
        raise InputError(problems)


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    check_outputs(args.json, args.markdown, args.manifests)

    from components.plan.engine import dump_json
    from components.plan.render import markdown_report, text_report
    from components.plan.run import plan_stack

    # The last line of defence: the settings refuse a secret pasted into a plain setting, and the plan prints
    # secret inputs as [secret]; should a secret's text reach the plan some other way, no output holds it.
    plan = redact_data(plan_stack(args.project_dir, args.stack, preview=args.preview))
    if args.json is not None:
        args.json.write_text(dump_json(plan), encoding="utf-8")
    if args.markdown is not None:
        args.markdown.write_text(markdown_report(plan), encoding="utf-8")
    if args.manifests is not None:
        replace_manifests(plan, args.manifests)
    from components.policy import evaluate

    violations = evaluate(plan)
    sys.stdout.write(text_report(plan, tree=args.tree, violations=violations))
    sys.stdout.write(f"\npolicy: {len(violations)} violation{'s' if len(violations) != 1 else ''}\n")
    for violation in violations:
        sys.stdout.write(f"  {violation}\n")
    if violations and args.strict:
        return ExitCode.POLICY
    return ExitCode.OK
