"""A throwaway PostgreSQL database on the machine's server (127.0.0.1:5432, trust auth)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

ADMIN_URL = os.environ.get(
    "REPLYWATCH_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A new empty database for the session, dropped afterwards; fails (never skips) without a server."""
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"replywatch_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as err:
        pytest.fail(
            f"PostgreSQL is not usable at {ADMIN_URL} ({err.__class__.__name__}: {err}). "
            "Start it (pg_ctlcluster <version> main start) or set REPLYWATCH_TEST_POSTGRES.",
            pytrace=False,
        )
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def reset_postgres(url: str) -> None:
    """Drop every table so the next test starts from an empty schema."""
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
