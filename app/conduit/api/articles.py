"""Articles, feed, favorites, comments and tags: /articles..., /tags."""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

from flask import Blueprint, request
from sqlalchemy import ColumnElement, bindparam, delete, func, select
from sqlalchemy.exc import IntegrityError

from conduit import db
from conduit.api.common import json_body, optional_string, pagination, required_strings, tag_list, timestamp
from conduit.api.profiles import followed_ids, insert_ignore, is_following, profile_json
from conduit.auth import current_user, require_user
from conduit.errors import forbidden, not_found
from conduit.models import Article, Comment, Tag, User, article_tags, favorites, follows, utcnow

bp = Blueprint("articles", __name__)

SLUG_MAX_LENGTH = 200
SAVE_ATTEMPTS = 3


# ---------------------------------------------------------------------------------------------- helpers


def slugify(title: str) -> str:
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")
    return slug[:SLUG_MAX_LENGTH].rstrip("-") or "article"


def _slug_taken(slug: str, exclude_id: int | None) -> bool:
    query = select(Article.id).where(Article.slug == slug)
    if exclude_id is not None:
        query = query.where(Article.id != exclude_id)
    with db.session().no_autoflush:
        return db.session().scalar(query.limit(1)) is not None


def _unique_slug(title: str, exclude_id: int | None = None) -> str:
    base = slugify(title)
    slug = base
    while _slug_taken(slug, exclude_id):
        slug = f"{base}-{secrets.token_hex(3)}"
    return slug


def _save_retrying(save: Callable[[], Article]) -> Article:
    """Run ``save`` (which builds its changes and commits) again after a unique-constraint race.

    Two writers can pick the same slug, or create the same new tag, at the same time; the loser's commit
    fails. ``save`` recomputes everything from the database, so the retry picks a free slug and the tag
    the other writer created.
    """
    session = db.session()
    for _attempt in range(SAVE_ATTEMPTS - 1):
        try:
            return save()
        except IntegrityError:
            session.rollback()
    return save()


def _tags(names: Iterable[str]) -> list[Tag]:
    names = sorted(set(names))
    if not names:
        return []
    session = db.session()
    with session.no_autoflush:
        existing = {tag.name: tag for tag in session.scalars(select(Tag).where(Tag.name.in_(names)))}
    return [existing.get(name) or Tag(name=name) for name in names]


def _find(slug: str) -> Article:
    article = db.session().scalar(select(Article).where(Article.slug == slug))
    if article is None:
        raise not_found("article")
    return article


def _favorite_counts(ids: list[int]) -> dict[int, int]:
    if not ids:
        return {}
    query = (
        select(favorites.c.article_id, func.count())
        .where(favorites.c.article_id.in_(ids))
        .group_by(favorites.c.article_id)
    )
    return {article_id: count for article_id, count in db.session().execute(query)}


def _favorited_ids(viewer: User | None, ids: list[int]) -> set[int]:
    if viewer is None or not ids:
        return set()
    query = select(favorites.c.article_id).where(
        favorites.c.user_id == viewer.id, favorites.c.article_id.in_(ids)
    )
    return set(db.session().scalars(query))


def _article_json(article: Article, *, favorited: bool, count: int, following: bool, body: bool):
    data: dict[str, Any] = {
        "slug": article.slug,
        "title": article.title,
        "description": article.description,
    }
    if body:
        data["body"] = article.body
    data.update(
        {
            "tagList": sorted(tag.name for tag in article.tags),
            "createdAt": timestamp(article.created_at),
            "updatedAt": timestamp(article.updated_at),
            "favorited": favorited,
            "favoritesCount": count,
            "author": profile_json(article.author, following),
        }
    )
    return data


def _single(article: Article, viewer: User | None, status: int = 200):
    data = _article_json(
        article,
        favorited=bool(_favorited_ids(viewer, [article.id])),
        count=_favorite_counts([article.id]).get(article.id, 0),
        following=is_following(viewer, article.author),
        body=True,
    )
    return {"article": data}, status


