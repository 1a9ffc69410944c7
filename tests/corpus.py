"""Where the third-party test corpora live (``../shared/corpora`` beside the checkout); never skipped."""

from __future__ import annotations

from pathlib import Path

import pytest

CORPORA_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"


def corpora_root(*parts: str) -> Path:
    """The corpora folder (or ``parts`` below it); fails the test, never skips, when it is missing."""
    path = CORPORA_ROOT.joinpath(*parts)
    if not path.exists():
        pytest.fail(
            f"test corpus missing: {path} — check out ../shared/corpora beside the repository "
            "(see shared/corpora/README.md); corpus tests must not be skipped",
            pytrace=False,
        )
    return path
