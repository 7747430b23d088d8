"""Registration, login, current user."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest
from conduit_testing import PASSWORD


def test_register_returns_201_and_user(api):
    response = api.post(
        "/api/users", {"user": {"username": "alice", "email": "Alice@Example.org", "password": PASSWORD}}
    )
    assert response.status_code == 201
    user = response.get_json()["user"]
    assert user["username"] == "alice"
    assert user["email"] == "alice@example.org"
    assert user["bio"] is None
    assert user["image"] is None
    assert set(user) == {"email", "token", "username", "bio", "image"}
    assert api.get("/api/user", user["token"]).status_code == 200


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        ({}, {"username", "email", "password"}),
        ({"user": {}}, {"username", "email", "password"}),
        ({"user": {"username": "bob", "email": "bob@example.org"}}, {"password"}),
        ({"user": {"username": "", "email": "bob@example.org", "password": PASSWORD}}, {"username"}),
        ({"user": {"username": "bob", "email": "   ", "password": PASSWORD}}, {"email"}),
        ({"user": {"username": None, "email": "bob@example.org", "password": PASSWORD}}, {"username"}),
    ],
)
def test_register_blank_fields_are_422(api, payload, fields):
    response = api.post("/api/users", payload)
    assert response.status_code == 422
    assert response.get_json() == {"errors": {field: ["can't be blank"] for field in fields}}


def test_register_rejects_bad_values(api):
    response = api.post(
        "/api/users", {"user": {"username": 42, "email": "x@example.org", "password": PASSWORD}}
    )
    assert response.status_code == 422
    assert response.get_json() == {"errors": {"username": ["must be a string"]}}
    response = api.post(
        "/api/users", {"user": {"username": "bob", "email": "not-an-email", "password": PASSWORD}}
    )
    assert response.status_code == 422
    assert response.get_json() == {"errors": {"email": ["is invalid"]}}
    response = api.post(
        "/api/users", {"user": {"username": "bob", "email": "bob@example.org", "password": "short"}}
    )
    assert response.status_code == 422
    assert response.get_json() == {"errors": {"password": ["is too short (minimum is 8 characters)"]}}


def test_register_duplicates_are_409(api):
    api.register("alice")
    response = api.post(
        "/api/users", {"user": {"username": "alice", "email": "new@example.org", "password": PASSWORD}}
    )
    assert response.status_code == 409
    assert response.get_json() == {"errors": {"username": ["has already been taken"]}}
    response = api.post(
        "/api/users", {"user": {"username": "alice2", "email": "ALICE@example.org", "password": PASSWORD}}
    )
    assert response.status_code == 409
    assert response.get_json() == {"errors": {"email": ["has already been taken"]}}
    response = api.post(
        "/api/users", {"user": {"username": "alice", "email": "alice@example.org", "password": PASSWORD}}
    )
    assert response.get_json() == {
        "errors": {"username": ["has already been taken"], "email": ["has already been taken"]}
    }


def test_login(api):
    api.register("alice")
    response = api.post("/api/users/login", {"user": {"email": "ALICE@example.org", "password": PASSWORD}})
    assert response.status_code == 200
    user = response.get_json()["user"]
    assert user["username"] == "alice"
    assert api.get("/api/user", user["token"]).get_json()["user"]["email"] == "alice@example.org"


@pytest.mark.parametrize(
    "credentials",
    [
        {"email": "alice@example.org", "password": "wrong-password"},
        {"email": "nobody@example.org", "password": PASSWORD},
    ],
)
def test_login_bad_credentials_are_401(api, credentials):
    api.register("alice")
    response = api.post("/api/users/login", {"user": credentials})
    assert response.status_code == 401
    assert response.get_json() == {"errors": {"credentials": ["invalid"]}}


def test_login_blank_fields_are_422(api):
    response = api.post("/api/users/login", {"user": {"email": "alice@example.org"}})
    assert response.status_code == 422
    assert response.get_json() == {"errors": {"password": ["can't be blank"]}}


def test_current_user(api):
    token = api.register("alice")
    response = api.get("/api/user", token)
    assert response.status_code == 200
    assert response.get_json()["user"] == {
        "email": "alice@example.org",
        "token": token,
        "username": "alice",
        "bio": None,
        "image": None,
    }
    bearer = api.client.get("/api/user", headers={"Authorization": f"Bearer {token}"})
    assert bearer.status_code == 200


def _expired_token(app) -> str:
    past = datetime.now(UTC) - timedelta(days=2)
    claims = {"sub": "1", "iat": past, "exp": past + timedelta(days=1)}
    return jwt.encode(claims, app.config["SECRET_KEY"], algorithm="HS256")


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Token",
        "Token not-a-jwt",
        "Basic dXNlcjpwYXNz",
        "Token "
        + jwt.encode({"sub": "1", "exp": 4102444800}, "another-key-that-is-long-enough-32b", "HS256"),
        "Token "
        + jwt.encode({"sub": "x", "exp": 4102444800}, "irrelevant-key-irrelevant-key-irrelevant", "HS256"),
    ],
)
def test_current_user_without_valid_token_is_401(api, header):
    api.register("alice")
    headers = {} if header is None else {"Authorization": header}
    response = api.client.get("/api/user", headers=headers)
    assert response.status_code == 401
    assert response.get_json() == {"errors": {"token": ["is missing"]}}


def test_expired_and_orphan_tokens_are_401(app, api):
    api.register("alice")
    response = api.client.get("/api/user", headers=api.auth(_expired_token(app)))
    assert response.status_code == 401
    orphan = jwt.encode({"sub": "999", "exp": 4102444800}, app.config["SECRET_KEY"], algorithm="HS256")
    response = api.client.get("/api/user", headers=api.auth(orphan))
    assert response.status_code == 401
    assert response.get_json() == {"errors": {"token": ["is missing"]}}


def test_update_user(api):
    token = api.register("alice")
    payload = {
        "user": {
            "username": "alice2",
            "email": "a2@example.org",
            "bio": "I like tea",
            "image": "http://i/x.png",
        }
    }
    response = api.put("/api/user", payload, token)
    assert response.status_code == 200
    user = response.get_json()["user"]
    assert (user["username"], user["email"], user["bio"], user["image"]) == (
        "alice2",
        "a2@example.org",
        "I like tea",
        "http://i/x.png",
    )
    # empty strings are stored as null
    user = api.put("/api/user", {"user": {"bio": "", "image": None}}, user["token"]).get_json()["user"]
    assert user["bio"] is None
    assert user["image"] is None
    assert api.get("/api/profiles/alice2").status_code == 200
    assert api.get("/api/profiles/alice").status_code == 404


def test_update_password(api):
    token = api.register("alice")
    assert api.put("/api/user", {"user": {"password": "new-password"}}, token).status_code == 200
    login = api.post("/api/users/login", {"user": {"email": "alice@example.org", "password": "new-password"}})
    assert login.status_code == 200
    old = api.post("/api/users/login", {"user": {"email": "alice@example.org", "password": PASSWORD}})
    assert old.status_code == 401


def test_update_user_errors(api):
    token = api.register("alice")
    api.register("bob")
    response = api.put("/api/user", {"user": {"password": "short"}}, token)
    assert response.status_code == 422
    assert response.get_json() == {"errors": {"password": ["is too short (minimum is 8 characters)"]}}
    response = api.put("/api/user", {"user": {"username": None}}, token)
    assert response.status_code == 422
    assert response.get_json() == {"errors": {"username": ["can't be blank"]}}
    response = api.put("/api/user", {"user": {"bio": 3}}, token)
    assert response.status_code == 422
    assert response.get_json() == {"errors": {"bio": ["must be a string"]}}
    response = api.put("/api/user", {"user": {"username": "bob"}}, token)
    assert response.status_code == 409
    assert response.get_json() == {"errors": {"username": ["has already been taken"]}}
    response = api.put("/api/user", {"user": {"email": "bob@example.org"}}, token)
    assert response.status_code == 409
    assert response.get_json() == {"errors": {"email": ["has already been taken"]}}
    # nothing of the refused updates was kept
    assert api.get("/api/user", token).get_json()["user"]["username"] == "alice"


def test_update_user_with_own_email_is_not_a_conflict(api):
    token = api.register("alice")
    response = api.put("/api/user", {"user": {"email": "alice@example.org", "username": "alice"}}, token)
    assert response.status_code == 200
    assert api.put("/api/user", {}, token).status_code == 200


def test_update_user_requires_token(api):
    response = api.put("/api/user", {"user": {"bio": "x"}})
    assert response.status_code == 401
    assert response.get_json() == {"errors": {"token": ["is missing"]}}
