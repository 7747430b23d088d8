"""The exporter's request hooks (conduit.metrics): what each request adds to which series, exactly once."""

from __future__ import annotations

import re

import pytest
from conduit import metrics
from conduit.metrics import ConduitMetrics
from conduit_testing import make_app
from flask import Flask, abort
from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase
from prometheus_flask_exporter import PrometheusMetrics

TOTAL = "flask_http_request_total"
COUNT = "flask_http_request_duration_seconds_count"
EXCEPTIONS = "flask_http_request_exceptions_total"
SAMPLE = re.compile(r"^(\w+)(\{[^}]*\})? (\S+)$")


def _samples(text: str, name: str) -> dict[str, float]:
    """The samples of one series name: {'{label="value",...}': value}."""
    found = {}
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match and match.group(1) == name:
            found[match.group(2) or ""] = float(match.group(3))
    return found


def _scrape(client) -> str:
    response = client.get("/metrics")
    assert response.status_code == 200
    return response.get_data(as_text=True)


class Escaped(Exception):
    """Raised by a view; its error handler fails, so the exception leaves the app's handlers."""


def _add_failing_routes(app: Flask) -> None:
    @app.get("/boom")
    def boom():
        raise RuntimeError("kaput")

    @app.errorhandler(Escaped)
    def fail_to_handle(_error):
        raise RuntimeError("the handler failed too")

    @app.get("/escape")
    def escape():
        raise Escaped()


def test_each_request_is_counted_under_its_method_endpoint_and_status(app):
    _add_failing_routes(app)
    client = app.test_client()
    for _ in range(2):
        assert client.get("/api/articles").status_code == 200
    assert client.get("/api/articles/nope").status_code == 404
    assert client.get("/no/such/path").status_code == 404
    assert client.post("/api/users", json={"user": {}}).status_code == 422
    assert client.delete("/api/tags").status_code == 405
    assert client.get("/boom").status_code == 500  # handled by the app's catch-all handler
    for path in ("/metrics", "/metrics/", "/health", "/health/", "/metrics%0A"):
        client.get(path)
    text = _scrape(client)

    assert _samples(text, TOTAL) == {
        '{method="GET",status="200"}': 2.0,
        '{method="GET",status="404"}': 2.0,
        '{method="POST",status="422"}': 1.0,
        '{method="DELETE",status="405"}': 1.0,
        '{method="GET",status="500"}': 1.0,
    }
    assert _samples(text, COUNT) == {
        '{endpoint="api.articles.list_articles",method="GET",status="200"}': 2.0,
        '{endpoint="api.articles.get_article",method="GET",status="404"}': 1.0,
        '{endpoint="None",method="GET",status="404"}': 1.0,
        '{endpoint="api.users.register",method="POST",status="422"}': 1.0,
        '{endpoint="None",method="DELETE",status="405"}': 1.0,
        '{endpoint="boom",method="GET",status="500"}': 1.0,
    }
    assert _samples(text, EXCEPTIONS) == {}  # every exception above was handled


def test_an_exception_leaving_the_handlers_is_counted_once(app):
    _add_failing_routes(app)
    client = app.test_client()
    with pytest.raises(RuntimeError):  # testing: Flask propagates it, no response hooks run
        client.get("/escape")
    app.config["PROPAGATE_EXCEPTIONS"] = False  # production: a 500 response, through the response hooks
    assert client.get("/escape").status_code == 500
    text = _scrape(client)

    assert _samples(text, EXCEPTIONS) == {'{method="GET",status="500"}': 2.0}
    assert _samples(text, TOTAL) == {'{method="GET",status="500"}': 2.0}
    assert _samples(text, COUNT) == {'{endpoint="escape",method="GET",status="500"}': 2.0}


