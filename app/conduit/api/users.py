"""Registration, login and the current user: /users, /users/login, /user."""

from __future__ import annotations

import secrets
from typing import Any

from flask import Blueprint, current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from conduit import db, throttle
from conduit.api.common import json_body, nullable_string, optional_string, required_strings
from conduit.auth import create_token, current_token, require_user
from conduit.errors import APIError, invalid, taken
from conduit.models import User, utcnow

bp = Blueprint("users", __name__)

MIN_PASSWORD_LENGTH = 8


def user_json(user: User, token: str) -> dict[str, Any]:
    return {
        "user": {
            "email": user.email,
            "token": token,
            "username": user.username,
            "bio": user.bio,
            "image": user.image,
        }
    }


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise invalid("password", f"is too short (minimum is {MIN_PASSWORD_LENGTH} characters)")


def _hash(password: str) -> str:
    return generate_password_hash(password, method=current_app.config["CONDUIT_PASSWORD_HASH_METHOD"])


def dummy_hash() -> str:
    """A hash of a random password with the configured method, made once per process: an unknown email
    is checked against it, so it costs what a wrong password costs and does not tell which emails exist."""
    method = current_app.config["CONDUIT_PASSWORD_HASH_METHOD"]
    cache = current_app.extensions.setdefault("conduit.dummy_hashes", {})
    if method not in cache:
        cache[method] = generate_password_hash(secrets.token_urlsafe(16), method=method)
    return cache[method]


def _normalise_email(email: str) -> str:
    email = email.strip().lower()
    if "@" not in email.strip("@"):
        raise invalid("email", "is invalid")
    return email


def _conflicts(username: str | None, email: str | None, exclude_id: int | None = None) -> list[str]:
    """The fields among username/email that another user already holds."""
    session = db.session()
    fields = []
    for field, column, value in (("username", User.username, username), ("email", User.email, email)):
        if value is None:
            continue
        query = select(User.id).where(column == value)
        if exclude_id is not None:
            query = query.where(User.id != exclude_id)
        with session.no_autoflush:
            if session.scalar(query.limit(1)) is not None:
                fields.append(field)
    return fields


def _save(username: str | None, email: str | None, exclude_id: int | None = None) -> None:
    """Commit the pending user changes, refusing a username/email another user holds (409)."""
    session = db.session()
    conflicts = _conflicts(username, email, exclude_id)
    if conflicts:
        session.rollback()
        raise taken(*conflicts)
    try:
        session.commit()
    except IntegrityError:
        # Lost a race with a concurrent registration or update: report what is taken now.
        session.rollback()
        raise taken(*(_conflicts(username, email, exclude_id) or ["username"])) from None


@bp.post("/users")
def register():
    data = required_strings(json_body("user"), "username", "email", "password")
    username = data["username"].strip()
    email = _normalise_email(data["email"])
    _check_password(data["password"])
    user = User(username=username, email=email, password_hash=_hash(data["password"]))
    db.session().add(user)
    _save(username, email)
    return user_json(user, create_token(user)), 201


@bp.post("/users/login")
def login():
    data = required_strings(json_body("user"), "email", "password")
    email = data["email"].strip().lower()
    attempt = throttle.begin(email)
    if attempt.retry_after is not None:
        raise APIError(
            429, {"credentials": ["too many attempts"]}, headers={"Retry-After": str(attempt.retry_after)}
        )
    user = db.session().scalar(select(User).where(User.email == email))
    stored = user.password_hash if user is not None else dummy_hash()
    if not check_password_hash(stored, data["password"]) or user is None:
        raise APIError(401, {"credentials": ["invalid"]})
    throttle.succeeded(attempt)
    return user_json(user, create_token(user))


@bp.get("/user")
def get_current_user():
    user = require_user()
    return user_json(user, current_token())


@bp.put("/user")
def update_current_user():
    user = require_user()
    data = json_body("user")
    if "username" in data:
        user.username = optional_string(data, "username").strip()
    if "email" in data:
        user.email = _normalise_email(optional_string(data, "email"))
    if "password" in data:
        password = optional_string(data, "password")
        _check_password(password)
        user.password_hash = _hash(password)
    for field in ("bio", "image"):
        if field in data:
            setattr(user, field, nullable_string(data, field))
    user.updated_at = utcnow()
    _save(
        user.username if "username" in data else None,
        user.email if "email" in data else None,
        exclude_id=user.id,
    )
    return user_json(user, create_token(user))
