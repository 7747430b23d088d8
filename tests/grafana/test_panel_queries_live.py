"""Every dashboard query runs on a real Prometheus, fed by the real exporters this controller has.

A Prometheus (the Debian binary) starts on 127.0.0.1 with a temporary data directory and scrapes, once a
second: itself, a node_exporter, a tiny Flask app instrumented by Conduit's own ``conduit.metrics``, a
blackbox exporter probing that app when the binary is installed, and the controller's haproxy (Debian's 2.6)
in front of that app, its frontend and backend named as the haproxy role names them, with one server
named ``address:port`` like lookout's and one that never answers (a DOWN state); a few requests, one of
them failing, go through it. k6 drives the Flask app for two seconds
and writes its results to Prometheus with the experimental-prometheus-rw output, the way lookout's k6 role
does. Every process listens on loopback, runs for seconds and is stopped at the end.

No query may fail. A query must also return data whenever the exporter it reads ran here: that proves
the metric and label names the dashboards use against the real exporters, not only the PromQL syntax.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import panel_queries

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = Path("/usr/bin/prometheus")
NODE_EXPORTER = Path("/usr/bin/prometheus-node-exporter")
# Debian's prometheus-blackbox-exporter; LOOKOUT_BLACKBOX_EXPORTER points at another copy of the binary.
BLACKBOX_EXPORTER = Path(os.environ.get("LOOKOUT_BLACKBOX_EXPORTER", "/usr/bin/prometheus-blackbox-exporter"))
ENV = "test"
# Which dashboard reads which exporter (the Hosts dashboard's `up` panel reads node_exporter targets too).
SOURCES = {
    "lookout-conduit": "conduit",
    "lookout-hosts": "node",
    "lookout-probes": "blackbox",
    "lookout-loadtest": "k6",
}
HAPROXY = Path(os.environ.get("LOOKOUT_HAPROXY", "/usr/sbin/haproxy"))
# Queries of HAProxy's series read the haproxy exporter, whichever dashboard holds them.
HAPROXY_METRIC = "haproxy_"
# Series that exist only after rare events, which a few seconds of healthy traffic does not produce.
EVENTUALLY_EMPTY = {
    "lookout-probes": ["Certificate expires in", "Certificate expiry"],  # the probed app speaks plain HTTP
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer within {seconds}s")
        time.sleep(0.2)


def _scrapes(url: str) -> int:
    """Scrapes so far of the target scraped least (0 before the first)."""
    query = panel_queries.urllib.parse.urlencode({"query": "min(count_over_time(up[5m]))"})
    with urllib.request.urlopen(f"{url}/api/v1/query?{query}", timeout=5) as response:
        result = panel_queries.json.load(response)["data"]["result"]
    return int(float(result[0]["value"][1])) if result else 0


def _k6_binary() -> Path | None:
    found = shutil.which("k6") or (Path(sys.executable).parent / "k6")
    return Path(found) if found and Path(found).exists() else None


def _conduit_flask_app():
    """A Flask app with Conduit's metrics: the label set the Conduit dashboard relies on."""
    try:
        from conduit import metrics
    except ImportError:
        sys.path.insert(0, str(ROOT / "app"))
        from conduit import metrics
    from flask import Flask

    app = Flask("conduit-metrics-probe")

    @app.get("/api/ping")
    def ping():
        return {"pong": True}

    @app.get("/api/boom")
    def boom():
        raise RuntimeError("a failing request, for the 5xx and exception panels")

    metrics.init_app(app)
    return app


@contextlib.contextmanager
def _serve(app):
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        thread.join(timeout=5)


@contextlib.contextmanager
def _process(argv: list[str], log: Path):
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _haproxy_names() -> tuple[str, str]:
    """The public frontend's and the backend's names in the haproxy role (the dashboards select them)."""
    role = ROOT / "roles" / "haproxy"
    internals = yaml.safe_load((role / "vars" / "main.yml").read_text())
    defaults = yaml.safe_load((role / "defaults" / "main.yml").read_text())
    return internals["__haproxy_frontend_name"], defaults["haproxy_backend_name"]


def _haproxy_config(app_port: int, public_port: int, metrics_port: int) -> str:
    frontend, backend = _haproxy_names()
    dead = _free_port()
    return (
        "defaults\n  mode http\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n"
        f"frontend {frontend}\n  bind 127.0.0.1:{public_port}\n  default_backend {backend}\n"
        f"backend {backend}\n  option httpchk GET /api/ping\n"
        f"  server 127.0.0.1:{app_port} 127.0.0.1:{app_port} check inter 500 fall 1 rise 1\n"
        f"  server 127.0.0.1:{dead} 127.0.0.1:{dead} check inter 500 fall 1 rise 1\n"
        f"frontend metrics\n  bind 127.0.0.1:{metrics_port}\n"
        "  http-request use-service prometheus-exporter if { path /metrics }\n"
    )


