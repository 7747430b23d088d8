"""Profiles and following: /profiles/<username>[/follow]."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from sqlalchemy import delete, exists, select
from sqlalchemy.dialects import postgresql, sqlite

from conduit import db
from conduit.auth import current_user, require_user
from conduit.errors import not_found
from conduit.models import User, follows

bp = Blueprint("profiles", __name__)


def is_following(follower: User | None, followed: User) -> bool:
    if follower is None:
        return False
    query = select(exists().where(follows.c.follower_id == follower.id, follows.c.followed_id == followed.id))
    return bool(db.session().scalar(query))


def followed_ids(follower: User | None, candidates: set[int]) -> set[int]:
    """Which of the ``candidates`` user ids ``follower`` follows (one query)."""
    if follower is None or not candidates:
        return set()
    query = select(follows.c.followed_id).where(
        follows.c.follower_id == follower.id, follows.c.followed_id.in_(candidates)
    )
    return set(db.session().scalars(query))


def profile_json(user: User, following: bool) -> dict[str, Any]:
    return {"username": user.username, "bio": user.bio, "image": user.image, "following": following}


def insert_ignore(table, **values):
    """INSERT that does nothing when the row exists (following/favoriting twice is not an error)."""
    dialect = db.session().get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(table).values(**values).on_conflict_do_nothing()


def _find(username: str) -> User:
    user = db.session().scalar(select(User).where(User.username == username))
    if user is None:
        raise not_found("profile")
    return user


@bp.get("/profiles/<username>")
def get_profile(username: str):
    viewer = current_user()
    user = _find(username)
    return {"profile": profile_json(user, is_following(viewer, user))}


@bp.post("/profiles/<username>/follow")
def follow(username: str):
    viewer = require_user()
    user = _find(username)
    session = db.session()
    session.execute(insert_ignore(follows, follower_id=viewer.id, followed_id=user.id))
    session.commit()
    return {"profile": profile_json(user, True)}


@bp.delete("/profiles/<username>/follow")
def unfollow(username: str):
    viewer = require_user()
    user = _find(username)
    session = db.session()
    session.execute(
        delete(follows).where(follows.c.follower_id == viewer.id, follows.c.followed_id == user.id)
    )
    session.commit()
    return {"profile": profile_json(user, False)}
