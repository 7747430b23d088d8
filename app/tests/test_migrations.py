"""Alembic migrations: they build the schema the models describe, and they can be undone."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from conduit import migrate
from conduit.config import normalise_database_url
from conduit.db import make_engine
from conduit.models import Base
from conduit_testing import make_app, sqlite_url
from sqlalchemy import inspect, text
from werkzeug.security import generate_password_hash

TABLES = {
    "users",
    "follows",
    "articles",
    "tags",
    "article_tags",
    "favorites",
    "comments",
    "login_throttle",
    "alembic_version",
}


def test_upgrade_on_a_fresh_database_matches_the_models(tmp_path):
    url = sqlite_url(tmp_path / "fresh.db")
    assert migrate.current(url) == ()
    migrate.upgrade(url)
    assert migrate.current(url) == migrate.heads() == ("0002",)
    engine = make_engine(url)
    try:
        assert set(inspect(engine).get_table_names()) == TABLES
        with engine.connect() as connection:
            assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    finally:
        engine.dispose()


def test_downgrade_to_base_and_up_again(tmp_path):
    url = sqlite_url(tmp_path / "cycle.db")
    migrate.upgrade(url)
    migrate.downgrade(url, "base")
    engine = make_engine(url)
    try:
        assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    finally:
        engine.dispose()
    migrate.upgrade(url)
    assert migrate.current(url) == ("0002",)


def test_the_login_throttle_only_adds_a_table(tmp_path):
    """0002 expands: a database at 0001 with users keeps them, and the users log in after the upgrade; going
    back to 0001 removes only the new table (the release before it never used it)."""
    path = tmp_path / "expand.db"
    url = sqlite_url(path)
    migrate.upgrade(url, "0001")
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO users (username, email, password_hash, created_at, updated_at)"
                    " VALUES ('old', 'old@example.org', :hash, '2026-01-01', '2026-01-01')"
                ),
                {"hash": generate_password_hash("password123", method="pbkdf2:sha256:1000")},
            )
        migrate.upgrade(url)
        client = make_app(path).test_client()
        login = {"user": {"email": "old@example.org", "password": "password123"}}
        assert client.post("/api/users/login", json=login).status_code == 200
        migrate.downgrade(url, "0001")
        assert set(inspect(engine).get_table_names()) == TABLES - {"login_throttle"}
        with engine.connect() as connection:
            assert connection.execute(text("SELECT username FROM users")).scalars().all() == ["old"]
    finally:
        engine.dispose()


def test_migrated_database_serves_the_api(tmp_path):
    path = tmp_path / "served.db"
    migrate.upgrade(sqlite_url(path))
    client = make_app(path).test_client()
    user = {"username": "alice", "email": "alice@example.org", "password": "password123"}
    assert client.post("/api/users", json={"user": user}).status_code == 201


def test_history_lists_the_shipped_migrations():
    history = migrate.history()
    assert history[0].startswith("<base> -> 0001:")
    assert migrate.MIGRATIONS_DIR.joinpath("versions").is_dir()


def test_postgres_migrations_match_the_models(postgres_url):
    """Only with CONDUIT_TEST_POSTGRES_URL: down to base and up again on PostgreSQL, then diff the models."""
    if not postgres_url:
        pytest.skip("set CONDUIT_TEST_POSTGRES_URL to run against PostgreSQL")
    url = normalise_database_url(postgres_url)
    migrate.downgrade(url, "base")
    assert migrate.current(url) == ()
    migrate.upgrade(url)
    assert migrate.current(url) == migrate.heads()
    engine = make_engine(url)
    try:
        assert set(inspect(engine).get_table_names()) == TABLES
        with engine.connect() as connection:
            assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    finally:
        engine.dispose()


def test_offline_sql_for_postgres(capsys):
    migrate.upgrade("postgresql+psycopg://conduit@db.invalid/conduit", sql=True)
    sql = capsys.readouterr().out
    assert "CREATE TABLE articles" in sql
    assert "INSERT INTO alembic_version (version_num) VALUES ('0001')" in sql
    assert "CREATE TABLE login_throttle" in sql
    assert "UPDATE alembic_version SET version_num='0002'" in sql
