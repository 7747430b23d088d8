"""Alembic environment: the work is done by ``conduit.migrate.run_environment``."""

from alembic import context

from conduit.migrate import run_environment

run_environment(context)
