"""The ``store`` fixture: every store test runs on SQLite and on PostgreSQL (``pg_store``: only there)."""

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
    yield from _migrated(url)


@pytest.fixture
def pg_store(postgres_url: str) -> Iterator[Store]:
    """A migrated, empty store on PostgreSQL."""
    reset_postgres(postgres_url)
    yield from _migrated(postgres_url)


def _migrated(url: str) -> Iterator[Store]:
    store = Store.open(url)
    store.upgrade()
    try:
        yield store
    finally:
        store.close()
