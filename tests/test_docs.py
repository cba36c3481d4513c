"""Docs that cannot drift: generated references match the code, the README's commands are the real ones."""

from __future__ import annotations

import re

from components.settings.reference import BEGIN, END, PRESETS_BEGIN, PRESETS_END, render_markdown, render_presets
from tests.conftest import ROOT


def test_settings_reference_matches_the_code():
    text = (ROOT / "docs" / "settings.md").read_text()
    generated = text.split(BEGIN, 1)[1].split(END, 1)[0]
    assert generated.strip() == render_markdown().strip(), "run: python -m components.settings.reference --write"


def test_presets_doc_matches_the_presets():
    text = (ROOT / "docs" / "presets.md").read_text()
    generated = text.split(PRESETS_BEGIN, 1)[1].split(PRESETS_END, 1)[0]
    assert generated.strip() == render_presets().strip(), "run: python -m components.settings.reference --write"


def test_readme_starts_with_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```sh\n(.*?)```", readme, re.S)
    assert block is not None
    commands = block.group(1).strip().splitlines()
    assert len(commands) == 2
    assert "modelyard plan --stack pilot" in commands[0]
    assert commands[1].endswith("pytest")
    assert readme.index(block.group(0)) < 400, "the commands come first"


def test_ci_runs_the_readmes_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    readme_test = re.search(r"```sh\n.*\n(.*)\n```", (ROOT / "README.md").read_text()).group(1)
    assert readme_test in ci


def test_every_linked_doc_exists():
    for doc in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        for target in re.findall(r"\]\(((?:docs/)?[\w./-]+\.md)\)", doc.read_text()):
            base = ROOT if doc.name == "README.md" else doc.parent
            assert (base / target).is_file(), f"{doc.name} links to missing {target}"
