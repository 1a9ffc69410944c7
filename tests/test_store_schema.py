"""A new store is created at the head from the models: the same schema as the migration chain gives."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text
from sqlmodel import SQLModel

from monitor.store.db import Store
from monitor.store.migrate import HEAD, alembic_config, current, downgrade, upgrade
from tests.servers.postgres import reset_postgres


def schema(engine: Engine) -> dict[str, Any]:
    """Every table's columns (in order, with types, nullability and server defaults), keys, indexes and
    constraints, as the database reports them."""
    found = inspect(engine)
    out: dict[str, Any] = {}
    for table in sorted(found.get_table_names()):
        out[table] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"], c.get("default"), c.get("autoincrement"))
                for c in found.get_columns(table)
            ],
            "primary key": found.get_pk_constraint(table),
            "indexes": sorted(json.dumps(i, sort_keys=True, default=str) for i in found.get_indexes(table)),
            "unique": sorted(
                json.dumps(u, sort_keys=True, default=str) for u in found.get_unique_constraints(table)
            ),
            "foreign keys": sorted(
                json.dumps(f, sort_keys=True, default=str) for f in found.get_foreign_keys(table)
            ),
            "checks": sorted(
                json.dumps(c, sort_keys=True, default=str) for c in found.get_check_constraints(table)
            ),
        }
    return out


def models_drift(engine: Engine) -> list[Any]:
    """What alembic's autogenerate would change to make the database match the models."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, SQLModel.metadata))


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'replywatch.db'}"
    url: str = request.getfixturevalue("postgres_url")
    reset_postgres(url)
    return url


def empty(url: str, tmp_path: Path, name: str) -> str:
    """``url`` emptied (PostgreSQL), or another SQLite file beside it."""
    if url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / name}"
    reset_postgres(url)
    return url


def test_head_is_alembics_head(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'x.db'}")
    assert ScriptDirectory.from_config(alembic_config(store.engine)).get_current_head() == HEAD
    store.close()


def test_a_new_store_gets_the_migrated_schema(empty_url: str, tmp_path: Path) -> None:
    chained = Store.open(empty_url)
    command.upgrade(alembic_config(chained.engine), "head")  # every migration, 0001 to the head
    by_migrations = schema(chained.engine)
    assert current(chained.engine) == HEAD
    assert models_drift(chained.engine) == []
    chained.close()

    created = Store.open(empty(empty_url, tmp_path, "created.db"))
    created.upgrade()
    assert current(created.engine) == HEAD
    assert schema(created.engine) == by_migrations
    assert models_drift(created.engine) == []
    created.close()


def test_a_created_store_migrates_down_and_up_again(empty_url: str) -> None:
    store = Store.open(empty_url)
    store.upgrade()
    created = schema(store.engine)
    downgrade(store.engine, "0001")
    assert current(store.engine) == "0001"
    store.upgrade()
    assert current(store.engine) == HEAD
    assert schema(store.engine) == created
    store.close()


def test_an_older_store_goes_through_the_migrations(empty_url: str) -> None:
    store = Store.open(empty_url)
    upgrade(store.engine, "0008")
    assert current(store.engine) == "0008"
    store.upgrade()
    assert current(store.engine) == HEAD
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM message WHERE bulk_precedence")).scalar() == 0
    store.close()


def test_a_store_at_the_head_is_left_alone(empty_url: str) -> None:
    store = Store.open(empty_url)
    store.upgrade()
    before = schema(store.engine)
    store.upgrade()
    assert schema(store.engine) == before
    with store.engine.connect() as conn:
        assert list(conn.execute(text("SELECT version_num FROM alembic_version")).scalars()) == [HEAD]
    store.close()


def test_a_new_or_current_store_does_not_load_alembic(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from monitor.store.db import Store\n"
        f"store = Store.open('sqlite:///{tmp_path / 'x.db'}')\n"
        "store.upgrade()\n"  # empty: created at the head
        "store.upgrade()\n"  # at the head: left alone
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('alembic', 'mako')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
    assert current(Store.open(f"sqlite:///{tmp_path / 'x.db'}").engine) == HEAD
