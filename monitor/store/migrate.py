"""Schema migrations with alembic, run programmatically (``replywatch db upgrade`` and daemon start).

A store already at the head revision is left alone without importing alembic, and a new, empty store is
created at the head directly from the models and stamped: only an older schema goes through the
migration chain (a test checks that both ways give the same schema).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Column, Engine, MetaData, PrimaryKeyConstraint, String, Table, inspect

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

MIGRATIONS = Path(__file__).with_name("migrations")
HEAD = "0009"
"""The newest revision in ``migrations/versions`` (a test checks that it is alembic's head)."""

VERSION_TABLE = Table(
    "alembic_version",
    MetaData(),
    Column("version_num", String(32), nullable=False),
    PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)
"""Alembic's version table, as alembic creates it."""


def alembic_config(engine: Engine) -> AlembicConfig:
    """An alembic config bound to ``engine``."""
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision``."""
    if revision in ("head", HEAD) and _to_head_without_alembic(engine):
        return
    from alembic import command

    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Take the schema back to ``revision`` (for tests of a migration on data)."""
    from alembic import command

    command.downgrade(alembic_config(engine), revision)


def current(engine: Engine) -> str | None:
    """The schema's current revision (None for an empty database)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def create_head(engine: Engine) -> None:
    """Create every table at the head revision from the models and stamp it (an empty database only)."""
    from monitor.store.models import TABLES

    with engine.begin() as conn:
        for table in TABLES:
            table.create(conn)
        VERSION_TABLE.create(conn)
        conn.execute(VERSION_TABLE.insert().values(version_num=HEAD))


def _to_head_without_alembic(engine: Engine) -> bool:
    """True when the store is at the head now: it was already, or it was empty and was created there.

    A store with any of replywatch's tables but not at the head (older, or a version alembic must
    judge) is left to alembic.
    """
    from monitor.store.models import TABLES

    with engine.connect() as conn:
        tables = set(inspect(conn).get_table_names())
        if VERSION_TABLE.name in tables:
            versions = list(conn.execute(VERSION_TABLE.select()).scalars())
            return versions == [HEAD]
    if tables & {table.name for table in TABLES}:
        return False
    create_head(engine)
    return True
