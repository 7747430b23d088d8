"""Prometheus metrics at /metrics (prometheus-flask-exporter).

Exported series:
- ``flask_http_request_total{method,status}``: requests served (what the request-rate alert reads);
- ``flask_http_request_duration_seconds{method,endpoint,status}``: latency histogram per Flask endpoint
  (the endpoint name, not the raw path, so slugs do not create new series);
- ``flask_http_request_exceptions_total{method,status}``: requests that raised;
- ``flask_exporter_info{version}``: always 1, carries the exporter's version;
- ``conduit_app_info{version}``: always 1, carries the running version.

Requests to /metrics and /health are not counted. With ``PROMETHEUS_MULTIPROC_DIR`` set (gunicorn, see
``conduit.gunicorn_conf``) every worker writes its values there and /metrics returns the sum over all
workers, whichever worker answers the scrape.

The request hooks are the app's own (``ConduitMetrics.export_defaults``): they export the same series as
the exporter's stock hooks, with less work per request (see that method).
"""

from __future__ import annotations

import re
from timeit import default_timer

from flask import Flask, current_app, request
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_flask_exporter import NO_PREFIX, PrometheusMetrics

from conduit import __version__

# Paths whose requests are not counted, each with or without a trailing slash.
EXCLUDED_PATHS = ("/metrics", "/health")
# The same exclusion as regular expressions, for the exporter's own (user-defined) metrics.
EXCLUDED_PATH_PATTERNS = [rf"^{re.escape(path)}/?$" for path in EXCLUDED_PATHS]
# Every request path those patterns match, for a set lookup per request: ``$`` also matches before a final
# newline, so "/metrics%0A" (path "/metrics\n") is excluded as well.
EXCLUDED_REQUEST_PATHS = frozenset(
    path + slash + newline for path in EXCLUDED_PATHS for slash in ("", "/") for newline in ("", "\n")
)
APP_INFO_METRIC = "conduit_app_info"

# Where the hooks keep their state on the request object.
_START_TIME = "prom_start_time"
_REPORTED = "conduit_metrics_reported"
# Set by the exporter's do_not_track() and exclude_all_metrics() decorators (the /metrics view uses the
# first): such requests are not counted.
_DO_NOT_TRACK = "prom_do_not_track"
_EXCLUDE_ALL = "prom_exclude_all"
# Request attributes the lean hooks can group by: hashable, one value per request.
_LEAN_GROUPS = ("endpoint", "path")


class ConduitMetrics(PrometheusMetrics):
    """The exporter, with leaner request hooks and info gauges that aggregate across worker processes."""

    def info(self, name, description, labelnames=None, labelvalues=None, **labels):
        """The stock ``info`` gauge keeps one series per process id in multiprocess mode (and those of dead
        workers too); the value is the same in every worker, so the maximum is the honest aggregate."""
        if labelnames is None:
            labelnames, labelvalues = tuple(labels), tuple(labels.values())
        gauge = Gauge(name, description, labelnames, registry=self.registry, multiprocess_mode="max")
        if labelnames:
            gauge = gauge.labels(*labelvalues)
        gauge.set(1)
        return gauge

    def export_defaults(
        self, buckets=None, group_by="path", latency_as_histogram=True, prefix="flask", app=None, **kwargs
    ):
        """The exporter's default metrics (same names, help texts, labels and buckets), recorded by hooks
        that do less per request than the stock ones:

        - the labelled children of the histogram and the request counter are looked up once per distinct
          (method, endpoint, status) and kept in a dict, instead of two ``labels()`` calls per request
          (each validates and converts the label values and takes a lock);
        - the excluded paths are one set lookup instead of a regular expression search per pattern;
        - the request's state is read from its ``__dict__``, not with ``hasattr`` (a miss raises and
          catches an AttributeError) through the request proxy.

        A configuration these hooks do not cover (default labels, a summary, another grouping) gets the
        exporter's stock hooks.
        """
        if group_by not in _LEAN_GROUPS or not latency_as_histogram or self._default_labels or kwargs:
            return super().export_defaults(buckets, group_by, latency_as_histogram, prefix, app, **kwargs)

        app = app or self.app or current_app
        prefix = "" if prefix == NO_PREFIX else f"{prefix or 'flask'}_"
        try:
            self.info(
                f"{prefix}exporter_info",
                "Information about the Prometheus Flask exporter",
                version=self.version,
            )
        except ValueError:
            return  # this registry has them already

        duration_metric = Histogram(
            f"{prefix}http_request_duration_seconds",
            "Flask HTTP request duration in seconds",
            ("method", group_by, "status"),
            registry=self.registry,
            **({} if buckets is None else {"buckets": buckets}),
        )
        total_metric = Counter(
            f"{prefix}http_request_total",
            "Total number of HTTP requests",
            ("method", "status"),
            registry=self.registry,
        )
        exceptions_metric = Counter(
            f"{prefix}http_request_exceptions_total",
            "Total number of HTTP requests which resulted in an exception",
            ("method", "status"),
            registry=self.registry,
        )

        # (method, group, status code) -> (its duration histogram child, its request counter child). It
        # holds as many entries as the histogram has series. Two threads missing the same key at once both
        # get the same children from labels(), so the race is harmless.
        children: dict[tuple, tuple] = {}

        def tracked(req) -> bool:
            """False for the excluded paths and the views marked not to be tracked."""
            state = req.__dict__
            return not (_DO_NOT_TRACK in state or _EXCLUDE_ALL in state or req.path in EXCLUDED_REQUEST_PATHS)

        def record(req, status: int) -> None:
            """Observe the request's duration (if its start was taken) and count it, under ``status``."""
            state = req.__dict__
            start = state.get(_START_TIME)
            elapsed = None if start is None else max(default_timer() - start, 0)
            state[_REPORTED] = True
            method, group = req.method, getattr(req, group_by)
            pair = children.get((method, group, status))
            if pair is None:
                pair = children[method, group, status] = (
                    duration_metric.labels(method, group, status),
                    total_metric.labels(method, status),
                )
            duration, total = pair
            if elapsed is not None:
                duration.observe(elapsed)
            total.inc()

        def before_request():
            request._get_current_object().__dict__[_START_TIME] = default_timer()

        def after_request(response):
            req = request._get_current_object()
            if _REPORTED not in req.__dict__ and tracked(req):
                record(req, response.status_code)
            return response

        def teardown_request(exception=None):
            # An exception that escaped the app's error handlers: counted once in the exceptions counter,
            # and as a 500 in the others unless after_request already counted the request.
            if exception is None:
                return
            req = request._get_current_object()
            if not tracked(req):
                return
            exceptions_metric.labels(req.method, 500).inc()
            if _REPORTED not in req.__dict__:
                record(req, 500)

        app.before_request(before_request)
        app.after_request(after_request)
        app.teardown_request(teardown_request)


def init_app(app: Flask) -> ConduitMetrics:
    # A registry per app: tests build many apps in one process. In multiprocess mode the exporter
    # collects from PROMETHEUS_MULTIPROC_DIR instead of this registry when serving /metrics.
    metrics = ConduitMetrics(
        app,
        group_by="endpoint",
        excluded_paths=EXCLUDED_PATH_PATTERNS,
        registry=CollectorRegistry(auto_describe=True),
    )
    metrics.info(APP_INFO_METRIC, "Conduit application information", version=__version__)
    app.extensions["conduit.metrics"] = metrics
    return metrics
