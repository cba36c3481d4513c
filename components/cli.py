"""The `modelyard` command. Exit codes: 0 done, 1 kit fault, 2 bad input, 3 environment, 4 policy or a failed gate.

Each command lives in its own module exposing `main(argv: list[str]) -> int`; this module only
dispatches and turns the kit's errors into exit codes, the same way for every command.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from collections.abc import Sequence

from components.errors import EnvironmentBlocked, ExitCode, InputError, forget_secrets, redact
from components.settings.schema import close_matches

# command -> (module with main(argv), one line of help)
COMMANDS: dict[str, tuple[str, str]] = {
    "plan": ("components.plan.command", "run a stack's program offline; write plan JSON, markdown, manifests"),
    "size": ("components.sizing.command", "which instances, GPUs and parallelism a model needs, and the cost"),
    "bootstrap": ("components.tools.bootstrap", "create the Pulumi state bucket and secrets key before the first `up`"),
    "preflight": ("components.tools.preflight", "check the AWS account before `pulumi up`: quotas, offerings, names"),
    "models": ("components.tools.models", "pull weights from the hub, push them to the stack's bucket, verify"),
    "tco": ("components.cost.command", "a stack's total cost of ownership: AWS, people, tools; band, $/Mtok"),
    "diff": ("components.plan.diff_command", "compare two plan JSONs: changes, replacements, cost delta"),
    "simulate": (
        "components.simulate.command",
        "replay a request trace against a stack: TTFT attainment, replicas, cost",
    ),
    "advise": (
        "components.advise.command",
        "one workload: self-hosting per layout, hosted and proprietary APIs, a hybrid; cost, TTFT, break-even",
    ),
    "check": ("components.tools.check", "after `up`: one streamed chat request, time to first token"),
    "eval": ("components.tools.evaluation", "an eval set through the gateway; pass rates; gate a candidate revision"),
    "orphans": ("components.tools.orphans", "around `pulumi destroy`: what is left with the stack's or cluster's tags"),
    "init": ("components.settings.init_command", "write a new stack file for a preset in a region; it plans"),
    "catalog": ("components.catalog.command", "models, instance types, licenses, regions' zones: what the kit knows"),
}

USAGE = (
    "usage: modelyard COMMAND [options]   (modelyard COMMAND --help for its options)\n\ncommands:\n"
    + "".join(f"  {name:<10}{text}\n" for name, (_, text) in COMMANDS.items())
    + "\nexit codes: 0 done, 1 a fault of the kit, 2 bad input, 3 the environment blocks it,"
    " 4 policy violations or a failed gate\n"
)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        sys.stdout.write(USAGE)
        return ExitCode.OK if argv else ExitCode.BAD_INPUT
    name, rest = argv[0], argv[1:]
    forget_secrets()
    if name not in COMMANDS:
        sys.stderr.write(f"modelyard: unknown command {name!r}{close_matches(name, COMMANDS)}\n\n{USAGE}")
        return ExitCode.BAD_INPUT
    try:
        command = importlib.import_module(COMMANDS[name][0])
        return int(command.main(rest))
    except SystemExit as exc:  # argparse: --help exits 0, bad arguments exit 2
        return int(exc.code or 0) if isinstance(exc.code, int) else ExitCode.BAD_INPUT
    except InputError as exc:
        print(exc.render(), file=sys.stderr)
        return ExitCode.BAD_INPUT
    except BrokenPipeError:
        # The reader went away (`modelyard plan ... | head`): nothing more to say, and nobody to say it to.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitCode.OK
    except EnvironmentBlocked as exc:
        print(redact(f"blocked: {exc}"), file=sys.stderr)
        return ExitCode.ENVIRONMENT
    except Exception:
        # A fault's trace may quote the values it met: the secrets among them stay hidden here too.
        sys.stderr.write(redact(traceback.format_exc()))
        print("modelyard: this is a fault of the kit; please report it with the trace above.", file=sys.stderr)
        return ExitCode.KIT_FAULT


if __name__ == "__main__":
    sys.exit(main())