# Columns of an article in a list: no body, the author's profile and the favorites count in the same row.
_FAVORITES_COUNT = (
    select(func.count()).where(favorites.c.article_id == Article.id).correlate(Article).scalar_subquery()
)
_LIST_COLUMNS = (
    Article.id,
    Article.slug,
    Article.title,
    Article.description,
    Article.created_at,
    Article.updated_at,
    Article.author_id,
    User.username,
    User.bio,
    User.image,
    _FAVORITES_COUNT.label("favorites_count"),
)


# The statements of the list endpoints are built once; requests only bind values (and add filters).
_LIST_QUERY = (
    select(*_LIST_COLUMNS)
    .join(User, User.id == Article.author_id)
    .order_by(Article.created_at.desc(), Article.id.desc())
    .limit(bindparam("limit"))
    .offset(bindparam("offset"))
)
_COUNT_QUERY = select(func.count()).select_from(Article)
_TAGS_QUERY = (
    select(article_tags.c.article_id, Tag.name)
    .join(Tag, Tag.id == article_tags.c.tag_id)
    .where(article_tags.c.article_id.in_(bindparam("ids", expanding=True)))
    .order_by(Tag.name)
)


def _page(filters: list[ColumnElement[bool]], viewer: User | None):
    """One page of articles, newest first, with the total count (Core queries: this is the hot path)."""
    limit, offset = pagination()
    connection = db.session().connection()
    total = connection.scalar(_COUNT_QUERY.where(*filters) if filters else _COUNT_QUERY)
    query = _LIST_QUERY.where(*filters) if filters else _LIST_QUERY
    rows = connection.execute(query, {"limit": limit, "offset": offset}).all()
    ids = [row.id for row in rows]
    tags: dict[int, list[str]] = defaultdict(list)
    if ids:
        for article_id, name in connection.execute(_TAGS_QUERY, {"ids": ids}):
            tags[article_id].append(name)
    favorited = _favorited_ids(viewer, ids)
    following = followed_ids(viewer, {row.author_id for row in rows})
    articles = [
        {
            "slug": row.slug,
            "title": row.title,
            "description": row.description,
            "tagList": tags[row.id],
            "createdAt": timestamp(row.created_at),
            "updatedAt": timestamp(row.updated_at),
            "favorited": row.id in favorited,
            "favoritesCount": row.favorites_count,
            "author": {
                "username": row.username,
                "bio": row.bio,
                "image": row.image,
                "following": row.author_id in following,
            },
        }
        for row in rows
    ]
    return {"articles": articles, "articlesCount": total}


# --------------------------------------------------------------------------------------------- articles


@bp.get("/articles")
def list_articles():
    viewer = current_user()
    filters: list[ColumnElement[bool]] = []
    if tag := request.args.get("tag"):
        filters.append(
            Article.id.in_(
                select(article_tags.c.article_id)
                .join(Tag, Tag.id == article_tags.c.tag_id)
                .where(Tag.name == tag)
            )
        )
    if author := request.args.get("author"):
        filters.append(Article.author_id.in_(select(User.id).where(User.username == author)))
    if favorited := request.args.get("favorited"):
        filters.append(
            Article.id.in_(
                select(favorites.c.article_id)
                .join(User, User.id == favorites.c.user_id)
                .where(User.username == favorited)
            )
        )
    return _page(filters, viewer)


@bp.get("/articles/feed")
def feed():
    viewer = require_user()
    followed = select(follows.c.followed_id).where(follows.c.follower_id == viewer.id)
    return _page([Article.author_id.in_(followed)], viewer)


@bp.get("/articles/<slug>")
def get_article(slug: str):
    viewer = current_user()
    return _single(_find(slug), viewer)


@bp.post("/articles")
def create_article():
    author = require_user()
    data = json_body("article")
    fields = required_strings(data, "title", "description", "body")
    tags = tag_list(data["tagList"]) if "tagList" in data else []

    def save() -> Article:
        article = Article(
            slug=_unique_slug(fields["title"]),
            title=fields["title"],
            description=fields["description"],
            body=fields["body"],
            author=author,
        )
        article.tags = _tags(tags)
        db.session().add(article)
        db.session().commit()
        return article

    return _single(_save_retrying(save), author, 201)


