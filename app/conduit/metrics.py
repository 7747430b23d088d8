"""Prometheus metrics at /metrics (prometheus-flask-exporter).

Exported series:
- ``flask_http_request_total{method,status}``: requests served (what the request-rate alert reads);
- ``flask_http_request_duration_seconds{method,endpoint,status}``: latency histogram per Flask endpoint
  (the endpoint name, not the raw path, so slugs do not create new series);
- ``flask_http_request_exceptions_total{method,status}``: requests that raised;
- ``conduit_app_info{version}``: always 1, carries the running version.

Requests to /metrics and /health are not counted. With ``PROMETHEUS_MULTIPROC_DIR`` set (gunicorn, see
``conduit.gunicorn_conf``) every worker writes its values there and /metrics returns the sum over all
workers, whichever worker answers the scrape.
"""

from __future__ import annotations

from flask import Flask
from prometheus_client import CollectorRegistry, Gauge
from prometheus_flask_exporter import PrometheusMetrics

from conduit import __version__

EXCLUDED_PATHS = [r"^/metrics/?$", r"^/health/?$"]
APP_INFO_METRIC = "conduit_app_info"


class ConduitMetrics(PrometheusMetrics):
    """The exporter, with info gauges that aggregate across worker processes.

    The stock ``info`` gauge keeps one series per process id in multiprocess mode (and those of dead
    workers too); the value is the same in every worker, so the maximum is the honest aggregate.
    """

    def info(self, name, description, labelnames=None, labelvalues=None, **labels):
        if labelnames is None:
            labelnames, labelvalues = tuple(labels), tuple(labels.values())
        gauge = Gauge(name, description, labelnames, registry=self.registry, multiprocess_mode="max")
        if labelnames:
            gauge = gauge.labels(*labelvalues)
        gauge.set(1)
        return gauge


def init_app(app: Flask) -> ConduitMetrics:
    # A registry per app: tests build many apps in one process. In multiprocess mode the exporter
    # collects from PROMETHEUS_MULTIPROC_DIR instead of this registry when serving /metrics.
    metrics = ConduitMetrics(
        app,
        group_by="endpoint",
        excluded_paths=EXCLUDED_PATHS,
        registry=CollectorRegistry(auto_describe=True),
    )
    metrics.info(APP_INFO_METRIC, "Conduit application information", version=__version__)
    app.extensions["conduit.metrics"] = metrics
    return metrics
