"""Comments on articles."""

from __future__ import annotations

import re

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def test_comment_lifecycle(api):
    alice = api.register("alice")
    bob = api.register("bob")
    slug = api.create_article(alice)["slug"]
    response = api.post(f"/api/articles/{slug}/comments", {"comment": {"body": "Thank you so much!"}}, bob)
    assert response.status_code == 201
    comment = response.get_json()["comment"]
    assert set(comment) == {"id", "createdAt", "updatedAt", "body", "author"}
    assert comment["body"] == "Thank you so much!"
    assert comment["author"] == {"username": "bob", "bio": None, "image": None, "following": False}
    assert ISO_MS.match(comment["createdAt"])
    second = api.post(f"/api/articles/{slug}/comments", {"comment": {"body": "Again"}}, alice).get_json()[
        "comment"
    ]

    listed = api.get(f"/api/articles/{slug}/comments")
    assert listed.status_code == 200
    assert [c["id"] for c in listed.get_json()["comments"]] == [comment["id"], second["id"]]
    api.post("/api/profiles/bob/follow", token=alice)
    as_alice = api.get(f"/api/articles/{slug}/comments", alice).get_json()["comments"]
    assert as_alice[0]["author"]["following"] is True

    response = api.delete(f"/api/articles/{slug}/comments/{comment['id']}", bob)
    assert response.status_code == 204
    assert response.data == b""
    assert [c["id"] for c in api.get(f"/api/articles/{slug}/comments").get_json()["comments"]] == [
        second["id"]
    ]


def test_comment_errors(api):
    alice = api.register("alice")
    bob = api.register("bob")
    slug = api.create_article(alice)["slug"]
    other = api.create_article(alice, "Other")["slug"]
    comment = api.post(f"/api/articles/{slug}/comments", {"comment": {"body": "mine"}}, alice).get_json()[
        "comment"
    ]
    url = f"/api/articles/{slug}/comments/{comment['id']}"

    assert api.post(f"/api/articles/{slug}/comments", {"comment": {"body": "x"}}).status_code == 401
    assert api.delete(url).status_code == 401
    response = api.post(f"/api/articles/{slug}/comments", {"comment": {"body": ""}}, bob)
    assert response.status_code == 422
    assert response.get_json() == {"errors": {"body": ["can't be blank"]}}
    assert api.post(f"/api/articles/{slug}/comments", {}, bob).status_code == 422
    for response in (
        api.get("/api/articles/nope/comments"),
        api.post("/api/articles/nope/comments", {"comment": {"body": "x"}}, bob),
        api.delete(f"/api/articles/nope/comments/{comment['id']}", alice),
    ):
        assert response.status_code == 404
        assert response.get_json() == {"errors": {"article": ["not found"]}}
    for missing in ("999", "abc", str(comment["id"])):
        article = other if missing == str(comment["id"]) else slug
        response = api.delete(f"/api/articles/{article}/comments/{missing}", alice)
        assert response.status_code == 404
        assert response.get_json() == {"errors": {"comment": ["not found"]}}
    response = api.delete(url, bob)
    assert response.status_code == 403
    assert response.get_json() == {"errors": {"comment": ["forbidden"]}}
    assert api.delete(url, alice).status_code == 204
