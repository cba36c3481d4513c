"""A property of the whole command: whatever a person does to a stack file or a preset, `modelyard plan` either
plans (exit 0, a plan with resources) or refuses with exit 2 and a line naming the key, file or argument at
fault. Never exit 1, never a traceback (README, "Exit codes").

Each case mutates one of the shipped stack files or presets the way people break them (a value of another type
or an extreme, a key deleted, added or written twice, a non-UTF-8 byte, a non-string key, a number scaled, a
name one typo away, a `secure:` value in a strange place, a value another preset gives), writes the project to
a scratch folder and runs `modelyard plan` in-process. Validation takes milliseconds and a full plan seconds:
every case is validated, every refused one runs the command, and FULL_PLANS of those the settings accept,
spread over the run, are planned end to end. The cases are the same on every run (derandomized), so a failure
in CI is one anyone can reproduce, shrunk to the smallest mutation that shows it.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components.cli import main as cli_main
from components.errors import InputError
from components.plan.run import deployment
from components.yamlio import parse_yaml
from tests.conftest import ROOT

# Mutated projects per run of the suite, and how many of the valid ones are planned in full. Measured on 2 cores:
# about 15 s for the cases and 20 s for the full plans.
CASES = 1000
FULL_PLANS = 12

STACKS_DIR = ROOT / "stacks"


def _stack_of_preset() -> dict[str, str]:
    """Preset -> a shipped stack that uses it (the stack planned when the preset is mutated)."""
    out: dict[str, str] = {}
    for path in sorted(STACKS_DIR.glob("Pulumi.*.yaml")):
        preset = (parse_yaml(path.read_text()).get("config") or {}).get("modelyard:preset")
        if isinstance(preset, str):
            out.setdefault(preset, path.name[len("Pulumi.") : -len(".yaml")])
    return out


def _targets() -> dict[str, str]:
    """File (relative to the project) -> the stack whose plan reads it."""
    targets = {
        f"stacks/{p.name}": p.name[len("Pulumi.") : -len(".yaml")] for p in sorted(STACKS_DIR.glob("Pulumi.*.yaml"))
    }
    for preset, stack in sorted(_stack_of_preset().items()):
        targets[f"stacks/presets/{preset}.yaml"] = stack
    return targets


TARGETS = _targets()
PRESET_FILES = sorted(name for name in TARGETS if name.startswith("stacks/presets/"))
ORIGINALS = {name: (ROOT / name).read_text() for name in TARGETS}

# What people put where a value belongs: other types, extremes, text YAML reads as something else.
REPLACEMENTS: tuple[Any, ...] = (
    -1,
    0,
    1,
    -0.5,
    2**31,
    2**63,
    10**400,
    1e308,
    float("nan"),
    float("inf"),
    float("-inf"),
    True,
    None,
    "",
    " ",
    "x" * 5000,
    "ünïcødé ☃ \U0001d518\u200b",
    "\x00\x07",
    "yes",
    "1e3",
    "0x10",
    "~",
    "us-east-1",
    "../../etc/passwd",
    "<script>",
    [],
    [None],
    {},
    {"secure": "v1:AAAAAAAAAAAAAAAA:ciphertext"},
)
FACTORS = (-1, 0, 0.5, 1.5, 2, 3, 10, 1000, 10**6, 1e-3)
NON_STRING_KEYS: tuple[Any, ...] = (1, 0, -7, 1.5, True, False, None)
KEY_LINE = re.compile(r"^( *)([A-Za-z_][\w.:/-]*):(?: |$)")

Path_ = tuple[Any, ...]


def _paths(node: Any, path: Path_ = ()) -> list[Path_]:
    """Every place in a YAML tree below the root: keys of mappings, items of lists."""
    out: list[Path_] = []
    if isinstance(node, dict):
        for key, value in node.items():
            out.append((*path, key))
            out += _paths(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out.append((*path, i))
            out += _paths(value, (*path, i))
    return out


def _get(node: Any, path: Path_) -> Any:
    for part in path:
        node = node[part]
    return node


def _typo(word: str, draw: Callable[[st.SearchStrategy[Any]], Any]) -> str:
    """`word` one keystroke away: two letters swapped, one dropped, doubled or replaced, a case or a dash changed."""
    if not word:
        return "x"
    i = draw(st.integers(0, len(word) - 1))
    kind = draw(st.sampled_from(["swap", "drop", "double", "replace", "case", "dash"]))
    if kind == "swap" and len(word) > 1:
        j = min(i + 1, len(word) - 1)
        i = j - 1
        return word[:i] + word[j] + word[i] + word[j + 1 :]
    if kind == "drop":
        return word[:i] + word[i + 1 :]
    if kind == "double":
        return word[:i] + word[i] + word[i:]
    if kind == "case":
        return word[:i] + word[i].swapcase() + word[i + 1 :]
    if kind == "dash":
        return word.replace("-", "_") if "-" in word else word.replace("_", "-") if "_" in word else word + "-"
    return word[:i] + draw(st.sampled_from("aeiouxz0-._")) + word[i + 1 :]


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=1000)


def mutate(draw: Callable[[st.SearchStrategy[Any]], Any]) -> tuple[str, bytes, str]:
    """(file, its new bytes, what was done) for one mutation of one shipped stack file or preset."""
    name = draw(st.sampled_from(sorted(TARGETS)))
    text = ORIGINALS[name]
    kind = draw(
        st.sampled_from(
            [
                "replace",
                "delete",
                "unknown-key",
                "non-string-key",
                "scale",
                "typo",
                "duplicate-key",
                "non-utf8",
                "graft",
            ]
        )
    )
    if kind == "non-utf8":
        raw = text.encode()
        at = draw(st.integers(0, len(raw)))
        byte = draw(st.sampled_from([b"\xff", b"\xe9", b"\xc3\x28", b"\x80"]))
        return name, raw[:at] + byte + raw[at:], f"{kind} at byte {at}"
    if kind == "duplicate-key":
        lines = text.splitlines(keepends=True)
        keyed = [i for i, line in enumerate(lines) if KEY_LINE.match(line)]
        i = draw(st.sampled_from(keyed))
        indent, key = KEY_LINE.match(lines[i]).groups()  # type: ignore[union-attr]
        value = draw(st.sampled_from(["0", "x", "{}", "[]", "null"]))
        lines.insert(i, f"{indent}{key}: {value}\n")
        return name, "".join(lines).encode(), f"{kind} {key!r} on line {i + 1}"
    data = parse_yaml(text)
    paths = _paths(data)
    if kind == "graft":
        # A value another preset gives at the same place: often valid, so the program itself runs.
        donor = parse_yaml(ORIGINALS[draw(st.sampled_from(PRESET_FILES))])
        path = draw(st.sampled_from([p for p in _paths(donor) if all(isinstance(k, str) for k in p)]))
        if name.rpartition("/")[2].startswith("Pulumi."):  # a stack file, not a preset
            node, keys = data.setdefault("config", {}), (f"modelyard:{path[0]}", *path[1:])
        else:
            node, keys = data, path
        for key in keys[:-1]:
            if not isinstance(node.get(key) if isinstance(node, dict) else None, dict):
                node[key] = {}
            node = node[key]
        node[keys[-1]] = _get(donor, path)
        return name, _dump(data).encode(), f"{kind} {path}"
    if kind in ("unknown-key", "non-string-key"):
        maps = [()] + [p for p in paths if isinstance(_get(data, p), dict)]
        where = draw(st.sampled_from(maps))
        node = _get(data, where)
        if kind == "unknown-key":
            siblings = [k for k in node if isinstance(k, str)]
            key = (
                _typo(draw(st.sampled_from(siblings)), draw)
                if siblings and draw(st.booleans())
                else draw(st.text(min_size=1, max_size=12))
            )
        else:
            key = draw(st.sampled_from(NON_STRING_KEYS))
        node[key] = draw(st.sampled_from(["x", 1, None, {"a": 1}, [1]]))
        return name, _dump(data).encode(), f"{kind} {key!r} at {where}"
    fits = {
        "scale": lambda p: isinstance(_get(data, p), (int, float)) and not isinstance(_get(data, p), bool),
        "typo": lambda p: isinstance(_get(data, p), str) or isinstance(p[-1], str),
    }
    if kind in fits:
        # A file without numbers (a Kubernetes layer's stack file) gets another value instead.
        paths = [p for p in paths if fits[kind](p)] or paths
        kind = kind if all(fits[kind](p) for p in paths) else "replace"
    path = draw(st.sampled_from(paths))
    parent, last = _get(data, path[:-1]), path[-1]
    if kind == "delete":
        del parent[last]
    elif kind == "replace":
        original = parent[last]
        parent[last] = draw(st.sampled_from([*REPLACEMENTS, [original], {"key": original}, str(original)]))
    elif kind == "scale":
        factor = draw(st.sampled_from(FACTORS))
        scaled = parent[last] * factor
        parent[last] = int(scaled) if isinstance(parent[last], int) and float(scaled).is_integer() else scaled
    elif kind == "typo":
        if isinstance(parent[last], str) and (isinstance(last, int) or draw(st.booleans())):
            parent[last] = _typo(parent[last], draw)
        else:
            # Rename the key, keeping the mapping's order.
            renamed = _typo(last, draw)
            items = [(renamed if k == last else k, v) for k, v in parent.items()]
            parent.clear()
            parent.update(items)
    return name, _dump(data).encode(), f"{kind} at {path}"


def write_project(directory: Path, changed: str, content: bytes) -> None:
    """The kit's Pulumi.yaml, stacks and presets with one file changed, and its charts (the plan renders them)."""
    shutil.copy(ROOT / "Pulumi.yaml", directory / "Pulumi.yaml")
    shutil.copytree(STACKS_DIR, directory / "stacks")
    (directory / changed).write_bytes(content)
    (directory / "charts").symlink_to(ROOT / "charts")


