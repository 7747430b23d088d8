"""The ``conduit`` admin command: migrations and configuration checks.

    conduit db upgrade [REVISION]    apply migrations (default: head; --sql prints them instead)
    conduit db downgrade REVISION    revert migrations
    conduit db current [--check]     revision the database is at (--check: exit 1 unless at head)
    conduit db history               list the migrations shipped in this package
    conduit db revision -m MSG       create a migration (development, --autogenerate to diff models)
    conduit check-config             validate the environment, print the settings (no secrets)
    conduit version                  print the version

Everything reads the same environment variables as the app (DATABASE_URL, CONDUIT_ENV, ...).
"""

from __future__ import annotations

import logging
import sys

import click

from conduit import __version__
from conduit.config import Config, ConfigError, load_config, mask_url


def _config() -> Config:
    try:
        return load_config()
    except ConfigError as error:
        raise click.ClickException(str(error)) from None


def _database_url() -> str:
    return _config().database_url


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="conduit")
def main() -> None:
    """Conduit administration."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    # "Running upgrade 0001 -> 0002, ..." lines, without the rest of Alembic's chatter.
    migration_log = logging.getLogger("alembic.runtime.migration")
    migration_log.setLevel(logging.INFO)
    migration_log.addFilter(_only_migration_steps)


def _only_migration_steps(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING or record.getMessage().startswith("Running ")


@main.command()
def version() -> None:
    """Print the version."""
    click.echo(__version__)


@main.command("check-config")
def check_config() -> None:
    """Validate the configuration from the environment (exit 1 with the reason if invalid)."""
    config = _config()
    for name, value in config.describe().items():
        click.echo(f"{name}={value}")
    click.echo("configuration OK")


@main.group()
def db() -> None:
    """Database migrations (Alembic, shipped inside the package)."""


@db.command()
@click.argument("revision", default="head")
@click.option("--sql", is_flag=True, help="Print the SQL instead of running it (offline mode).")
def upgrade(revision: str, sql: bool) -> None:
    """Apply migrations up to REVISION (default: head)."""
    from conduit import migrate

    url = _database_url()
    if sql:
        migrate.upgrade(url, revision, sql=True)
        return
    click.echo(f"upgrading {mask_url(url)} to {revision}", err=True)
    migrate.upgrade(url, revision)
    click.echo(" ".join(migrate.current(url)) or "(empty)")


@db.command()
@click.argument("revision")
def downgrade(revision: str) -> None:
    """Revert migrations down to REVISION ('base' empties the database)."""
    from conduit import migrate

    url = _database_url()
    click.echo(f"downgrading {mask_url(url)} to {revision}", err=True)
    migrate.downgrade(url, revision)
    click.echo(" ".join(migrate.current(url)) or "(empty)")


@db.command()
@click.option("--check", is_flag=True, help="Exit 1 unless the database is at the latest revision.")
def current(check: bool) -> None:
    """Print the revision the database is at."""
    from conduit import migrate

    revisions = migrate.current(_database_url())
    heads = migrate.heads()
    at_head = set(revisions) == set(heads)
    label = " ".join(revisions) or "(empty)"
    click.echo(f"{label} (head)" if at_head else f"{label} (latest: {' '.join(heads)})")
    if check and not at_head:
        raise click.exceptions.Exit(1)


@db.command()
def history() -> None:
    """List the migrations shipped with this version."""
    from conduit import migrate

    for line in migrate.history():
        click.echo(line)


@db.command()
@click.option("-m", "--message", required=True, help="What the migration does.")
@click.option("--autogenerate", is_flag=True, help="Diff the models against the database.")
def revision(message: str, autogenerate: bool) -> None:
    """Create a new migration file in conduit/migrations/versions (development)."""
    from conduit import migrate

    migrate.revision(_database_url(), message, autogenerate)
