"""Alembic, driven from code: the migrations ship inside the package (``conduit/migrations``)."""

from __future__ import annotations

import io
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from conduit.db import make_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(database_url: str, stdout: io.TextIOBase | None = None) -> AlembicConfig:
    config = AlembicConfig(stdout=stdout) if stdout is not None else AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Passed as an attribute, not an ini option: ini interpolation would choke on a '%' in a password.
    config.attributes["database_url"] = database_url
    return config


def run_environment(context) -> None:
    """Body of the migrations' ``env.py``: run them on the URL handed over in the Alembic config."""
    from conduit.models import Base

    url = context.config.attributes["database_url"]
    options = {"target_metadata": Base.metadata, "render_as_batch": url.startswith("sqlite")}
    if context.is_offline_mode():
        context.configure(url=url, literal_binds=True, **options)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context.configure(connection=connection, **options)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


def upgrade(database_url: str, revision: str = "head", sql: bool = False) -> None:
    """Apply migrations; ``sql=True`` prints the SQL instead (offline mode, for review by a DBA)."""
    command.upgrade(alembic_config(database_url), revision, sql=sql)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


def heads() -> tuple[str, ...]:
    return tuple(ScriptDirectory.from_config(alembic_config("")).get_heads())


def current(database_url: str) -> tuple[str, ...]:
    """The revisions the database is at (empty for a database never migrated)."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            return tuple(MigrationContext.configure(connection).get_current_heads())
    finally:
        engine.dispose()


def history() -> list[str]:
    script = ScriptDirectory.from_config(alembic_config(""))
    return [
        f"{rev.down_revision or '<base>'} -> {rev.revision}: {rev.doc}"
        for rev in reversed(list(script.walk_revisions()))
    ]


def revision(database_url: str, message: str, autogenerate: bool) -> None:
    """Create a new revision file in the package's migrations (a development task)."""
    command.revision(alembic_config(database_url), message=message, autogenerate=autogenerate)
