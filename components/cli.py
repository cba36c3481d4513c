"""The `modelyard` command. Exit codes: 0 done, 1 kit fault, 2 bad input, 3 environment, 4 policy."""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from components.errors import EnvironmentBlocked, ExitCode, InputError, Problem

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelyard",
        description="Plan, size and operate open-weight LLM stacks on AWS EKS.",
        epilog="Exit codes: 0 done, 1 a fault of the kit, 2 bad input, 3 the environment blocks it, "
        "4 policy violations.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    plan = commands.add_parser(
        "plan",
        help="run the stack's Pulumi program offline and write what it would create",
        description="Run the same program `pulumi up` runs, under the SDK's mocks: no AWS credentials, "
        "no cluster, no Pulumi CLI. Prints the resource tree; writes plan JSON, markdown and manifests.",
    )
    plan.add_argument("--stack", required=True, help="a stack of stacks/Pulumi.<stack>.yaml")
    plan.add_argument("--json", type=Path, metavar="FILE", help="write plan JSON v1 here")
    plan.add_argument("--markdown", type=Path, metavar="FILE", help="write a markdown summary here")
    plan.add_argument("--manifests", type=Path, metavar="DIR", help="write one YAML file per Kubernetes object")
    plan.add_argument(
        "--project-dir",
        type=Path,
        default=PROJECT_ROOT,
        metavar="DIR",
        help="the folder holding Pulumi.yaml and the stacks (default: this kit)",
    )
    plan.add_argument(
        "--preview",
        action="store_true",
        help="answer like `pulumi preview` for a new stack: computed outputs are unknown",
    )

    commands.add_parser(
        "size",
        help="which instances, GPUs and parallelism a model needs, and what it costs",
        add_help=False,
    )
    return parser


def _plan(args: argparse.Namespace) -> int:
    from components.plan.render import markdown_report, text_report, write_manifests
    from components.plan.run import plan_stack

    plan = plan_stack(args.project_dir, args.stack, preview=args.preview)
    from components.plan.engine import dump_json

    for option, path in (("--json", args.json), ("--markdown", args.markdown)):
        if path is not None and not path.parent.is_dir():
            raise InputError(Problem(path=option, message=f"folder {path.parent} does not exist"))
    if args.json is not None:
        args.json.write_text(dump_json(plan), encoding="utf-8")
    if args.markdown is not None:
        args.markdown.write_text(markdown_report(plan), encoding="utf-8")
    if args.manifests is not None:
        args.manifests.mkdir(parents=True, exist_ok=True)
        write_manifests(plan, args.manifests)
    sys.stdout.write(text_report(plan))
    return ExitCode.OK


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["size"]:
        from components.sizing.command import main as size_main

        return size_main(argv[1:])
    args = _parser().parse_args(argv)
    try:
        if args.command == "plan":
            return _plan(args)
        raise AssertionError(f"unhandled command {args.command}")
    except InputError as exc:
        print(exc.render(), file=sys.stderr)
        return ExitCode.BAD_INPUT
    except EnvironmentBlocked as exc:
        print(f"blocked: {exc}", file=sys.stderr)
        return ExitCode.ENVIRONMENT
    except Exception:
        traceback.print_exc()
        print("modelyard: this is a fault of the kit; please report it with the trace above.", file=sys.stderr)
        return ExitCode.KIT_FAULT


if __name__ == "__main__":
    sys.exit(main())
