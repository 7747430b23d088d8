"""Bad input never turns into a 500; every error has the ``errors`` body."""

from __future__ import annotations

import pytest
from conduit_testing import make_app


@pytest.mark.parametrize(
    ("data", "errors"),
    [
        (b"{not json", {"body": ["is not valid JSON"]}),
        (b"\xff\xfe", {"body": ["is not valid JSON"]}),
        (b"[1, 2]", {"body": ["must be a JSON object"]}),
        (b'{"user": "alice"}', {"user": ["must be an object"]}),
    ],
)
def test_malformed_json_is_422(api, data, errors):
    response = api.client.post("/api/users", data=data, headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.get_json() == {"errors": errors}


def test_malformed_json_on_authenticated_endpoint_is_422(api):
    token = api.register("alice")
    headers = {**api.auth(token), "Content-Type": "application/json"}
    for method, url in (("put", "/api/user"), ("post", "/api/articles")):
        response = getattr(api.client, method)(url, data=b'{"article":', headers=headers)
        assert response.status_code == 422
        assert response.get_json() == {"errors": {"body": ["is not valid JSON"]}}


def test_json_without_content_type_is_accepted(api):
    data = b'{"user": {"username": "alice", "email": "alice@example.org", "password": "password123"}}'
    assert api.client.post("/api/users", data=data).status_code == 201


def test_oversized_body_is_413(database_url):
    client = make_app(database_url, CONDUIT_MAX_CONTENT_LENGTH="1024").test_client()
    response = client.post("/api/users", data=b"x" * 2048, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.get_json() == {"errors": {"body": ["is too large (limit 1024 bytes)"]}}


def test_unknown_route_and_method(client):
    response = client.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.get_json() == {"errors": {"path": ["not found"]}}
    response = client.patch("/api/tags")
    assert response.status_code == 405
    assert response.get_json() == {"errors": {"method": ["not allowed"]}}
    assert "GET" in response.headers["Allow"]


def test_other_http_errors_keep_the_errors_body(app):
    from werkzeug.exceptions import abort

    @app.get("/teapot")
    def teapot():
        abort(418)

    @app.get("/bad")
    def bad():
        abort(400)

    client = app.test_client()
    response = client.get("/teapot")
    assert response.status_code == 418
    assert response.get_json() == {"errors": {"request": ["i'm a teapot"]}}
    assert client.get("/bad").get_json() == {"errors": {"request": ["is invalid"]}}


def test_unexpected_exception_is_500_with_errors_body(app, caplog):
    @app.get("/boom")
    def boom():
        raise RuntimeError("kaput")

    response = app.test_client().get("/boom")
    assert response.status_code == 500
    assert response.get_json() == {"errors": {"server": ["internal error"]}}
    assert "kaput" in caplog.text
