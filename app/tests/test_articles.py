"""Articles: create, read, update, delete, lists, feed, favorites, tags."""

from __future__ import annotations

import re

import pytest

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
ARTICLE_KEYS = {
    "slug",
    "title",
    "description",
    "body",
    "tagList",
    "createdAt",
    "updatedAt",
    "favorited",
    "favoritesCount",
    "author",
}


def test_create_article(api):
    token = api.register("alice")
    response = api.post(
        "/api/articles",
        {
            "article": {
                "title": "How to train your dragon",
                "description": "d",
                "body": "b",
                "tagList": ["z", "a", "a"],
            }
        },
        token,
    )
    assert response.status_code == 201
    article = response.get_json()["article"]
    assert set(article) == ARTICLE_KEYS
    assert article["slug"] == "how-to-train-your-dragon"
    assert article["tagList"] == ["a", "z"]
    assert article["favorited"] is False
    assert article["favoritesCount"] == 0
    assert article["author"] == {"username": "alice", "bio": None, "image": None, "following": False}
    assert ISO_MS.match(article["createdAt"])
    assert ISO_MS.match(article["updatedAt"])


def test_same_title_gives_different_slugs(api):
    token = api.register("alice")
    first = api.create_article(token, "Same title")
    second = api.create_article(token, "Same title")
    assert first["slug"] == "same-title"
    assert second["slug"].startswith("same-title-")
    assert api.get(f"/api/articles/{second['slug']}").get_json()["article"]["title"] == "Same title"


def test_slug_of_unusual_titles(api):
    token = api.register("alice")
    assert api.create_article(token, "Ça va? Très bien!")["slug"] == "ca-va-tres-bien"
    assert api.create_article(token, "!!!")["slug"] == "article"


@pytest.mark.parametrize(
    ("article", "errors"),
    [
        ({}, {"title": ["can't be blank"], "description": ["can't be blank"], "body": ["can't be blank"]}),
        ({"title": "t", "description": "d"}, {"body": ["can't be blank"]}),
        ({"title": " ", "description": "d", "body": "b"}, {"title": ["can't be blank"]}),
        (
            {"title": "t", "description": "d", "body": "b", "tagList": "x"},
            {"tagList": ["must be an array of strings"]},
        ),
        (
            {"title": "t", "description": "d", "body": "b", "tagList": [1]},
            {"tagList": ["must be an array of strings"]},
        ),
        (
            {"title": "t", "description": "d", "body": "b", "tagList": None},
            {"tagList": ["must be an array of strings"]},
        ),
    ],
)
def test_create_article_validation(api, article, errors):
    token = api.register("alice")
    response = api.post("/api/articles", {"article": article}, token)
    assert response.status_code == 422
    assert response.get_json() == {"errors": errors}


def test_create_article_requires_token(api):
    response = api.post("/api/articles", {"article": {}})
    assert response.status_code == 401
    assert response.get_json() == {"errors": {"token": ["is missing"]}}


def test_get_article(api):
    token = api.register("alice")
    created = api.create_article(token, tagList=["dragons"])
    response = api.get(f"/api/articles/{created['slug']}")
    assert response.status_code == 200
    assert response.get_json()["article"] == created
    missing = api.get("/api/articles/nope")
    assert missing.status_code == 404
    assert missing.get_json() == {"errors": {"article": ["not found"]}}


def test_list_articles(api):
    alice = api.register("alice")
    bob = api.register("bob")
    slugs = [api.create_article(alice, f"Alice {i}", tagList=["alice", "common"])["slug"] for i in range(3)]
    slugs += [api.create_article(bob, f"Bob {i}", tagList=["common"])["slug"] for i in range(2)]
    data = api.get("/api/articles").get_json()
    assert data["articlesCount"] == 5
    # newest first, and lists carry no body
    assert [a["slug"] for a in data["articles"]] == list(reversed(slugs))
    assert all("body" not in a for a in data["articles"])
    assert set(data["articles"][0]) == ARTICLE_KEYS - {"body"}

    page = api.get("/api/articles?limit=2&offset=1").get_json()
    assert page["articlesCount"] == 5
    assert [a["slug"] for a in page["articles"]] == list(reversed(slugs))[1:3]
    assert api.get("/api/articles?offset=10").get_json() == {"articles": [], "articlesCount": 5}

    by_author = api.get("/api/articles?author=alice").get_json()
    assert by_author["articlesCount"] == 3
    assert {a["author"]["username"] for a in by_author["articles"]} == {"alice"}
    assert api.get("/api/articles?tag=alice").get_json()["articlesCount"] == 3
    assert api.get("/api/articles?tag=common&author=bob").get_json()["articlesCount"] == 2
    assert api.get("/api/articles?tag=unknown").get_json() == {"articles": [], "articlesCount": 0}
    assert api.get("/api/articles?author=nobody").get_json() == {"articles": [], "articlesCount": 0}
    assert api.get("/api/articles?favorited=nobody").get_json() == {"articles": [], "articlesCount": 0}