def _article_changes(data: dict[str, Any]) -> dict[str, Any]:
    """The validated fields of an update (absent ones stay as they are)."""
    changes: dict[str, Any] = {}
    for field in ("title", "description", "body"):
        if field in data:
            changes[field] = optional_string(data, field)
    if "tagList" in data:
        changes["tagList"] = tag_list(data["tagList"])
    return changes


@bp.put("/articles/<slug>")
def update_article(slug: str):
    viewer = require_user()
    if _find(slug).author_id != viewer.id:
        raise forbidden("article")
    changes = _article_changes(json_body("article"))

    def save() -> Article:
        article = _find(slug)
        if "title" in changes and changes["title"] != article.title:
            article.slug = _unique_slug(changes["title"], exclude_id=article.id)
        for field in ("title", "description", "body"):
            if field in changes:
                setattr(article, field, changes[field])
        if "tagList" in changes:
            article.tags = _tags(changes["tagList"])
        # Strictly later than the previous value, even within the same millisecond.
        article.updated_at = max(utcnow(), article.updated_at + timedelta(milliseconds=1))
        db.session().commit()
        return article

    return _single(_save_retrying(save), viewer)


@bp.delete("/articles/<slug>")
def delete_article(slug: str):
    viewer = require_user()
    article = _find(slug)
    if article.author_id != viewer.id:
        raise forbidden("article")
    session = db.session()
    session.delete(article)
    session.commit()
    return "", 204


# -------------------------------------------------------------------------------------------- favorites


@bp.post("/articles/<slug>/favorite")
def favorite(slug: str):
    viewer = require_user()
    article = _find(slug)
    session = db.session()
    session.execute(insert_ignore(favorites, user_id=viewer.id, article_id=article.id))
    session.commit()
    return _single(article, viewer)


@bp.delete("/articles/<slug>/favorite")
def unfavorite(slug: str):
    viewer = require_user()
    article = _find(slug)
    session = db.session()
    session.execute(
        delete(favorites).where(favorites.c.user_id == viewer.id, favorites.c.article_id == article.id)
    )
    session.commit()
    return _single(article, viewer)


# --------------------------------------------------------------------------------------------- comments


def _comment_json(comment: Comment, following: bool) -> dict[str, Any]:
    return {
        "id": comment.id,
        "createdAt": timestamp(comment.created_at),
        "updatedAt": timestamp(comment.updated_at),
        "body": comment.body,
        "author": profile_json(comment.author, following),
    }


@bp.get("/articles/<slug>/comments")
def list_comments(slug: str):
    viewer = current_user()
    article = _find(slug)
    query = select(Comment).where(Comment.article_id == article.id).order_by(Comment.id)
    comments = list(db.session().scalars(query))
    following = followed_ids(viewer, {comment.author_id for comment in comments})
    return {"comments": [_comment_json(c, c.author_id in following) for c in comments]}


@bp.post("/articles/<slug>/comments")
def create_comment(slug: str):
    author = require_user()
    article = _find(slug)
    body = required_strings(json_body("comment"), "body")["body"]
    comment = Comment(body=body, article_id=article.id, author=author)
    session = db.session()
    session.add(comment)
    session.commit()
    return {"comment": _comment_json(comment, False)}, 201


@bp.delete("/articles/<slug>/comments/<comment_id>")
def delete_comment(slug: str, comment_id: str):
    viewer = require_user()
    article = _find(slug)
    comment = None
    if comment_id.isdigit():
        comment = db.session().scalar(
            select(Comment).where(Comment.id == int(comment_id), Comment.article_id == article.id)
        )
    if comment is None:
        raise not_found("comment")
    if comment.author_id != viewer.id:
        raise forbidden("comment")
    session = db.session()
    session.delete(comment)
    session.commit()
    return "", 204


# ------------------------------------------------------------------------------------------------- tags


@bp.get("/tags")
def list_tags():
    query = select(Tag.name).where(Tag.id.in_(select(article_tags.c.tag_id))).order_by(Tag.name)
    return {"tags": list(db.session().scalars(query))}