# A refusal names where the problem is: `  - <key, file or argument>: <message>` (components/errors.py).
PROBLEM_LINE = re.compile(r"^  - \S[^\n]*?: \S", re.MULTILINE)


def plan_outcome(project: Path, stack: str, *extra: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli_main(["plan", "--stack", stack, "--project-dir", str(project), *extra])
    return code, out.getvalue(), err.getvalue()


def settings_pass(project: Path, stack: str) -> bool:
    """Whether the stacks the plan covers pass validation (milliseconds; a crash here fails the test)."""
    try:
        deployment(project, stack)
    except InputError:
        return False
    return True


def check_plan(project: Path, stack: str) -> str:
    """`modelyard plan` of a mutated project: "refused" (exit 2, naming where) or "planned" (exit 0, a plan)."""
    plan_file = project / "plan.json"
    code, out, err = plan_outcome(project, stack, "--json", str(plan_file))
    assert "Traceback" not in out + err, err
    assert code in (0, 2), f"exit {code}\n{err}"
    if code == 2:
        assert PROBLEM_LINE.search(err), f"a refusal that names nothing:\n{err}"
        assert not plan_file.exists(), "a refused plan wrote its JSON"
        return "refused"
    plan = json.loads(plan_file.read_text())
    assert plan["schema"] == "modelyard.plan/v1" and plan["resources"], "a plan without resources"
    assert all(math.isfinite(float(plan["cost"][k])) for k in ("monthly_total", "annual_total"))
    return "planned"


def test_every_mutation_of_the_shipped_stacks_is_planned_or_refused_by_key() -> None:
    tally: Counter[str] = Counter()
    planned: list[str] = []

    @settings(
        max_examples=CASES,
        derandomize=True,  # the same cases on every run: CI stays reproducible
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.data())
    def one_case(data: st.DataObject) -> None:
        name, content, what = mutate(data.draw)
        data.draw(st.just(what), label="mutation")  # shown with a failing case
        with tempfile.TemporaryDirectory(prefix="modelyard-fuzz-") as folder:
            project = Path(folder)
            write_project(project, name, content)
            stack = TARGETS[name]
            # Valid cases planned in full are spread over the run: the first valid one after each CASES / FULL_PLANS.
            due = len(planned) < FULL_PLANS and len(planned) <= tally.total() * FULL_PLANS // CASES
            outcome = "valid" if settings_pass(project, stack) and not due else check_plan(project, stack)
        if outcome == "planned":
            planned.append(f"{name}: {what}")
        tally[outcome] += 1

    one_case()
    print(f"\nmutated projects: {dict(tally)}; planned in full:", *planned, sep="\n  ")
    assert tally.total() >= CASES
    assert len(planned) == FULL_PLANS and tally["refused"] > CASES // 4, tally