def test_list_shows_viewer_state(api):
    alice = api.register("alice")
    bob = api.register("bob")
    slug = api.create_article(bob)["slug"]
    api.post(f"/api/articles/{slug}/favorite", token=alice)
    api.post("/api/profiles/bob/follow", token=alice)
    article = api.get("/api/articles", alice).get_json()["articles"][0]
    assert article["favorited"] is True
    assert article["favoritesCount"] == 1
    assert article["author"]["following"] is True
    anonymous = api.get("/api/articles").get_json()["articles"][0]
    assert anonymous["favorited"] is False
    assert anonymous["favoritesCount"] == 1
    assert anonymous["author"]["following"] is False
    favorited = api.get("/api/articles?favorited=alice").get_json()
    assert [a["slug"] for a in favorited["articles"]] == [slug]


@pytest.mark.parametrize(
    ("query", "field"),
    [("limit=abc", "limit"), ("limit=0", "limit"), ("limit=5000", "limit"), ("offset=-1", "offset")],
)
def test_list_rejects_bad_pagination(api, query, field):
    response = api.get(f"/api/articles?{query}")
    assert response.status_code == 422
    assert list(response.get_json()["errors"]) == [field]


def test_feed(api):
    alice = api.register("alice")
    bob = api.register("bob")
    carol = api.register("carol")
    api.create_article(bob, "From bob")
    api.create_article(carol, "From carol")
    assert api.get("/api/articles/feed", alice).get_json() == {"articles": [], "articlesCount": 0}
    api.post("/api/profiles/bob/follow", token=alice)
    feed = api.get("/api/articles/feed", alice).get_json()
    assert feed["articlesCount"] == 1
    assert feed["articles"][0]["title"] == "From bob"
    assert feed["articles"][0]["author"]["following"] is True
    assert "body" not in feed["articles"][0]
    assert api.get("/api/articles/feed?limit=1&offset=1", alice).get_json()["articles"] == []
    response = api.get("/api/articles/feed")
    assert response.status_code == 401
    assert response.get_json() == {"errors": {"token": ["is missing"]}}


def test_update_article(api):
    token = api.register("alice")
    created = api.create_article(token, tagList=["b", "a"])
    slug = created["slug"]
    response = api.put(f"/api/articles/{slug}", {"article": {"body": "With two hands"}}, token)
    assert response.status_code == 200
    updated = response.get_json()["article"]
    assert updated["body"] == "With two hands"
    assert updated["slug"] == slug
    assert updated["tagList"] == ["a", "b"]  # missing tagList keeps the tags
    assert updated["updatedAt"] > created["updatedAt"]
    assert updated["createdAt"] == created["createdAt"]

    renamed = api.put(
        f"/api/articles/{slug}", {"article": {"title": "A new title", "description": "nd"}}, token
    )
    renamed = renamed.get_json()["article"]
    assert renamed["slug"] == "a-new-title"
    assert renamed["description"] == "nd"
    assert api.get(f"/api/articles/{slug}").status_code == 404
    same = api.put("/api/articles/a-new-title", {"article": {"title": "A new title"}}, token).get_json()[
        "article"
    ]
    assert same["slug"] == "a-new-title"

    cleared = api.put("/api/articles/a-new-title", {"article": {"tagList": []}}, token).get_json()["article"]
    assert cleared["tagList"] == []
    assert api.get("/api/tags").get_json() == {"tags": []}
    retagged = api.put("/api/articles/a-new-title", {"article": {"tagList": ["x"]}}, token).get_json()[
        "article"
    ]
    assert retagged["tagList"] == ["x"]


def test_update_article_errors_in_order(api):
    alice = api.register("alice")
    bob = api.register("bob")
    slug = api.create_article(alice)["slug"]
    url = f"/api/articles/{slug}"
    # 401 before 404
    assert api.put("/api/articles/nope", {"article": {"title": ""}}).status_code == 401
    # 404 before 403/422
    response = api.put("/api/articles/nope", {"article": {"title": ""}}, bob)
    assert response.status_code == 404
    assert response.get_json() == {"errors": {"article": ["not found"]}}
    # 403 before 422
    response = api.put(url, {"article": {"title": ""}}, bob)
    assert response.status_code == 403
    assert response.get_json() == {"errors": {"article": ["forbidden"]}}
    response = api.put(url, {"article": {"title": ""}}, alice)
    assert response.status_code == 422
    assert response.get_json() == {"errors": {"title": ["can't be blank"]}}
    response = api.put(url, {"article": {"tagList": None}}, alice)
    assert response.status_code == 422
    assert response.get_json() == {"errors": {"tagList": ["must be an array of strings"]}}
    response = api.put(url, {"article": {"body": None}}, alice)
    assert response.status_code == 422
    assert response.get_json() == {"errors": {"body": ["can't be blank"]}}


