"""The repository stands alone: every file, directory and document anchor that code, YAML and docs name exists
here, and nothing points outside the repository (a clone holds nothing else).

What counts as a reference (each checked against the tree the scan runs over):
  - a markdown link `[text](target)` in a `.md` file, relative to that file, with its `#anchor` if any;
  - a repository path anywhere: a token starting with a top-level directory (`docs/`, `components/`, `charts/`,
    `stacks/`, `deploy/`, `policy/`, `tests/`, `.ci/`, `.github/`), with `<placeholder>`, `{name}` and `*` read
    as wildcards, `{a,b}` as alternatives, and `#anchor` after a `.md` path;
  - a bare document name (`cost.md`): beside the file, at the top, or in docs/;
  - a relative path to a file (`../metrics.yaml`, `./x.py`: a name with a file suffix), from the file's directory;
  - a link to this repository on GitHub (`github.com/modelyard/modelyard/blob/main/<path>`).
A path that follows another repository's name (`NVIDIA/TensorRT-LLM docs/source/...`) is that repository's,
not ours, and is left alone; so is a Kubernetes group/version (`policy/v1`). The few other projects' paths
written without their repository's name beside them are listed, each with its owner, in NOT_OURS. Anchors
are GitHub's heading slugs or explicit `<a id="...">` targets.

Leaving the repository is refused outright: a relative path that climbs above the top, and the names of the
authors' working notes that were never part of the repository (see OUTSIDE).
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from tests.conftest import ROOT

SCANNED_DIRS = ("components", "policy", "charts", "deploy", "tests", ".ci", ".github", "docs", "stacks")
SCANNED_FILES = ("README.md", "pyproject.toml", "Pulumi.yaml", "__main__.py")
SKIPPED_DIRS = frozenset({"__pycache__", "node", "node_modules", ".venv", ".mypy_cache", ".ruff_cache"})
TOP_LEVEL = ("components", "charts", "stacks", "deploy", "policy", "tests", "docs", ".ci", ".github")
REPO_URL = "github.com/modelyard/modelyard/blob/main/"

# Files the repository once cited but never held (the authors' notes); written so this file does not name them.
OUTSIDE = [
    re.compile(r"\b(?:facts|design|style)\.md\b"),
    re.compile(r"(?:\.\./)+shared\b"),
    re.compile(r"/work/(?:shared|main)\b"),
]

# Names that look like ours but are another project's path (file, reference): why. The scan reports each;
# the test accepts exactly these, and fails on an entry that no longer occurs.
_KARPENTER = "aws/karpenter-provider-aws's charts"
_KUBE_PROMETHEUS = "prometheus-community/helm-charts (kube-prometheus-stack)"
_LBC = "kubernetes-sigs/aws-load-balancer-controller's installation guide"
_KSM = "kubernetes/kube-state-metrics' metric docs"
NOT_OURS: dict[tuple[str, str], str] = {
    ("components/k8s/charts.py", "charts/karpenter"): _KARPENTER,
    ("components/k8s/charts.py", "charts/karpenter-crd"): _KARPENTER,
    ("components/k8s/cluster_services.py", "charts/karpenter-crd/values.yaml"): _KARPENTER,
    ("components/k8s/charts.py", "charts/lws"): "kubernetes-sigs/lws's chart",
    ("components/k8s/charts.py", "charts/prometheus-operator-crds/"): _KUBE_PROMETHEUS,
    ("components/k8s/charts.py", "charts/crds/crds/"): _KUBE_PROMETHEUS,
    ("components/k8s/monitoring/values.py", "charts/crds/templates/upgrade/job.yaml"): _KUBE_PROMETHEUS,
    ("docs/upgrades.md", "UPGRADE.md"): _KUBE_PROMETHEUS,
    ("components/k8s/load_balancer_controller.py", "docs/deploy/installation.md"): _LBC,
    ("docs/upgrades.md", "docs/deploy/installation.md"): _LBC,
    ("components/k8s/monitoring/metrics.yaml", "docs/metrics/cluster/node-metrics.md"): _KSM,
    ("components/k8s/monitoring/metrics.yaml", "docs/metrics/workload/pod-metrics.md"): _KSM,
    ("components/k8s/monitoring/metrics.yaml", "docs/metrics/workload/horizontalpodautoscaler-metrics.md"): _KSM,
    ("components/k8s/monitoring/metrics.yaml", "docs/configuration"): "prometheus/prometheus's docs",
    ("components/catalog/sources.yaml", "README_WEIGHTS.md"): "deepseek-ai/DeepSeek-V3",
    ("docs/sizing.md", "README_WEIGHTS.md"): "deepseek-ai/DeepSeek-V3 (the catalog's sources, generated)",
    ("docs/runbooks/GatewayDown.md", "deploy/litellm"): "kubectl's name of the gateway's Deployment",
    ("docs/runbooks/GatewayErrorRateHigh.md", "deploy/litellm"): "kubectl's name of the gateway's Deployment",
    ("tests/test_cli.py", "plan.md"): "the markdown file the test has `modelyard plan` write",
}

_SEGMENT = r"(?:[\w.*-]|<[^<>\s]*>|\{[^{}\s]*\})"
_TOP = "|".join(re.escape(name) for name in TOP_LEVEL)
REPO_PATH = re.compile(rf"(?<![\w./@~$:-])((?:{_TOP})/{_SEGMENT}*(?:/{_SEGMENT}*)*)(#[\w-]+)?")
BARE_DOC = re.compile(r"(?<![\w./@~$-])([\w-]+\.md)(#[\w-]+)?(?![\w/-])")
FILE_SUFFIXES = r"(?:md|py|ya?ml|json|toml|txt|tpl|sh|cjs|lock|cfg|ini)"
RELATIVE = re.compile(rf"(?<![\w.~$-])((?:\.\./|\./)+[\w.-]+(?:/[\w.-]+)*\.{FILE_SUFFIXES})(?![\w.-])")
# A Kubernetes group/version (`policy/v1`) shares its first word with a directory here.
API_VERSION = re.compile(r"^[a-z0-9.]+/v\d+(?:(?:alpha|beta)\d+)?$")
MD_LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")
GITHUB = re.compile(re.escape(REPO_URL) + r"([\w./-]+)")
# `owner/name` (optionally `@commit`) right before a path: the path is in that repository.
OTHER_REPO = re.compile(r"(?:^|[\s(`'\"])([\w.-]+)/[\w.-]+(?:@\w+)?[`'\"]?\s+[`'\"]?$")


@dataclass(frozen=True, order=True)
class Problem:
    file: str
    line: int
    reference: str
    why: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reference}: {self.why}"


def scanned_files(root: Path) -> Iterator[Path]:
    """Every file of the scanned places except this one, whose tables name other projects' paths as data."""
    for name in SCANNED_FILES:
        if (root / name).is_file():
            yield root / name
    for top in SCANNED_DIRS:
        for dirpath, dirnames, filenames in os.walk(root / top):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED_DIRS)
            for filename in sorted(filenames):
                path = Path(dirpath) / filename
                if path.resolve() != Path(__file__).resolve():
                    yield path


