"""Fixtures: an app on a freshly migrated SQLite file per test, a client, and API helpers."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

APP_DIR = Path(__file__).resolve().parents[1]
if str(APP_DIR) not in sys.path:  # runnable from the repository root as well as from app/
    sys.path.insert(0, str(APP_DIR))

# The in-process tests use single-process metrics; only the gunicorn tests use the multiprocess mode.
# This has to happen before prometheus_client is imported.
os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
os.environ.pop("prometheus_multiproc_dir", None)

from conduit import migrate  # noqa: E402
from conduit.app import create_app  # noqa: E402
from conduit.config import load_config, normalise_database_url  # noqa: E402
from conduit.db import make_engine  # noqa: E402

PASSWORD = "password123"
# Set to a PostgreSQL URL to run the API tests against PostgreSQL instead of SQLite files (the database is
# migrated once, then emptied before each test), e.g. postgresql://conduit@127.0.0.1:5432/conduit_test.
POSTGRES_URL_ENV = "CONDUIT_TEST_POSTGRES_URL"
TABLES = ("comments", "favorites", "article_tags", "follows", "articles", "tags", "users")


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


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


def make_app(database: Path | str, **environ: str):
    url = database if isinstance(database, str) else sqlite_url(database)
    env = {"CONDUIT_ENV": "testing", "DATABASE_URL": url, **environ}
    return create_app(load_config(env))


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


class Api:
    """Small helpers over the test client for the RealWorld endpoints."""

    def __init__(self, client):
        self.client = client

    @staticmethod
    def auth(token: str | None) -> dict[str, str]:
        return {"Authorization": f"Token {token}"} if token else {}

    def register(self, username: str, email: str | None = None, password: str = PASSWORD) -> str:
        response = self.client.post(
            "/api/users",
            json={
                "user": {
                    "username": username,
                    "email": email or f"{username}@example.org",
                    "password": password,
                }
            },
        )
        assert response.status_code == 201, response.get_json()
        return response.get_json()["user"]["token"]

    def create_article(self, token: str, title: str = "How to train your dragon", **fields):
        article = {"title": title, "description": "Ever wonder how?", "body": "Very carefully.", **fields}
        response = self.client.post("/api/articles", json={"article": article}, headers=self.auth(token))
        assert response.status_code == 201, response.get_json()
        return response.get_json()["article"]

    def get(self, url: str, token: str | None = None):
        return self.client.get(url, headers=self.auth(token))

    def post(self, url: str, payload=None, token: str | None = None):
        return self.client.post(url, json=payload, headers=self.auth(token))

    def put(self, url: str, payload=None, token: str | None = None):
        return self.client.put(url, json=payload, headers=self.auth(token))

    def delete(self, url: str, token: str | None = None):
        return self.client.delete(url, headers=self.auth(token))


@pytest.fixture
def api(client) -> Api:
    return Api(client)
