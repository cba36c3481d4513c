"""Errors the kit reports to its users, and the exit codes they map to (README, "Exit codes")."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from components.contract import SECRET


class ExitCode(IntEnum):
    OK = 0
    KIT_FAULT = 1
    BAD_INPUT = 2
    ENVIRONMENT = 3
    POLICY = 4


# The secrets this process has read (decrypted `secure:` values, secret settings): nothing the kit prints may hold
# one, wherever the text was pasted (a tenant name, a tag) and whatever builds the message.
_SECRETS: set[str] = set()


def keep_secret(texts: Iterable[str]) -> None:
    """Remember these texts as secrets: `redact` replaces them from now on."""
    _SECRETS.update(t for t in texts if t)


def forget_secrets() -> None:
    """A new command starts: the previous one's secrets are none of its business."""
    _SECRETS.clear()


def redact(text: str) -> str:
    """`text` with every known secret replaced by [secret], as written and as repr() or JSON escape it."""
    for secret in sorted(_SECRETS, key=len, reverse=True):
        for form in dict.fromkeys((secret, repr(secret)[1:-1], json.dumps(secret)[1:-1])):
            text = text.replace(form, SECRET)
    return text


def redact_data(value: Any) -> Any:
    """A JSON-like value with every known secret replaced in its strings, keys included; the value itself when no
    secret is known (the plan of a stack without secrets keeps its bytes)."""
    if not _SECRETS:
        return value
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact_data(k): redact_data(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_data(v) for v in value]
    return value


def printable(text: str, *, keep: str = "") -> str:
    """`text` with what a terminal would not show as itself (a newline, a zero-width space, a control character)
    written as its escape, so that a key with one in it still reads as one line."""
    return "".join(c if c.isprintable() or c in keep else c.encode("unicode_escape").decode() for c in text)


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
        given = [problems] if isinstance(problems, Problem) else problems
        self.problems = sorted(Problem(path=redact(p.path), message=redact(p.message)) for p in given)
        self.heading = heading
        super().__init__(self.render())

    def render(self) -> str:
        count = len(self.problems)
        heading = self.heading or f"{count} problem{'s' if count != 1 else ''} in the input"
        # A message may run over several lines (a YAML parser's); a path is one line.
        lines = [f"  - {printable(p.path)}: " + printable(p.message, keep="\n") for p in self.problems]
        return redact("\n".join([f"{heading}:", *lines]))


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
