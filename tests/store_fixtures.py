"""The ``store`` fixture: every store test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.store.db import Store
from tests.servers.postgres import reset_postgres


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated, empty store."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'replywatch.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
        reset_postgres(url)
    store = Store.open(url)
    store.upgrade()
    try:
        yield store
    finally:
        store.close()