def test_a_repeated_request_adds_to_the_same_series_and_labels_are_resolved_once(app, monkeypatch):
    client = app.test_client()
    assert client.get("/api/tags").status_code == 200
    first = _scrape(client)

    calls = []
    labels = MetricWrapperBase.labels

    def counting_labels(self, *args, **kwargs):
        calls.append(self._name)
        return labels(self, *args, **kwargs)

    monkeypatch.setattr(MetricWrapperBase, "labels", counting_labels)
    for _ in range(3):
        assert client.get("/api/tags").status_code == 200
    assert calls == []  # the labelled children of the first request were reused
    second = _scrape(client)

    series = '{endpoint="api.articles.list_tags",method="GET",status="200"}'
    assert _samples(first, COUNT) == {series: 1.0}
    assert _samples(second, COUNT) == {series: 4.0}
    assert _samples(second, TOTAL) == {'{method="GET",status="200"}': 4.0}
    # No new series at all: the same sample names and labels as after the first request.
    names = {line.rsplit(" ", 1)[0] for line in first.splitlines() if not line.startswith("#")}
    assert names == {line.rsplit(" ", 1)[0] for line in second.splitlines() if not line.startswith("#")}

    # Another status on the same endpoint is a new pair of children, resolved once.
    assert client.get("/api/articles/nope").status_code == 404
    assert client.get("/api/articles/other").status_code == 404
    assert sorted(calls) == ["flask_http_request", "flask_http_request_duration_seconds"]


@pytest.mark.parametrize(
    "path",
    [
        "/metrics",
        "/metrics/",
        "/health",
        "/health/",
        "/metrics\n",
        "/health/\n",
        "/metrics//",
        "/metricsx",
        "/healthz",
        "/api/health",
        "/",
        "",
        "/Metrics",
        "/health\n\n",
        "/metrics/\nx",
    ],
)
def test_the_excluded_paths_are_exactly_those_the_patterns_match(path):
    matched = any(re.match(pattern, path) for pattern in metrics.EXCLUDED_PATH_PATTERNS)
    assert (path in metrics.EXCLUDED_REQUEST_PATHS) is matched
    assert metrics.EXCLUDED_PATH_PATTERNS == [r"^/metrics/?$", r"^/health/?$"]


def _demo_app(metrics_class, **options) -> Flask:
    """A small app with the exporter: an answer, a 404, a 422, a failure and untracked views."""
    app = Flask("demo")
    exporter = metrics_class(
        app,
        excluded_paths=metrics.EXCLUDED_PATH_PATTERNS,
        registry=CollectorRegistry(auto_describe=True),
        **options,
    )

    @app.get("/items/<int:number>")
    def item(number):
        if number == 0:
            abort(404)
        return {"number": number}

    @app.post("/items")
    def create():
        return {"errors": {"title": ["can't be blank"]}}, 422

    @app.get("/fail")
    def fail():
        raise RuntimeError("kaput")

    @app.get("/quiet")
    @exporter.do_not_track()
    def quiet():
        return "shh"

    @app.get("/quiet/fail")
    @exporter.do_not_track()
    def quiet_failure():
        raise RuntimeError("kaput, quietly")

    return app


def _exercise(app: Flask) -> str:
    """The same requests on each app; the scrape with the timing-dependent values masked."""
    client = app.test_client()
    for path in (
        "/items/1",
        "/items/2",
        "/items/1",
        "/items/0",
        "/nowhere",
        "/quiet",
        "/health",
        "/metrics/",
    ):
        client.get(path)
    client.post("/items")
    client.put("/items")
    app.config["PROPAGATE_EXCEPTIONS"] = False
    client.get("/fail")
    client.get("/quiet/fail")
    app.config["PROPAGATE_EXCEPTIONS"] = True
    with pytest.raises(RuntimeError):
        client.get("/fail")
    masked = []
    for line in _scrape(client).splitlines():
        match = SAMPLE.match(line)
        name, labels = match.group(1, 2) if match else ("", "")
        timed = name.endswith(("_sum", "_created")) or (name.endswith("_bucket") and "+Inf" not in labels)
        masked.append(f"{name}{labels or ''} <timed>" if timed else line)
    return "\n".join(masked)


@pytest.mark.parametrize("group_by", ["endpoint", "path", "url_rule"])
def test_the_same_series_as_the_stock_exporter(group_by):
    stock = _exercise(_demo_app(PrometheusMetrics, group_by=group_by))
    ours = _exercise(_demo_app(ConduitMetrics, group_by=group_by))
    assert ours == stock
    assert f'{TOTAL}{{method="GET",status="200"}} 3.0' in ours
    assert f'{EXCEPTIONS}{{method="GET",status="500"}} 2.0' in ours


def test_exporting_the_defaults_twice_counts_requests_once(database_url):
    app = make_app(database_url)
    app.extensions["conduit.metrics"].export_defaults(group_by="endpoint", app=app)
    client = app.test_client()
    assert client.get("/api/tags").status_code == 200
    assert _samples(_scrape(client), TOTAL) == {'{method="GET",status="200"}': 1.0}
    app.extensions["conduit.engine"].dispose()