def _read_text(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return None
    return None if "\0" in text else text


def _slug(heading: str) -> str:
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").replace("*", "")
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    """GitHub's anchors of a markdown file: heading slugs (repeats numbered -1, -2, ...) and `<a id/name>`."""
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    seen: dict[str, int] = {}
    out: set[str] = set(re.findall(r"<a\s+(?:id|name)=\"([^\"]+)\"", text))
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, flags=re.M):
        slug = _slug(heading)
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        out.add(slug if count == 0 else f"{slug}-{count}")
    return frozenset(out)


def _expand(pattern: str) -> list[str]:
    """`{a,b}` alternatives expanded; `<x>` and `{x}` placeholders as `*`."""
    pattern = re.sub(r"<[^<>]*>", "*", pattern)
    pattern = re.sub(r"\{([^{},]*)\}", "*", pattern)
    parts = re.split(r"\{([^{}]*)\}", pattern)
    choices = [[p] if i % 2 == 0 else p.split(",") for i, p in enumerate(parts)]
    return ["".join(combo) for combo in itertools.product(*choices)]


def _resolve(root: Path, base: Path, target: str) -> tuple[list[Path], str | None]:
    """Existing paths `target` names from `base` (each of its alternatives must name one), and why not."""
    found: list[Path] = []
    for pattern in _expand(target):
        candidate = Path(os.path.normpath(base / pattern))
        try:
            relative = candidate.relative_to(root)
        except ValueError:
            return [], "leaves the repository"
        exists = [candidate] if candidate.exists() else []
        matches = sorted(root.glob(str(relative))) if "*" in pattern else exists
        if not matches:
            return [], "no such file or directory" + (f" ({pattern})" if pattern != target else "")
        found += matches
    return found, None


