"""Profiles, follow and unfollow."""

from __future__ import annotations


def test_get_profile_anonymous_and_authenticated(api):
    alice = api.register("alice")
    api.register("bob")
    response = api.get("/api/profiles/bob")
    assert response.status_code == 200
    assert response.get_json() == {
        "profile": {"username": "bob", "bio": None, "image": None, "following": False}
    }
    assert api.get("/api/profiles/bob", alice).get_json()["profile"]["following"] is False


def test_unknown_profile_is_404(api):
    token = api.register("alice")
    for response in (
        api.get("/api/profiles/nobody"),
        api.post("/api/profiles/nobody/follow", token=token),
        api.delete("/api/profiles/nobody/follow", token),
    ):
        assert response.status_code == 404
        assert response.get_json() == {"errors": {"profile": ["not found"]}}


def test_follow_and_unfollow(api):
    alice = api.register("alice")
    api.register("bob")
    response = api.post("/api/profiles/bob/follow", token=alice)
    assert response.status_code == 200
    assert response.get_json()["profile"] == {
        "username": "bob",
        "bio": None,
        "image": None,
        "following": True,
    }
    # following twice is not an error
    assert api.post("/api/profiles/bob/follow", token=alice).get_json()["profile"]["following"] is True
    assert api.get("/api/profiles/bob", alice).get_json()["profile"]["following"] is True
    assert api.get("/api/profiles/bob").get_json()["profile"]["following"] is False
    response = api.delete("/api/profiles/bob/follow", alice)
    assert response.status_code == 200
    assert response.get_json()["profile"]["following"] is False
    assert api.delete("/api/profiles/bob/follow", alice).status_code == 200
    assert api.get("/api/profiles/bob", alice).get_json()["profile"]["following"] is False


def test_follow_with_json_content_type_and_empty_body(api):
    alice = api.register("alice")
    api.register("bob")
    headers = {**api.auth(alice), "Content-Type": "application/json"}
    assert api.client.post("/api/profiles/bob/follow", data=b"", headers=headers).status_code == 200
    assert api.client.delete("/api/profiles/bob/follow", data=b"", headers=headers).status_code == 200


def test_follow_requires_token_before_lookup(api):
    for response in (api.post("/api/profiles/nobody/follow"), api.delete("/api/profiles/nobody/follow")):
        assert response.status_code == 401
        assert response.get_json() == {"errors": {"token": ["is missing"]}}
