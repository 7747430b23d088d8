"""Fixtures: an app on a freshly migrated SQLite file per test, a client, and API helpers."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

APP_DIR = Path(__file__).resolve().parents[1]
if str(APP_DIR) not in sys.path:  # runnable from the repository root as well as from app/
    sys.path.insert(0, str(APP_DIR))

# The in-process tests use single-process metrics; only the gunicorn tests use the multiprocess mode.
# This has to happen before prometheus_client is imported.
os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
os.environ.pop("prometheus_multiproc_dir", None)

from conduit import migrate  # noqa: E402
from conduit.app import create_app  # noqa: E402
from conduit.config import load_config  # noqa: E402

PASSWORD = "password123"


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def migrated_db(tmp_path_factory) -> Path:
    """A database file migrated to head once per session; tests get copies of it."""
    path = tmp_path_factory.mktemp("template") / "conduit.db"
    migrate.upgrade(sqlite_url(path))
    return path


def make_app(db_path: Path, **environ: str):
    env = {"CONDUIT_ENV": "testing", "DATABASE_URL": sqlite_url(db_path), **environ}
    return create_app(load_config(env))


@pytest.fixture
def db_path(migrated_db, tmp_path) -> Path:
    path = tmp_path / "conduit.db"
    shutil.copyfile(migrated_db, path)
    return path


@pytest.fixture
def app(db_path):
    app = make_app(db_path)
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
