"""The project's documents point only at files inside the repository, and those files exist (issue 8)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted([*ROOT.joinpath("docs").rglob("*.md"), ROOT / "README.md", ROOT / "CHANGELOG.md"])
LINK = re.compile(r"\]\(([^)\s]+)\)")
CODE = re.compile(r"`([^`\s]+)`")


def _outside(target: Path) -> bool:
    return not target.resolve().is_relative_to(ROOT)


def test_links_stay_inside_the_repository_and_exist() -> None:
    wrong = []
    for doc in DOCS:
        for target in LINK.findall(doc.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue  # a URL or an anchor in the same page
            path = (doc.parent / target.split("#", 1)[0]).resolve()
            if _outside(path) or not path.exists():
                wrong.append(f"{doc.relative_to(ROOT)}: {target}")
    assert wrong == []


def test_no_path_leaves_the_repository() -> None:
    wrong = []
    for doc in DOCS:
        for token in CODE.findall(doc.read_text(encoding="utf-8")):
            if token.startswith("../") and _outside(ROOT / token):
                wrong.append(f"{doc.relative_to(ROOT)}: {token}")
            if re.match(r"/(work|home|root)/", token):
                wrong.append(f"{doc.relative_to(ROOT)}: {token}")
    assert wrong == []