def _start_haproxy(stack, work: Path, app_port, ran: dict, reasons: dict) -> tuple[str, int | None]:
    """The controller's haproxy before the app: (its scrape config, public port), or ("", None) and why."""
    if not (HAPROXY.exists() and app_port):
        ran["haproxy"] = False
        reasons["haproxy"] = f"{HAPROXY} is missing" if app_port else "no app behind the frontend"
        return "", None
    public_port, metrics_port = _free_port(), _free_port()
    (work / "haproxy.cfg").write_text(_haproxy_config(app_port, public_port, metrics_port))
    # `timeout` bounds it even if this test dies before stopping it.
    stack.enter_context(
        _process(
            ["timeout", "180", str(HAPROXY), "-db", "-f", str(work / "haproxy.cfg")], work / "haproxy.log"
        )
    )
    _wait_http(f"http://127.0.0.1:{metrics_port}/metrics", 10)
    ran["haproxy"] = True
    return _static("haproxy", f"127.0.0.1:{metrics_port}"), public_port


def _through_haproxy(public_port: int | None) -> None:
    """Requests through the frontend once its health check has seen the app: answers and one 5xx."""
    if public_port is None:
        return
    _wait_http(f"http://127.0.0.1:{public_port}/api/ping", 10)
    for path in ["/api/ping"] * 5 + ["/api/boom"]:
        with contextlib.suppress(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{public_port}{path}", timeout=2).close()


def _static(job: str, target: str) -> str:
    return (
        f"  - job_name: {job}\n    static_configs:\n"
        f"      - targets: ['{target}']\n        labels: {{env: {ENV}}}\n"
    )


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """(prometheus URL, {source: ran?}, reasons) after a few seconds of traffic."""
    if not PROMETHEUS.exists():
        print(f"SKIP: {PROMETHEUS} is missing; install Debian's prometheus package (make setup)")
        pytest.skip(f"{PROMETHEUS} is missing")
    work = tmp_path_factory.mktemp("prometheus")
    ran, reasons = {}, {}
    with contextlib.ExitStack() as stack:
        prometheus_port = _free_port()
        scrape = _static("prometheus", f"127.0.0.1:{prometheus_port}")

        try:
            app_port = stack.enter_context(_serve(_conduit_flask_app()))
            scrape += _static("conduit", f"127.0.0.1:{app_port}")
            ran["conduit"] = True
        except ImportError as error:
            ran["conduit"], reasons["conduit"] = (
                False,
                f"Conduit's metrics module cannot be imported: {error}",
            )
            app_port = None

        if NODE_EXPORTER.exists():
            node_port = _free_port()
            collectors = ["cpu", "loadavg", "meminfo", "filesystem", "diskstats", "netdev", "uname"]
            stack.enter_context(
                _process(
                    [
                        str(NODE_EXPORTER),
                        f"--web.listen-address=127.0.0.1:{node_port}",
                        "--collector.disable-defaults",
                        *[f"--collector.{c}" for c in collectors],
                    ],
                    work / "node_exporter.log",
                )
            )
            scrape += _static("node", f"127.0.0.1:{node_port}")
            ran["node"] = True
        else:
            ran["node"], reasons["node"] = False, f"{NODE_EXPORTER} is missing"

        if BLACKBOX_EXPORTER.exists() and app_port:
            blackbox_port = _free_port()
            (work / "blackbox.yml").write_text("modules:\n  http_2xx:\n    prober: http\n    timeout: 2s\n")
            stack.enter_context(
                _process(
                    [
                        str(BLACKBOX_EXPORTER),
                        f"--config.file={work / 'blackbox.yml'}",
                        f"--web.listen-address=127.0.0.1:{blackbox_port}",
                    ],
                    work / "blackbox.log",
                )
            )
            # Labelled like lookout's Prometheus does: instance = the web host, url = the probed page.
            scrape += (
                "  - job_name: blackbox-http\n    metrics_path: /probe\n    params: {module: [http_2xx]}\n"
                f"    static_configs:\n      - targets: ['http://127.0.0.1:{app_port}/api/ping']\n"
                f"        labels: {{env: {ENV}, instance: '127.0.0.1:{app_port}'}}\n"
                "    relabel_configs:\n"
                "      - {source_labels: [__address__], target_label: __param_target}\n"
                "      - {source_labels: [__address__], target_label: url}\n"
                f"      - {{target_label: __address__, replacement: '127.0.0.1:{blackbox_port}'}}\n"
            )
            ran["blackbox"] = True
        else:
            ran["blackbox"] = False
            reasons["blackbox"] = f"{BLACKBOX_EXPORTER} is missing" if app_port else "no app to probe"

        haproxy_scrape, haproxy_public_port = _start_haproxy(stack, work, app_port, ran, reasons)
        scrape += haproxy_scrape

        config = work / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n" + scrape
        )
        url = f"http://127.0.0.1:{prometheus_port}"
        stack.enter_context(
            _process(
                [
                    str(PROMETHEUS),
                    f"--config.file={config}",
                    f"--storage.tsdb.path={work / 'data'}",
                    f"--web.listen-address=127.0.0.1:{prometheus_port}",
                    "--web.enable-remote-write-receiver",
                ],
                work / "prometheus.log",
            )
        )
        _wait_http(f"{url}/-/ready", 20)

        k6 = _k6_binary()
        if k6 and app_port:
            script = work / "load.js"
            script.write_text(
                "import http from 'k6/http';\nimport { check, sleep } from 'k6';\n"
                "export const options = { vus: 2, duration: '2s' };\n"
                f"export default function () {{\n  const r = http.get('http://127.0.0.1:{app_port}/api/ping');\n"
                "  check(r, { 'status is 200': (x) => x.status === 200 });\n"
                f"  http.get('http://127.0.0.1:{app_port}/api/boom');\n  sleep(0.1);\n}}\n"
            )
            subprocess.run(
                [
                    str(k6),
                    "run",
                    "--quiet",
                    "--no-usage-report",
                    "--tag",
                    f"env={ENV}",
                    "-o",
                    "experimental-prometheus-rw",
                    str(script),
                ],
                env={
                    "PATH": "/usr/bin:/bin",
                    "HOME": str(work),
                    "K6_PROMETHEUS_RW_SERVER_URL": f"{url}/api/v1/write",
                    "K6_PROMETHEUS_RW_TREND_STATS": "p(95),p(99),avg,max",
                    "K6_PROMETHEUS_RW_PUSH_INTERVAL": "1s",
                },
                check=True,
                timeout=60,
                capture_output=True,
            )
            ran["k6"] = True
        else:
            ran["k6"], reasons["k6"] = False, "no k6 binary" if not k6 else "no app to load"
            if app_port:  # still give the Conduit panels a little traffic of both kinds
                for path in ["/api/ping"] * 5 + ["/api/boom"]:
                    with contextlib.suppress(OSError):
                        urllib.request.urlopen(f"http://127.0.0.1:{app_port}{path}", timeout=2).close()
        _through_haproxy(haproxy_public_port)
        # rate() needs two samples of every series inside its window: wait for two more scrapes of every
        # target after the traffic (Prometheus starts scraping a few seconds after it is ready).
        done = _scrapes(url) + 2
        deadline = time.monotonic() + 30
        while _scrapes(url) < done and time.monotonic() < deadline:
            time.sleep(0.5)
        for source, reason in reasons.items():
            print(f"panel_queries live test: {source} data not produced here: {reason}")
        yield url, ran
    # ExitStack stopped every process and server.


