"""Fixtures: an app on a fresh, migrated database per test, a client, and the API helper."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from sqlalchemy import text

# isort: off
# First: puts app/ on sys.path and clears PROMETHEUS_MULTIPROC_DIR before prometheus_client is imported.
from conduit_testing import Api, make_app, sqlite_url
from conduit import migrate
from conduit.config import normalise_database_url
from conduit.db import make_engine

# isort: on

# Set to a PostgreSQL URL to run the API tests against PostgreSQL instead of SQLite files (the database is
# migrated once, then emptied before each test), e.g. postgresql://conduit@127.0.0.1:5432/conduit_test.
POSTGRES_URL_ENV = "CONDUIT_TEST_POSTGRES_URL"
TABLES = ("comments", "favorites", "article_tags", "follows", "articles", "tags", "users", "login_throttle")


def pytest_configure(config):
    config.addinivalue_line("markers", "gunicorn: starts a real gunicorn on 127.0.0.1")


@pytest.fixture(scope="session")
def migrated_db(tmp_path_factory) -> Path:
    """A database file migrated to head once per session; tests get copies of it."""
    path = tmp_path_factory.mktemp("template") / "conduit.db"
    migrate.upgrade(sqlite_url(path))
    return path


@pytest.fixture(scope="session")
def postgres_url() -> str | None:
    url = os.environ.get(POSTGRES_URL_ENV)
    if url:
        migrate.upgrade(normalise_database_url(url))
    return url


@pytest.fixture
def database_url(migrated_db, postgres_url, tmp_path) -> str:
    """A fresh, migrated database for one test: a copied SQLite file, or the emptied PostgreSQL one."""
    if postgres_url:
        engine = make_engine(normalise_database_url(postgres_url))
        with engine.begin() as connection:
            connection.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
        engine.dispose()
        return postgres_url
    path = tmp_path / "conduit.db"
    shutil.copyfile(migrated_db, path)
    return sqlite_url(path)


@pytest.fixture
def app(database_url):
    app = make_app(database_url)
    yield app
    app.extensions["conduit.engine"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def api(client) -> Api:
    return Api(client)
