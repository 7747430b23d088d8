"""/health reports whether the database answers."""

from __future__ import annotations

import socket

from conduit import __version__
from conduit.app import create_app
from conduit.config import load_config
from conduit_testing import make_app


def test_health_ok(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "version": __version__, "database": "ok"}


def test_health_503_when_sqlite_file_cannot_be_opened(tmp_path):
    unreachable = tmp_path / "no-such-dir" / "conduit.db"
    response = make_app(unreachable).test_client().get("/health")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable"
    assert body["database"] == "unavailable"
    assert "unable to open database file" in body["error"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_health_503_when_postgres_is_unreachable():
    url = f"postgresql://conduit:secret@127.0.0.1:{_closed_port()}/conduit"
    app = create_app(load_config({"CONDUIT_ENV": "testing", "DATABASE_URL": url}))
    assert app.config["CONDUIT_DATABASE_URL"].startswith("postgresql+psycopg://")
    response = app.test_client().get("/health")
    assert response.status_code == 503
    body = response.get_json()
    assert body["database"] == "unavailable"
    assert body["error"].startswith("OperationalError")
    assert "secret" not in body["error"]


def test_health_503_then_200_when_database_comes_back(tmp_path):
    directory = tmp_path / "later"
    client = make_app(directory / "conduit.db").test_client()
    assert client.get("/health").status_code == 503
    directory.mkdir()
    assert client.get("/health").status_code == 200
