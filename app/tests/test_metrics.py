"""Prometheus metrics of the app, in one process (the gunicorn test covers several)."""

from __future__ import annotations

import re

from conduit import __version__
from conduit_testing import make_app


def _samples(text: str, name: str) -> dict[str, float]:
    pattern = re.compile(rf"^{re.escape(name)}(\{{[^}}]*\}})? (\S+)$", re.MULTILINE)
    return {labels or "": float(value) for labels, value in pattern.findall(text)}


def test_metrics_exposes_requests_latency_and_version(api):
    api.register("alice")
    for _ in range(3):
        api.get("/api/articles")
    api.get("/api/articles/nope")
    text = api.client.get("/metrics").get_data(as_text=True)

    totals = _samples(text, "flask_http_request_total")
    assert totals == {
        '{method="POST",status="201"}': 1.0,
        '{method="GET",status="200"}': 3.0,
        '{method="GET",status="404"}': 1.0,
    }
    durations = _samples(text, "flask_http_request_duration_seconds_count")
    assert durations['{endpoint="api.articles.list_articles",method="GET",status="200"}'] == 3.0
    assert durations['{endpoint="api.articles.get_article",method="GET",status="404"}'] == 1.0
    assert 'flask_http_request_duration_seconds_bucket{endpoint="api.users.register",le="0.005"' in text
    assert _samples(text, "conduit_app_info") == {f'{{version="{__version__}"}}': 1.0}


def test_metrics_and_health_are_not_counted(client):
    for _ in range(5):
        assert client.get("/health").status_code == 200
        assert client.get("/metrics").status_code == 200
    text = client.get("/metrics").get_data(as_text=True)
    assert _samples(text, "flask_http_request_total") == {}
    assert "flask_http_request_total" in text  # declared, with no samples yet


def test_metrics_can_be_disabled(database_url):
    client = make_app(database_url, CONDUIT_METRICS="0").test_client()
    assert client.get("/api/tags").status_code == 200
    assert client.get("/metrics").status_code == 404
