"""`modelyard diff BASE.json HEAD.json [--markdown]`: what a change does to a stack and to its cost.

Both files are plan JSON v1 (`modelyard plan --json`). Text by default; --markdown prints a pull-request
comment (summary first, details folded, a mermaid diagram), within GitHub's 65,536 characters or
--max-chars; --json prints the diff as data. Exit 0 whatever the diff holds: the diff informs, the
policies (plan --strict) decide.

Between a one-stack plan and a split one (a tier change to `deploy.layers: split`), --state-moves prints the
`pulumi state move` commands that keep the resources changing stack, and what cannot move; --after-moves diffs as
`pulumi up` meets the states once those moves are done (components/plan/state_moves.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from components.errors import ExitCode, InputError, Problem


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelyard diff",
        description="Compare two plans of one stack: resources added, removed and changed field by field, "
        "replacements of stateful resources, the cost delta per line and in total, the band after the change.",
    )
    parser.add_argument("base", type=Path, help="plan JSON of the base (e.g. the target branch)")
    parser.add_argument("head", type=Path, help="plan JSON of the head (the change)")
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--markdown", action="store_true", help="print markdown for a pull-request comment")
    out.add_argument("--json", action="store_true", help="print the diff as JSON")
    out.add_argument(
        "--state-moves",
        action="store_true",
        help="print the `pulumi state move` commands that keep resources whose stack changes, and what cannot move",
    )
    parser.add_argument(
        "--after-moves",
        action="store_true",
        help="compare as after those `pulumi state move` commands: BASE's moved resources under their new stack",
    )
    parser.add_argument(
        "--max-chars",
        type=int,
        default=None,
        metavar="N",
        help="cut the markdown to N characters (default: GitHub's comment limit, 65,536)",
    )
    return parser


def _read(path: Path, argument: str) -> dict[str, Any]:
    from components.plan.document import SCHEMA

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(Problem(path=argument, message=f"{path}: no such file")) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(Problem(path=argument, message=f"{path}: not readable JSON ({exc})")) from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise InputError(Problem(path=argument, message=f"{path}: not a plan ({SCHEMA}); write one with plan --json"))
    return data


def main(argv: list[str]) -> int:
    from components.plan.diff import GITHUB_COMMENT_LIMIT, diff_plans, render_markdown, render_text

    args = _parser().parse_args(argv)
    if args.max_chars is not None and args.max_chars < 1000:
        raise InputError(Problem(path="--max-chars", message="at least 1000 characters"))
    plans, problems = [], []
    for path, argument in ((args.base, "BASE"), (args.head, "HEAD")):
        try:
            plans.append(_read(path, argument))
        except InputError as exc:
            problems += exc.problems
    if problems:
        raise InputError(problems)
    base, head = plans
    if base.get("stack") != head.get("stack"):
        sys.stderr.write(f"note: comparing stack {base.get('stack')!r} with {head.get('stack')!r}\n")
    from components.plan.state_moves import apply_moves, render, state_moves

    moves = state_moves(base, head)
    if args.state_moves:
        sys.stdout.write(render(moves))
        return ExitCode.OK
    if args.after_moves:
        base = apply_moves(base, moves)
    diff = diff_plans(base, head)
    if args.json:
        sys.stdout.write(json.dumps(diff, indent=2, sort_keys=True) + "\n")
    elif args.markdown:
        sys.stdout.write(render_markdown(diff, head, limit=args.max_chars or GITHUB_COMMENT_LIMIT))
    else:
        sys.stdout.write(render_text(diff))
    return ExitCode.OK