def _check_anchor(paths: list[Path], anchor: str) -> str | None:
    docs = [p for p in paths if p.suffix == ".md" and p.is_file()]
    if docs and not any(anchor in anchors(p) for p in docs):
        return f"no anchor #{anchor} in {docs[0].name}"
    return None


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _other_repository(text: str, start: int) -> bool:
    line_start = text.rfind("\n", 0, start) + 1
    owner = OTHER_REPO.search(text[line_start:start])
    return owner is not None and owner.group(1) not in TOP_LEVEL


def problems_in(root: Path, path: Path, text: str) -> Iterator[Problem]:
    """Every broken or outward reference in one file's text."""
    rel = path.relative_to(root).as_posix()

    def problem(offset: int, reference: str, why: str) -> Problem:
        return Problem(rel, _line(text, offset), reference, why)

    for pattern in OUTSIDE:
        for m in pattern.finditer(text):
            yield problem(m.start(), m.group(0), "outside the repository: cite the in-repo place instead")

    for m in REPO_PATH.finditer(text):
        target, anchor = m.group(1).rstrip("."), m.group(2) or ""
        if _other_repository(text, m.start()) or API_VERSION.match(target):
            continue
        found, why = _resolve(root, root, target)
        why = why or (anchor and _check_anchor(found, anchor[1:]))
        if why:
            yield problem(m.start(), target + anchor, why)

    for m in GITHUB.finditer(text):
        found, why = _resolve(root, root, m.group(1).rstrip("."))
        if why:
            yield problem(m.start(), m.group(0), why)

    for m in RELATIVE.finditer(text):
        target = m.group(1).rstrip(".")
        if "." not in Path(target).name:
            continue  # a file reference names a file with its extension ("../escape" is test data)
        found, why = _resolve(root, path.parent, target)
        if why:
            yield problem(m.start(), target, why)

    for m in BARE_DOC.finditer(text):
        name, anchor = m.group(1), m.group(2)
        if _other_repository(text, m.start()) or any(p.match(m.group(0)) for p in OUTSIDE):
            continue
        found = [d / name for d in (path.parent, root, root / "docs") if (d / name).is_file()]
        why = None if found else "no such document beside the file, at the top or in docs/"
        why = why or (anchor and _check_anchor(found, anchor[1:]))
        if why:
            yield problem(m.start(), m.group(0), why)

    if path.suffix == ".md":
        for m in MD_LINK.finditer(text):
            target = m.group(1)
            if re.match(r"[a-z][a-z0-9+.-]*:", target):
                continue  # a URL (http, mailto): not a file of the repository
            file_part, _, anchor = target.partition("#")
            found, why = _resolve(root, path.parent, file_part) if file_part else ([path], None)
            why = why or (anchor and _check_anchor(found, anchor))
            if why:
                yield problem(m.start(), target, why)


def scan(root: Path, files: Iterable[Path] | None = None) -> list[Problem]:
    out: set[Problem] = set()
    for path in scanned_files(root) if files is None else files:
        text = _read_text(path)
        if text is not None:
            out.update(problems_in(root, path, text))
    return sorted(out)


