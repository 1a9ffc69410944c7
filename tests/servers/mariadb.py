"""A throwaway MariaDB/MySQL database on the machine's server (127.0.0.1:3306, root without a password)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

ADMIN_URL = os.environ.get("REPLYWATCH_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306/")


@pytest.fixture
def mariadb_url() -> Iterator[str]:
    """A new empty database for one test, dropped afterwards; fails (never skips) without a server."""
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"replywatch_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE `{name}`"))
    except Exception as err:
        pytest.fail(
            f"MariaDB is not usable at {ADMIN_URL} ({err.__class__.__name__}: {err}). "
            "Start it (service mariadb start) or set REPLYWATCH_TEST_MARIADB.",
            pytrace=False,
        )
    try:
        yield ADMIN_URL.rstrip("/") + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()