def _results(url: str):
    return panel_queries.check(url, overrides={"env": ENV})


def test_every_query_runs_without_error(live):
    url, _ = live
    results = _results(url)
    assert len(results) >= 50, "fewer queries than the dashboards hold"
    errors = [
        f"{r.query.name} [{r.query.ref}]: {r.error}\n  {r.query.query}"
        for r in results
        if r.status == "error"
    ]
    assert not errors, "\n".join(errors)


def test_queries_return_data_from_the_exporters_that_ran(live):
    url, ran = live
    missing = []
    for r in _results(url):
        source = "haproxy" if HAPROXY_METRIC in r.query.query else SOURCES[r.query.dashboard]
        allowed = any(
            r.query.panel.startswith(title) for title in EVENTUALLY_EMPTY.get(r.query.dashboard, [])
        )
        if ran.get(source) and r.status == "empty" and not allowed:
            missing.append(f"{r.query.name} [{r.query.ref}]: {r.query.query}")
    assert not missing, "queries without data although their exporter ran:\n" + "\n".join(missing)


def test_command_line_reports_and_exits_zero(live, capsys):
    url, _ = live
    assert panel_queries.main(["--prometheus", url, "--var", f"env={ENV}"]) == 0
    out = capsys.readouterr().out
    assert "panel_queries:" in out and "0 errors; passed" in out


def test_command_line_fails_on_a_broken_query(live, tmp_path, capsys):
    url, _ = live
    broken = {
        "uid": "broken",
        "templating": {"list": []},
        "panels": [
            {"id": 1, "title": "bad", "targets": [{"refId": "A", "expr": "sum(rate(up[$__rate_interval])"}]},
            {"id": 2, "title": "none", "targets": [{"refId": "A", "expr": 'up{job="no-such-job"}'}]},
        ],
    }
    path = tmp_path / "broken.json"
    path.write_text(panel_queries.json.dumps(broken))
    assert panel_queries.main(["--prometheus", url, "--dashboards", str(path)]) == 1
    out = capsys.readouterr().out
    assert "ERROR broken/bad (#1) [A]" in out and "EMPTY broken/none (#2) [A]" in out
    assert panel_queries.main(["--prometheus", url, "--dashboards", str(path), "--json"]) == 1
    capsys.readouterr()
    # An empty result fails only with --fail-on-empty, and --allow-empty lets it pass again.
    path.write_text(panel_queries.json.dumps({**broken, "panels": broken["panels"][1:]}))
    assert panel_queries.main(["--prometheus", url, "--dashboards", str(path)]) == 0
    assert panel_queries.main(["--prometheus", url, "--dashboards", str(path), "--fail-on-empty"]) == 1
    assert (
        panel_queries.main(
            [
                "--prometheus",
                url,
                "--dashboards",
                str(path),
                "--fail-on-empty",
                "--allow-empty",
                "^broken/none",
            ]
        )
        == 0
    )
