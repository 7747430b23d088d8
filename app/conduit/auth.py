"""JWT tokens (``Authorization: Token <jwt>``) and the current user of a request.

A token carries a fingerprint of the user's password hash (claim ``pwd``: an HMAC under SECRET_KEY, which
reveals nothing about the hash). Every authenticated request compares it with the hash stored now, so a
password change, which always stores a new hash (a new salt, even for the same password), ends every
token issued before it, on every worker and every host, whichever release made the change.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import jwt
from flask import current_app, g, request

from conduit import db
from conduit.errors import unauthorized
from conduit.models import User

ALGORITHM = "HS256"
SCHEMES = ("token", "bearer")
PASSWORD_CLAIM = "pwd"


def password_fingerprint(user: User) -> str:
    """HMAC-SHA256 of the user's password hash under SECRET_KEY, 128 bits in URL-safe base64."""
    digest = hmac.new(
        current_app.config["SECRET_KEY"].encode(),
        b"conduit-token-password\0" + user.password_hash.encode(),
        hashlib.sha256,
    ).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


def _current_for(user: User, claims: dict) -> bool:
    """Whether a token with these claims was issued for the user's current password.

    Tokens of releases before the fingerprint have no ``pwd`` claim: such a token counts while it was
    issued no earlier than the second of the user's last update (a password change is an update, in every
    release), so a deploy logs nobody out and a password change still ends those tokens.
    """
    fingerprint = claims.get(PASSWORD_CLAIM)
    if fingerprint is not None:
        return isinstance(fingerprint, str) and hmac.compare_digest(fingerprint, password_fingerprint(user))
    issued = claims.get("iat")
    if not isinstance(issued, int | float):
        return False
    return int(issued) >= int(user.updated_at.replace(tzinfo=UTC).timestamp())


def create_token(user: User) -> str:
    now = datetime.now(UTC)
    claims = {
        "sub": str(user.id),
        "username": user.username,
        PASSWORD_CLAIM: password_fingerprint(user),
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
    if user is None or not _current_for(user, claims):
        return None, None
    return user, token


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
