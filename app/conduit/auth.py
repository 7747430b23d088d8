"""JWT tokens (``Authorization: Token <jwt>``) and the current user of a request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
from flask import current_app, g, request

from conduit import db
from conduit.errors import unauthorized
from conduit.models import User

ALGORITHM = "HS256"
SCHEMES = ("token", "bearer")


def create_token(user: User) -> str:
    now = datetime.now(UTC)
    claims = {
        "sub": str(user.id),
        "username": user.username,
        "iat": now,
        "exp": now + timedelta(seconds=current_app.config["CONDUIT_TOKEN_TTL"]),
    }
    return jwt.encode(claims, current_app.config["SECRET_KEY"], algorithm=ALGORITHM)


def _token_from_header() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() not in SCHEMES or not token:
        return None
    return token


def _load_user() -> tuple[User | None, str | None]:
    token = _token_from_header()
    if token is None:
        return None, None
    try:
        claims = jwt.decode(
            token,
            current_app.config["SECRET_KEY"],
            algorithms=[ALGORITHM],
            options={"require": ["sub", "exp"]},
        )
        user_id = int(claims["sub"])
    except (jwt.InvalidTokenError, ValueError):
        return None, None
    user = db.session().get(User, user_id)
    return user, (token if user is not None else None)


def current_user() -> User | None:
    """The authenticated user, or None for a missing, invalid or expired token."""
    if "auth" not in g:
        g.auth = _load_user()
    return g.auth[0]


def current_token() -> str | None:
    current_user()
    return g.auth[1]


def require_user() -> User:
    """The authenticated user; a 401 ``{"token": ["is missing"]}`` without a valid token."""
    user = current_user()
    if user is None:
        raise unauthorized()
    return user