def test_every_reference_is_in_the_repository():
    found = scan(ROOT)
    problems = [p for p in found if (p.file, p.reference) not in NOT_OURS]
    assert not problems, "references that do not resolve in the repository:\n" + "\n".join(map(str, problems))
    unused = set(NOT_OURS) - {(p.file, p.reference) for p in found}
    assert not unused, f"NOT_OURS entries that no longer occur (remove them): {sorted(unused)}"


# --- the scanner itself, over small trees with known good and broken references --------------------------------


def _tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


GOOD_TREE = {
    "docs/guide.md": '# Guide\n\n## Prices and dates\n\n## Prices and dates\n\n<a id="pinned"></a>\n[cost](cost.md)\n',
    "docs/cost.md": "# Cost\n\nBack to [the guide](guide.md#prices-and-dates-1) and [here](#cost).\n",
    "components/x.py": "# docs/guide.md#pinned; stacks/Pulumi.<stack>.yaml; stacks/presets/{a,b}.yaml; cost.md\n",
    "components/rules/r.yaml": "# see ../x.py (a sibling module); apiVersion: policy/v1\n",
    "stacks/Pulumi.pilot.yaml": "config: {}\n",
    "stacks/presets/a.yaml": "{}\n",
    "stacks/presets/b.yaml": "{}\n",
    "README.md": "[docs](docs/guide.md), NVIDIA/TensorRT-LLM `docs/source/perf.md`, "
    "https://github.com/modelyard/modelyard/blob/main/docs/cost.md\n",
}


def test_the_scanner_accepts_a_tree_whose_references_resolve(tmp_path: Path):
    _tree(tmp_path, GOOD_TREE)
    assert scan(tmp_path) == []


BROKEN = [
    ("components/x.py", "# moved to docs/gone.md\n", "docs/gone.md", "no such file"),
    ("components/x.py", "# see components/nothing/here.py\n", "components/nothing/here.py", "no such file"),
    ("components/x.py", "# stacks/presets/{a,c}.yaml\n", "stacks/presets/{a,c}.yaml", "no such file"),
    ("components/x.py", "# stacks/Pulumi.<stack>.json\n", "stacks/Pulumi.<stack>.json", "no such file"),
    ("components/x.py", "# docs/guide.md#no-such-heading\n", "docs/guide.md#no-such-heading", "no anchor"),
    ("docs/new.md", "See [cost](costs.md).\n", "costs.md", "no such file"),
    ("docs/new.md", "See [cost](cost.md#nope).\n", "cost.md#nope", "no anchor"),
    ("docs/new.md", "See [above](#nowhere).\n", "#nowhere", "no anchor"),
    ("docs/new.md", "See guides.md for more.\n", "guides.md", "no such document"),
    ("components/rules/r.yaml", "# see ../y.py\n", "../y.py", "no such file"),
    ("components/x.py", "# see ../../../notes/x.md\n", "../../../notes/x.md", "leaves the repository"),
    ("docs/new.md", "from `../" + "shared/notes.md`\n", "../" + "shared", "outside the repository"),
    ("components/x.py", "# (facts" + ".md 7.3)\n", "facts" + ".md", "outside the repository"),
    ("components/x.py", "# (design" + ".md, Network)\n", "design" + ".md", "outside the repository"),
    ("README.md", "https://github.com/modelyard/modelyard/blob/main/docs/old.md\n", "docs/old.md", "no such file"),
]


@pytest.mark.parametrize(("file", "text", "reference", "why"), BROKEN, ids=[b[2] for b in BROKEN])
def test_the_scanner_reports_a_broken_reference(tmp_path: Path, file: str, text: str, reference: str, why: str):
    _tree(tmp_path, GOOD_TREE)
    _tree(tmp_path, {file: text})
    problems = scan(tmp_path)
    assert [(p.file, p.line) for p in problems if reference in p.reference and why in p.why] == [(file, 1)], problems
