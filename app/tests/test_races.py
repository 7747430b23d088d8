"""Writers racing on unique values: simulated by hiding the pre-check, so the database constraint trips."""

from __future__ import annotations

from conduit.api import articles, users
from conduit_testing import PASSWORD


def _stale_first(monkeypatch, module, name, stale):
    """Make ``module.name`` return ``stale`` on its first call (what a racing writer would have seen)."""
    original = getattr(module, name)
    calls = []

    def patched(*args, **kwargs):
        calls.append(args)
        return stale if len(calls) == 1 else original(*args, **kwargs)

    monkeypatch.setattr(module, name, patched)
    return calls


def test_create_article_retries_after_a_slug_collision(api, monkeypatch):
    token = api.register("alice")
    api.create_article(token, "Taken")
    calls = _stale_first(monkeypatch, articles, "_unique_slug", "taken")
    article = api.create_article(token, "Taken")
    assert article["slug"].startswith("taken-")
    assert len(calls) == 2


def test_update_article_retries_after_a_slug_collision(api, monkeypatch):
    token = api.register("alice")
    api.create_article(token, "Taken")
    slug = api.create_article(token, "Other", tagList=["kept"])["slug"]
    _stale_first(monkeypatch, articles, "_unique_slug", "taken")
    response = api.put(f"/api/articles/{slug}", {"article": {"title": "Taken", "body": "new"}}, token)
    assert response.status_code == 200
    article = response.get_json()["article"]
    assert article["slug"].startswith("taken-")
    assert (article["title"], article["body"], article["tagList"]) == ("Taken", "new", ["kept"])


def test_registration_race_is_a_409(api, monkeypatch):
    api.register("alice")
    _stale_first(monkeypatch, users, "_conflicts", [])
    response = api.post(
        "/api/users", {"user": {"username": "alice", "email": "other@example.org", "password": PASSWORD}}
    )
    assert response.status_code == 409
    assert response.get_json() == {"errors": {"username": ["has already been taken"]}}
