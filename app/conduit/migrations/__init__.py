"""Alembic migrations of the Conduit schema (run them with ``conduit db upgrade``)."""