def test_delete_article(api):
    alice = api.register("alice")
    bob = api.register("bob")
    slug = api.create_article(alice, tagList=["gone"])["slug"]
    api.post(f"/api/articles/{slug}/favorite", token=bob)
    api.post(f"/api/articles/{slug}/comments", {"comment": {"body": "hi"}}, bob)
    assert api.delete(f"/api/articles/{slug}").status_code == 401
    assert api.delete("/api/articles/nope", bob).status_code == 404
    response = api.delete(f"/api/articles/{slug}", bob)
    assert response.status_code == 403
    assert response.get_json() == {"errors": {"article": ["forbidden"]}}
    response = api.delete(f"/api/articles/{slug}", alice)
    assert response.status_code == 204
    assert response.data == b""
    assert api.get(f"/api/articles/{slug}").status_code == 404
    assert api.get("/api/tags").get_json() == {"tags": []}
    assert api.get("/api/articles?favorited=bob").get_json()["articlesCount"] == 0


def test_delete_article_with_json_content_type_and_empty_body(api):
    token = api.register("alice")
    slug = api.create_article(token)["slug"]
    headers = {**api.auth(token), "Content-Type": "application/json"}
    assert api.client.delete(f"/api/articles/{slug}", data=b"", headers=headers).status_code == 204


def test_favorite_and_unfavorite(api):
    alice = api.register("alice")
    bob = api.register("bob")
    slug = api.create_article(alice)["slug"]
    response = api.post(f"/api/articles/{slug}/favorite", token=bob)
    assert response.status_code == 200
    article = response.get_json()["article"]
    assert (article["favorited"], article["favoritesCount"]) == (True, 1)
    assert "body" in article
    # favoriting twice changes nothing
    article = api.post(f"/api/articles/{slug}/favorite", token=bob).get_json()["article"]
    assert article["favoritesCount"] == 1
    article = api.post(f"/api/articles/{slug}/favorite", token=alice).get_json()["article"]
    assert article["favoritesCount"] == 2
    single = api.get(f"/api/articles/{slug}", bob).get_json()["article"]
    assert (single["favorited"], single["favoritesCount"]) == (True, 2)
    response = api.delete(f"/api/articles/{slug}/favorite", bob)
    assert response.status_code == 200
    article = response.get_json()["article"]
    assert (article["favorited"], article["favoritesCount"]) == (False, 1)
    assert api.delete(f"/api/articles/{slug}/favorite", bob).get_json()["article"]["favoritesCount"] == 1


def test_favorite_errors(api):
    token = api.register("alice")
    for response in (api.post("/api/articles/nope/favorite"), api.delete("/api/articles/nope/favorite")):
        assert response.status_code == 401
        assert response.get_json() == {"errors": {"token": ["is missing"]}}
    for response in (
        api.post("/api/articles/nope/favorite", token=token),
        api.delete("/api/articles/nope/favorite", token),
    ):
        assert response.status_code == 404
        assert response.get_json() == {"errors": {"article": ["not found"]}}


def test_favorite_with_json_content_type_and_empty_body(api):
    token = api.register("alice")
    slug = api.create_article(token)["slug"]
    headers = {**api.auth(token), "Content-Type": "application/json"}
    response = api.client.post(f"/api/articles/{slug}/favorite", data=b"", headers=headers)
    assert response.status_code == 200
    assert api.client.delete(f"/api/articles/{slug}/favorite", data=b"", headers=headers).status_code == 200


def test_tags(api):
    token = api.register("alice")
    assert api.get("/api/tags").get_json() == {"tags": []}
    api.create_article(token, "One", tagList=["dragons", "training"])
    api.create_article(token, "Two", tagList=["dragons", "zebras", "  ", "apples"])
    tags = [f"t{i:03d}" for i in range(30)]
    api.create_article(token, "Many", tagList=tags)
    response = api.get("/api/tags")
    assert response.status_code == 200
    assert response.get_json() == {"tags": sorted(["apples", "dragons", "training", "zebras", *tags])}
