"""The rendered inhibition rules on a real Alertmanager: web1 stopped behind a frontend is one warning.

Debian's Alertmanager starts on 127.0.0.1 (temporary storage, no cluster port) with production's rendered
route tree and inhibit rules; only the receivers are replaced by webhooks to a recorder on 127.0.0.1, so
nothing reaches Slack. The alerts Prometheus sends when web1's app stops behind a frontend are posted
(BackendDown, WebHostDown and TargetDown of web1), together with a WebHostDown of web2 that nothing
explains. Alertmanager itself then decides what is suppressed and what is notified.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import threading
import time
import urllib.request
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
import yaml

ALERTMANAGER = Path("/usr/bin/prometheus-alertmanager")
ENV = "production"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Recorder(BaseHTTPRequestHandler):
    received: ClassVar[list[dict]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append({"receiver": self.path.strip("/"), **json.loads(body)})
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):  # the test's output stays readable
        pass


def _request(url: str, payload=None):
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        is_json = response.headers.get("Content-Type", "").startswith("application/json")
        return json.load(response) if is_json else None


def _alert(name: str, severity: str, instance: str) -> dict:
    now = datetime.now(UTC).isoformat()
    return {
        "labels": {"alertname": name, "severity": severity, "env": ENV, "instance": instance},
        "startsAt": now,
    }


@pytest.fixture(scope="module")
def outcome(rendered, tmp_path_factory):
    if not ALERTMANAGER.exists():
        pytest.fail(f"{ALERTMANAGER} is missing on this controller; run `make setup`")
    work = tmp_path_factory.mktemp("alertmanager-live")
    config = rendered[ENV].config
    recorder = ThreadingHTTPServer(("127.0.0.1", 0), type("Recorder", (_Recorder,), {"received": []}))
    threading.Thread(target=recorder.serve_forever, daemon=True).start()
    hook = f"http://127.0.0.1:{recorder.server_port}"
    config["receivers"] = [
        {"name": r["name"], "webhook_configs": [{"url": f"{hook}/{r['name']}", "send_resolved": True}]}
        for r in config["receivers"]
    ]
    config.pop("templates", None)
    # Seconds instead of the environment's minutes; grouping and inhibition stay as rendered.
    config["route"] |= {"group_wait": "1s", "group_interval": "2s", "repeat_interval": "1h"}
    (work / "alertmanager.yml").write_text(yaml.safe_dump(config))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with (work / "alertmanager.log").open("wb") as log:
        process = subprocess.Popen(
            [
                str(ALERTMANAGER),
                f"--config.file={work / 'alertmanager.yml'}",
                f"--storage.path={work / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"{url}/-/ready", timeout=1).close()
                break
            assert process.poll() is None, (work / "alertmanager.log").read_text()
            assert time.monotonic() < deadline, "Alertmanager did not become ready"
            time.sleep(0.2)
        # In the order Prometheus would send them: HAProxy notices first, the probe and scrape later.
        _request(f"{url}/api/v2/alerts", [_alert("BackendDown", "warning", "web1:5566")])
        _request(
            f"{url}/api/v2/alerts",
            [
                _alert("WebHostDown", "warning", "web1:5566"),
                _alert("TargetDown", "warning", "web1:5566"),
                _alert("HighLatency", "warning", "web1:5566"),
                _alert("WebHostDown", "warning", "web2:5566"),
            ],
        )
        # group_wait 1s; two more group intervals would carry any late or split notification.
        time.sleep(6)
        alerts = _request(f"{url}/api/v2/alerts")
        yield alerts, list(recorder.RequestHandlerClass.received)
    finally:
        process.terminate()
        process.wait(timeout=10)
        recorder.shutdown()


def _state(alerts: list[dict], name: str, instance: str) -> str:
    (found,) = [a for a in alerts if a["labels"]["alertname"] == name and a["labels"]["instance"] == instance]
    return found["status"]["state"]


def test_backend_down_suppresses_the_same_hosts_probe_scrape_and_symptoms(outcome):
    alerts, _ = outcome
    assert _state(alerts, "BackendDown", "web1:5566") == "active"
    for name in ("WebHostDown", "TargetDown", "HighLatency"):
        assert _state(alerts, name, "web1:5566") == "suppressed", name
    # Another host's failing probe is not explained by web1's BackendDown.
    assert _state(alerts, "WebHostDown", "web2:5566") == "active"


def test_one_stopped_host_is_one_warning_message_and_nothing_critical(outcome):
    _, messages = outcome
    notified = sorted(
        (m["receiver"], a["labels"]["alertname"], a["labels"]["instance"])
        for m in messages
        for a in m["alerts"]
        if a["status"] == "firing"
    )
    assert notified == [
        ("slack-warning", "BackendDown", "web1:5566"),
        ("slack-warning", "WebHostDown", "web2:5566"),
    ], messages
    assert len(messages) == 2, "each alert once, in a message of its own group"
