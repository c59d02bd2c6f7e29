"""Docstrings and generated notes cite only documents the repository has."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CITATION = re.compile(r"(?:docs/)?[\w./-]*DESIGN\.md|docs/[\w./-]+\.md")
SECTION = re.compile(r"docs/design\.md, ([A-Z][\w -]+?)[).\"]")


def _sources():
    return [p for p in (ROOT / "src").rglob("*.py")] + list((ROOT / "workflow").rglob("*.smk"))


def test_every_cited_document_exists():
    for path in _sources():
        for cited in CITATION.findall(path.read_text()):
            assert (ROOT / cited).is_file(), f"{path.relative_to(ROOT)} cites {cited}, which the repository lacks"


def test_every_cited_design_section_exists():
    headings = {line[3:].strip() for line in (ROOT / "docs" / "design.md").read_text().splitlines()
                if line.startswith("## ")}
    cited = {(path, m) for path in _sources() for m in SECTION.findall(path.read_text())}
    assert cited, "no docstring cites docs/design.md by section"
    for path, section in cited:
        assert section in headings, f"{path.relative_to(ROOT)} cites docs/design.md section {section!r}: not there"
