"""Helpers shared by the app's tests (a module of its own: test modules should not import conftest)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP_DIR = Path(__file__).resolve().parents[1]
if str(APP_DIR) not in sys.path:  # runnable from the repository root as well as from app/
    sys.path.insert(0, str(APP_DIR))

# The in-process tests use single-process metrics; only the gunicorn tests use the multiprocess mode.
# This has to happen before prometheus_client is imported.
os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
os.environ.pop("prometheus_multiproc_dir", None)

from conduit.app import create_app  # noqa: E402
from conduit.config import load_config  # noqa: E402

PASSWORD = "password123"


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def make_app(database: Path | str, **environ: str):
    url = database if isinstance(database, str) else sqlite_url(database)
    env = {"CONDUIT_ENV": "testing", "DATABASE_URL": url, **environ}
    return create_app(load_config(env))


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
