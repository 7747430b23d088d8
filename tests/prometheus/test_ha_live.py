"""Debian's Prometheus on 127.0.0.1, configured by the role's render entry as an HA replica: what leaves the
server no longer tells the replicas apart.

- `store`: a Prometheus with basic auth and the remote-write receiver on, as a long-term store would be;
- `replica`: the wiring's HA replica: external labels {env, replica}, `prometheus_alert_drop_labels` and
  `prometheus_remote_write_drop_labels` [replica], remote write to `store` with basic auth (the password in
  the role's 0640 file), alerts to a stand-in Alertmanager on loopback;
- `control`: the same without the drop inputs, which shows that the `replica` label would get through.

Both replicas' configurations pass the full `promtool check config` (password files in place). The stand-in
Alertmanager records the alerts posted to it (the Watchdog fires at the first evaluation)."""

import json
import subprocess
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
import yaml
from controller_helpers import ansible_playbook, free_port, http_get, local_host, tool, wait_for

PROMETHEUS = Path("/usr/bin/prometheus")
USER = "lookout"
PASSWORD = "live-ha-test-password"
ENV = "live"


def _wait_for(condition, timeout: float = 30.0):
    return wait_for(condition, timeout)


class _Alertmanager(BaseHTTPRequestHandler):
    """Records every alert Prometheus posts (API v2: a JSON list of alerts with their labels)."""

    received: ClassVar[list[dict]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path == "/api/v2/alerts":
            type(self).received.extend(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def alertmanager():
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Alertmanager)
    _Alertmanager.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def _render(workdir: Path, hosts: dict[str, dict]) -> None:
    playbook = workdir / "render.yml"
    playbook.write_text(
        yaml.safe_dump(
            [
                {
                    "name": "Render the servers",
                    "hosts": "all",
                    "gather_facts": False,
                    "tasks": [
                        {
                            "name": "Render",
                            "ansible.builtin.include_role": {"name": "prometheus", "tasks_from": "render"},
                        }
                    ],
                }
            ]
        )
    )
    inventory = {"all": {"hosts": {name: local_host(**hostvars) for name, hostvars in hosts.items()}}}
    run = ansible_playbook(playbook, inventory, workdir)
    assert run.returncode == 0, run.stdout + run.stderr


def _start(config_dir: Path, data: Path, port: int, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            str(PROMETHEUS),
            f"--config.file={config_dir / 'prometheus.yml'}",
            f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{port}",
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def servers(tmp_path_factory, alertmanager):
    if not PROMETHEUS.exists():
        pytest.skip("Debian's prometheus is not on this controller (make setup)")
    workdir = tmp_path_factory.mktemp("ha-live")
    ports = {name: free_port() for name in ("store", "replica", "control")}
    dirs = {name: workdir / name for name in ports}
    common = {
        "prometheus_listen_address": "127.0.0.1",
        "prometheus_scrape_interval": "1s",
        "prometheus_evaluation_interval": "1s",
        "prometheus_blackbox_address": "",
    }
    store_url = f"http://127.0.0.1:{ports['store']}/api/v1/write"
    replica = {
        **common,
        "prometheus_alertmanager_targets": [f"127.0.0.1:{alertmanager.server_address[1]}"],
        "prometheus_remote_write": [
            {"url": store_url, "basic_auth": {"username": USER, "password": PASSWORD}}
        ],
    }
    hosts = {
        "store": {
            **common,
            "prometheus_web_basic_auth_enabled": True,
            "prometheus_web_basic_auth_users": {USER: PASSWORD},
        },
        "replica": {
            **replica,
            "prometheus_external_labels": {"env": ENV, "replica": "mon1"},
            "prometheus_alert_drop_labels": ["replica"],
            "prometheus_remote_write_drop_labels": ["replica"],
        },
        "control": {**replica, "prometheus_external_labels": {"env": ENV, "replica": "mon2"}},
    }
    for name, hostvars in hosts.items():
        hostvars |= {
            "prometheus_port": ports[name],
            "prometheus_config_dir": str(dirs[name]),
            "prometheus_render_dir": str(dirs[name]),
        }
    _render(workdir, hosts)
    checks = {}
    for name in ("replica", "control"):
        # What the role's configure step writes next to the configuration on a host.
        (dirs[name] / "client-remote-write-0.password").write_text(PASSWORD)
        checks[name] = subprocess.run(
            [tool("promtool"), "check", "config", str(dirs[name] / "prometheus.yml")],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    processes = [
        _start(
            dirs["store"],
            workdir / "data-store",
            ports["store"],
            f"--web.config.file={dirs['store'] / 'prometheus-web.yml'}",
            "--web.enable-remote-write-receiver",
        ),
        # Prometheus drops the alerts of its first evaluation (its Alertmanagers are not known yet) and
        # resends firing alerts after this delay (1m by default).
        _start(dirs["replica"], workdir / "data-replica", ports["replica"], "--rules.alert.resend-delay=1s"),
        _start(dirs["control"], workdir / "data-control", ports["control"], "--rules.alert.resend-delay=1s"),
    ]
    store = f"http://127.0.0.1:{ports['store']}"
    try:
        for name, port in ports.items():
            auth = (USER, PASSWORD) if name == "store" else ()
            assert _wait_for(
                lambda p=port, a=auth: http_get(f"http://127.0.0.1:{p}/-/ready", *a)[0] == 200
            ), f"{name} did not start"
        yield {"store": store, "dirs": dirs, "checks": checks}
    finally:
        # The replicas first: a replica flushes its remote-write queue to the store when it stops.
        for process in reversed(processes):
            process.terminate()
            process.wait(timeout=30)


def _stored(servers, query: str) -> list[dict]:
    url = f"{servers['store']}/api/v1/query?query={urllib.parse.quote(query)}"
    status, body = http_get(url, USER, PASSWORD)
    return [r["metric"] for r in json.loads(body)["data"]["result"]] if status == 200 else []


def test_promtool_accepts_the_remote_write_configuration(servers):
    for name, check in servers["checks"].items():
        assert check.returncode == 0, f"{name}: {check.stdout}{check.stderr}"
    config = yaml.safe_load((servers["dirs"]["replica"] / "prometheus.yml").read_text())
    (remote,) = config["remote_write"]
    assert remote["basic_auth"] == {
        "username": USER,
        "password_file": str(servers["dirs"]["replica"] / "client-remote-write-0.password"),
    }
    # The secret itself stays in the 0640 file (the render output is for review).
    assert PASSWORD not in (servers["dirs"]["replica"] / "prometheus.yml").read_text()


def test_remote_write_sends_the_series_without_the_replica_label(servers):
    """Through the store's basic auth: the replica's series arrive with `env` and without `replica`; the
    control's keep `replica`, so the label is there to drop."""

    def both_arrived():
        series = _stored(servers, f'prometheus_build_info{{env="{ENV}"}}')
        return series if len(series) == 2 else None

    series = _wait_for(both_arrived)
    assert series, _stored(servers, f'{{env="{ENV}"}}')[:5]
    assert sorted(s.get("replica", "") for s in series) == ["", "mon2"], series
    # Every series the replica wrote is free of it, not only one.
    assert _stored(servers, f'count({{env="{ENV}",replica=""}})')
    assert _stored(servers, f'{{env="{ENV}",replica="mon1"}}') == []


def test_alerts_reach_alertmanager_without_the_replica_label(servers, alertmanager):
    def watchdogs():
        seen = {
            json.dumps(a["labels"], sort_keys=True)
            for a in _Alertmanager.received
            if a["labels"].get("alertname") == "Watchdog"
        }
        return seen if len(seen) == 2 else None

    seen = _wait_for(watchdogs)
    assert seen, _Alertmanager.received[:3]
    labels = sorted((json.loads(s) for s in seen), key=lambda x: x.get("replica", ""))
    base = {"alertname": "Watchdog", "severity": "heartbeat", "env": ENV}
    assert labels == [base, {**base, "replica": "mon2"}]
