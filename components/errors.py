"""Errors the kit reports to its users, and the exit codes they map to (README, "Exit codes")."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    KIT_FAULT = 1
    BAD_INPUT = 2
    ENVIRONMENT = 3
    POLICY = 4


@dataclass(frozen=True, order=True, kw_only=True)
class Problem:
    """One thing wrong with the input, named by where it is (a config path, an argument, a file)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class InputError(Exception):
    """Bad input (exit code 2). Carries every problem found, not just the first."""

    exit_code = ExitCode.BAD_INPUT

    def __init__(self, problems: list[Problem] | Problem, *, heading: str | None = None) -> None:
        self.problems = sorted([problems] if isinstance(problems, Problem) else problems)
        self.heading = heading
        super().__init__(self.render())

    def render(self) -> str:
        count = len(self.problems)
        heading = self.heading or f"{count} problem{'s' if count != 1 else ''} in the input"
        return "\n".join([f"{heading}:", *(f"  - {p}" for p in self.problems)])


class UnbuildableSetting(InputError):
    """A component cannot build what a setting asks for (the chart cannot serve a model as configured, the gateway
    cannot be configured as the settings say): bad input, exit 2, naming the setting. The settings' cross-checks
    refuse these first; this is the components' last line of defence, for both engines."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(Problem(path=path, message=message))


class EnvironmentBlocked(Exception):
    """The environment blocks the command: missing credentials, quotas, an unreachable account (exit 3)."""

    exit_code = ExitCode.ENVIRONMENT
