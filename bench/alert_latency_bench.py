#!/usr/bin/env python3
"""Benchmark of the alert path: how long after its `for` window a WebsiteDown (and a HighRequestRate)
message reaches Slack, and how long after recovery the resolved message does, with an inventory's knobs.

Not a test: it prints figures (and optionally writes them as JSON). Everything runs on 127.0.0.1:

1. the production inventory's knobs (inventories/<env>/group_vars/all/vars.yml) are mapped to the roles'
   inputs through the one-to-one lines of group_vars/all/prometheus.yml and alertmanager.yml (probe and
   scrape intervals, evaluation intervals, the routes' waits, thresholds), `for` shortened by --for so that
   the run is bounded; the prometheus, alertmanager and blackbox_exporter roles' own `render` entries
   write the configurations (one ansible-playbook run on this machine, no host touched); TLS and basic auth
   stay off (they add milliseconds, not intervals);
2. Debian's binaries run them: a blackbox exporter; the "pair" as production runs it, two Prometheus
   replicas (the replica label dropped from alerts) sending to two Alertmanagers gossiping as one cluster
   (the inventory's peer timeout: the second member waits that long, then finds the message sent); and
   the "single" shape of a one-monitoring-host environment (development, the demo): one Prometheus, one
   Alertmanager. Both shapes watch the same stand-ins and post to the same Slack stand-in
   (scripts/slack-receiver.py) under webhook paths of their own;
3. stand-ins: the site (the frontend's public URL, probed by the site job: WebsiteDown) and five web
   hosts exposing a flask_http_request_total counter of the requests they serve (scraped by the web job:
   HighRequestRate; probed per host: WebHostDown);
4. WebsiteDown, --stops times: the site stand-in stops listening (connections refused, as a stopped
   HAProxy), the bench waits for the firing message of each shape, starts it again and waits for the
   resolved ones, then one critical group interval more for any extra message;
5. HighRequestRate, meanwhile, once per web stand-in (staggered): --load requests per second until the
   firing message of both shapes arrived, then none; the resolved message comes at the warning route's
   next group tick.

Per sample: firing message - (outage start + for), resolved message - recovery, and where the time goes
from Prometheus' own view (/api/v1/alerts, polled): detection (activeAt - outage start) and the alert path
(message - (activeAt + for)); the message counts per outage (one firing and one resolved expected in both
shapes). Then the median and every sample against the targets (WebsiteDown: <= 10 s after `for`,
resolved <= 15 s after recovery), the knobs used, and the 1-minute load average at start, during and end.

Usage (from the repository root, with the venv that has Ansible):

    python bench/alert_latency_bench.py [--env production] [--stops 5] [--for 20s] [--load 20]
                                        [--json artifacts/bench/alert-latency.json]

The latency after the `for` window does not depend on its length: Prometheus fires at the first
evaluation at least `for` after the condition was first seen, and what follows (the group wait, the
cluster) starts there. --for only bounds the run; keep it a multiple of the web alerts' evaluation
interval, as the inventories' 1m is (with 15s and a 2s interval Prometheus fires at 16 s: one second
more).

Every wait is bounded; the run takes about 10 minutes with the defaults (most of it the warning route's
5 m group interval before the last HighRequestRate resolution). The exit status is non-zero only when
something does not start or a bound wait expires.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml
from bench_ansible import ansible_environ, find_ansible_playbook

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS = "/usr/bin/prometheus"
ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
BLACKBOX = "/usr/bin/prometheus-blackbox-exporter"
RECEIVER = ROOT / "scripts" / "slack-receiver.py"
TARGETS = {"WebsiteDown": {"firing": 10.0, "resolved": 15.0}}
WEB_HOSTS = 5
SHAPES = ("pair", "single")
START_TIMEOUT = 90
DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}

# The three roles' render entries, each on its hosts of the inventory the bench writes.
PLAYBOOK = [
    {
        "name": f"Render the {role} configuration of the alert-latency benchmark",
        "hosts": group,
        "gather_facts": False,
        "tasks": [
            {"name": "Render", "ansible.builtin.include_role": {"name": role, "tasks_from": "render"}},
        ],
    }
    for role, group in (
        ("prometheus", "prometheus"),
        ("alertmanager", "alertmanager"),
        ("blackbox_exporter", "blackbox"),
    )
]


def seconds(duration: str) -> float:
    """A Prometheus duration (1m30s, 500ms) in seconds."""
    found = re.findall(r"([0-9]+)(ms|y|w|d|h|m|s)", str(duration))
    if not found or "".join(n + u for n, u in found) != str(duration):
        raise ValueError(f"not a Prometheus duration: {duration!r}")
    return sum(int(n) * DURATION_UNITS[u] for n, u in found)


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gossip_port() -> int:
    """A port free for both tcp and udp (Alertmanager's gossip uses both)."""
    while True:
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, contextlib.suppress(OSError):
            udp.bind(("127.0.0.1", port))
            return port


def get_json(url: str, timeout: float = 3) -> object:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


def wait_until(condition, timeout: float, what: str, step: float = 0.25):
    """condition()'s first true result within timeout seconds, else SystemExit naming what was awaited."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError, ValueError, KeyError, urllib.error.URLError):
            result = condition()
            if result:
                return result
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(step)


def load1() -> float:
    return round(os.getloadavg()[0], 2)


# --- the inventory's knobs as the roles' inputs ---------------------------------------------------------


def inventory_knobs(env: str) -> dict:
    return yaml.safe_load((ROOT / "inventories" / env / "group_vars" / "all" / "vars.yml").read_text())


def wired_inputs(knobs: dict, wiring: str) -> dict:
    """The role inputs group_vars/all/<wiring>.yml sets to exactly one knob ("{{ lookout_x }}"), with the
    knob's value: the timings and thresholds the environment runs with."""
    lines = yaml.safe_load((ROOT / "group_vars" / "all" / f"{wiring}.yml").read_text())
    inputs = {}
    for name, value in lines.items():
        found = re.fullmatch(r"\{\{\s*(lookout_[a-z0-9_]+)\s*\}\}", str(value).strip())
        if found and found.group(1) in knobs:
            inputs[name] = knobs[found.group(1)]
    return inputs


# --- stand-ins: the site and the web hosts ------------------------------------------------------------


class StandIn:
    """An HTTP server on 127.0.0.1 that can stop listening and start again on the same port. As a web host
    it counts the requests it serves (not /metrics, /health: the app's exporter leaves those out) in
    flask_http_request_total."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.port = free_port()
        self.count = 0
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None
        self.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def handler(self) -> type[BaseHTTPRequestHandler]:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/metrics":
                    with stand_in.lock:
                        count = stand_in.count
                    body = (
                        "# TYPE flask_http_request_total counter\n"
                        f'flask_http_request_total{{method="GET",status="200"}} {count}\n'
                    ).encode()
                else:
                    if self.path.rstrip("/") != "/health":
                        with stand_in.lock:
                            stand_in.count += 1
                    body = b"ok\n"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        return Handler

    def start(self) -> None:
        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), self.handler())
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Connections refused from now on, as a stopped service's."""
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


class Load(threading.Thread):
    """GET / on a stand-in at a steady rate until stopped."""

    def __init__(self, stand_in: StandIn, per_second: float) -> None:
        super().__init__(daemon=True)
        self.url, self.period = f"http://{stand_in.address}/", 1.0 / per_second
        self.halt = threading.Event()

    def run(self) -> None:
        next_at = time.monotonic()
        while not self.halt.is_set():
            with contextlib.suppress(OSError):
                urllib.request.urlopen(self.url, timeout=2).read()
            next_at += self.period
            self.halt.wait(max(0.0, next_at - time.monotonic()))


# --- Prometheus' view: when each alert was active, firing, gone -----------------------------------------


class AlertWatch(threading.Thread):
    """Polls /api/v1/alerts of every Prometheus: per (server, alertname, instance) the activeAt of each
    episode and when it was first seen firing and seen gone (resolved in Prometheus)."""

    def __init__(self, servers: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.servers = servers
        self.halt = threading.Event()
        self.lock = threading.Lock()
        self.episodes: dict[tuple[str, str, str], list[dict]] = {}

    def run(self) -> None:
        while not self.halt.is_set():
            for server, address in self.servers.items():
                with contextlib.suppress(OSError, ValueError, urllib.error.URLError):
                    alerts = get_json(f"http://{address}/api/v1/alerts", timeout=1)["data"]["alerts"]
                    self._update(server, alerts, time.time())
            self.halt.wait(0.25)

    def _update(self, server: str, alerts: list[dict], now: float) -> None:
        seen = set()
        with self.lock:
            for alert in alerts:
                labels = alert["labels"]
                key = (server, labels.get("alertname", ""), labels.get("instance", ""))
                seen.add(key)
                active = datetime.fromisoformat(alert["activeAt"].replace("Z", "+00:00")).timestamp()
                episodes = self.episodes.setdefault(key, [])
                if not episodes or episodes[-1]["gone"] is not None or episodes[-1]["active"] != active:
                    episodes.append({"active": active, "firing": None, "gone": None})
                if alert["state"] == "firing" and episodes[-1]["firing"] is None:
                    episodes[-1]["firing"] = now
            for key, episodes in self.episodes.items():
                if key[0] == server and key not in seen and episodes[-1]["gone"] is None:
                    episodes[-1]["gone"] = now

    def episode(self, servers: list[str], alertname: str, instance: str, after: float) -> dict | None:
        """The earliest episode since `after` among these servers (a pair's first replica to see it)."""
        with self.lock:
            found = [
                e
                for s in servers
                for e in self.episodes.get((s, alertname, instance), [])
                if e["active"] >= after - 1
            ]
        if not found:
            return None
        first = min(found, key=lambda e: e["active"])
        gone = [e["gone"] for e in found if e["gone"] is not None]
        return {"active": first["active"], "gone": min(gone) if gone else None}


# --- the monitoring processes ---------------------------------------------------------------------------


class Stack:
    """Renders the configurations with the roles and runs the blackbox exporter, the pair (two Prometheus,
    two clustered Alertmanagers) and the single shape (one of each)."""

    def __init__(
        self,
        work: Path,
        inputs: dict,
        site: StandIn,
        web: list[StandIn],
        receiver_url: str,
        *,
        debug: bool = False,
    ) -> None:
        self.debug = debug
        self.peer_timeout = inputs["alertmanager"].get("alertmanager_cluster_peer_timeout", "15s")
        self.work = work
        self.processes: list[subprocess.Popen] = []
        self.receiver_url = receiver_url
        self.blackbox = f"127.0.0.1:{free_port()}"
        self.prometheus = {name: f"127.0.0.1:{free_port()}" for name in ("prom-a", "prom-b", "prom-c")}
        self.alertmanager = {name: f"127.0.0.1:{free_port()}" for name in ("am-1", "am-2", "am-3")}
        self.gossip = {name: f"127.0.0.1:{gossip_port()}" for name in ("am-1", "am-2")}
        self.shape_prometheus = {"pair": ["prom-a", "prom-b"], "single": ["prom-c"]}
        self.shape_alertmanager = {"pair": ["am-1", "am-2"], "single": ["am-3"]}
        self._render(inputs, site, web)

    def _render(self, inputs: dict, site: StandIn, web: list[StandIn]) -> None:
        host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
        env = inputs["env"]
        prometheus_hosts = {}
        for shape, names in self.shape_prometheus.items():
            for name in names:
                directory = self.work / name
                prometheus_hosts[name] = {
                    **host,
                    **inputs["prometheus"],
                    "prometheus_render_dir": str(directory),
                    "prometheus_config_dir": str(directory),
                    "prometheus_listen_address": "127.0.0.1",
                    "prometheus_port": int(self.prometheus[name].rsplit(":", 1)[1]),
                    "prometheus_web_basic_auth_enabled": False,
                    "prometheus_tls_enabled": False,
                    # As group_vars/all/prometheus.yml wires an HA group: the same server but for `replica`.
                    "prometheus_external_labels": {"env": env, "replica": name},
                    "prometheus_alert_drop_labels": ["replica"],
                    "prometheus_web_job_name": f"{env}-web",
                    "prometheus_site_job_name": f"{env}-site",
                    "prometheus_web_targets": [s.address for s in web],
                    "prometheus_site_urls": [f"http://{site.address}/health"],
                    "prometheus_blackbox_address": self.blackbox,
                    "prometheus_alertmanager_targets": [
                        self.alertmanager[a] for a in self.shape_alertmanager[shape]
                    ],
                    "prometheus_self_targets": [self.prometheus[p] for p in names] if len(names) > 1 else [],
                    "prometheus_alert_alertmanager_cluster_size": len(self.shape_alertmanager[shape]),
                }
        alertmanager_hosts = {
            shape: {
                **host,
                **inputs["alertmanager"],
                "alertmanager_render_dir": str(self.work / f"am-{shape}"),
                "alertmanager_config_dir": str(self.work / f"am-{shape}"),
                "alertmanager_slack_api_url": f"{self.receiver_url}/services/{shape}",
                "alertmanager_web_basic_auth_enabled": False,
                "alertmanager_tls_enabled": False,
            }
            for shape in SHAPES
        }
        blackbox_hosts = {
            "blackbox": {
                **host,
                "blackbox_exporter_render_dir": str(self.work / "blackbox"),
                "blackbox_exporter_config_dir": str(self.work / "blackbox"),
                "blackbox_exporter_render_checker": BLACKBOX,
            }
        }
        inventory = {
            "all": {
                "children": {
                    "prometheus": {"hosts": prometheus_hosts},
                    "alertmanager": {"hosts": {f"am-{s}": h for s, h in alertmanager_hosts.items()}},
                    "blackbox": {"hosts": blackbox_hosts},
                }
            }
        }
        run_dir = self.work / "ansible"
        run_dir.mkdir()
        (run_dir / "render.yml").write_text(yaml.safe_dump(PLAYBOOK, sort_keys=False))
        (run_dir / "inventory.json").write_text(json.dumps(inventory))
        run = subprocess.run(
            [find_ansible_playbook(), "-i", "inventory.json", "render.yml"],
            cwd=run_dir,
            env=ansible_environ(run_dir),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if run.returncode != 0:
            raise SystemExit(f"rendering the configurations failed:\n{run.stdout[-6000:]}{run.stderr}")
        for shape in SHAPES:
            directory = self.work / f"am-{shape}"
            # What the role's configure step writes on a host: the webhook URL file, the heartbeat URL (the
            # render entry leaves a placeholder for that secret) to the stand-in's heartbeat endpoint.
            (directory / "slack_api_url").write_text(f"{self.receiver_url}/services/{shape}")
            config = yaml.safe_load((directory / "alertmanager.yml").read_text())
            for receiver in config["receivers"]:
                for hook in receiver.get("webhook_configs", []):
                    hook["url"] = f"{self.receiver_url}/heartbeat/{shape}"
            (directory / "alertmanager.yml").write_text(yaml.safe_dump(config, sort_keys=False))

    def _start(self, name: str, argv: list[str]) -> None:
        log = (self.work / f"{name}.log").open("ab")
        self.processes.append(
            subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        )

    def start(self) -> None:
        self._start(
            "blackbox",
            [
                BLACKBOX,
                f"--config.file={self.work / 'blackbox' / 'blackbox.yml'}",
                f"--web.listen-address={self.blackbox}",
            ],
        )
        for name, address in self.alertmanager.items():
            shape = "pair" if name in self.gossip else "single"
            cluster = (
                [
                    f"--cluster.listen-address={self.gossip[name]}",
                    f"--cluster.advertise-address={self.gossip[name]}",
                    *(f"--cluster.peer={a}" for n, a in self.gossip.items() if n != name),
                    # As the role's unit runs a clustered member (alertmanager_cluster_peer_timeout).
                    f"--cluster.peer-timeout={self.peer_timeout}",
                ]
                if shape == "pair"
                else ["--cluster.listen-address="]
            )
            self._start(
                name,
                [
                    ALERTMANAGER,
                    f"--config.file={self.work / f'am-{shape}' / 'alertmanager.yml'}",
                    f"--storage.path={self.work / f'{name}-data'}",
                    f"--web.listen-address={address}",
                    *cluster,
                    *(["--log.level=debug"] if self.debug else []),
                ],
            )
        for name, address in self.prometheus.items():
            self._start(
                name,
                [
                    PROMETHEUS,
                    f"--config.file={self.work / name / 'prometheus.yml'}",
                    f"--storage.tsdb.path={self.work / f'{name}-data'}",
                    f"--web.listen-address={address}",
                ],
            )
        for address in [*self.prometheus.values(), *self.alertmanager.values()]:
            wait_until(lambda a=address: answers(f"http://{a}/-/ready"), START_TIMEOUT, f"{address} ready")
        wait_until(
            lambda: answers(f"http://{self.blackbox}/-/healthy"), START_TIMEOUT, "the blackbox exporter"
        )

        def settled() -> bool:
            for name in self.gossip:
                status = get_json(f"http://{self.alertmanager[name]}/api/v2/status")["cluster"]
                if status["status"] != "ready" or len(status["peers"]) != 2:
                    return False
            return True

        wait_until(settled, START_TIMEOUT, "the Alertmanager pair to form one settled cluster")

        def all_up() -> bool:
            for address in self.prometheus.values():
                targets = get_json(f"http://{address}/api/v1/targets?state=active")["data"]["activeTargets"]
                if not targets or any(t["health"] != "up" for t in targets):
                    return False
            return True

        wait_until(all_up, START_TIMEOUT, "every Prometheus to have every target up")

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=20)
            if process.poll() is None:
                process.kill()


# --- the Slack stand-in's messages ----------------------------------------------------------------------


class Messages:
    def __init__(self, receiver_url: str, env: str) -> None:
        self.url, self.env = receiver_url, env

    def select(self, shape: str, alertname: str, since: float, instance: str | None = None) -> list[dict]:
        found = []
        for message in get_json(f"{self.url}/messages?since={since}"):
            if message["path"] != f"/services/{shape}":
                continue
            if f" {alertname} in {self.env} " not in (message["title"] or "") + " ":
                continue
            # The instance as a whole (127.0.0.1:4123 is no match for 127.0.0.1:41234).
            if instance and not re.search(re.escape(instance) + r"(?![0-9])", json.dumps(message["body"])):
                continue
            found.append(message)
        return found

    def first(self, shape: str, alertname: str, status: str, since: float, instance: str | None = None):
        found = [m for m in self.select(shape, alertname, since, instance) if m["status"] == status]
        return found[0]["received_at"] if found else None


# --- the measurements -------------------------------------------------------------------------------------


class Bench:
    """One run: the stand-ins, the monitoring processes, Prometheus' view and the Slack stand-in's."""

    def __init__(self, args: argparse.Namespace, inputs: dict, timing: dict, work: Path) -> None:
        self.args, self.timing = args, timing
        self.receiver_port = free_port()
        self.receiver_url = f"http://127.0.0.1:{self.receiver_port}"
        self.receiver = subprocess.Popen(
            [
                *(sys.executable, str(RECEIVER), "--listen", f"127.0.0.1:{self.receiver_port}"),
                *("--store", str(work / "messages.jsonl")),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.stack: Stack | None = None
        self.watch: AlertWatch | None = None
        wait_until(lambda: answers(f"{self.receiver_url}/health"), 20, "the Slack stand-in")
        self.site = StandIn("site")
        self.web = [StandIn(f"web{i}") for i in range(1, WEB_HOSTS + 1)]
        self.messages = Messages(self.receiver_url, inputs["env"])
        print("rendering the configurations with the roles' render entries ...", flush=True)
        self.stack = Stack(work, inputs, self.site, self.web, self.receiver_url, debug=args.keep)

    def start(self) -> None:
        print("starting the blackbox exporter, 3 Prometheus and 3 Alertmanagers ...", flush=True)
        self.stack.start()
        self.watch = AlertWatch(self.stack.prometheus)
        self.watch.start()

    def close(self) -> None:
        if self.watch:
            self.watch.halt.set()
        if self.stack:
            self.stack.stop()
        self.receiver.terminate()
        self.receiver.wait(timeout=10)

    def sample(self, alert: str, number: int, instance: str, times: dict) -> list[dict]:
        """Per shape: the figures of one outage (times: down, up as the outage's start and recovery)."""
        samples = []
        for shape in SHAPES:
            servers = self.stack.shape_prometheus[shape]
            episode = self.watch.episode(servers, alert, instance, times["down"])
            scope = instance if alert == "HighRequestRate" else None
            listed = self.messages.select(shape, alert, times["down"], scope)
            firing = self.messages.first(shape, alert, "firing", times["down"], scope)
            resolved = self.messages.first(shape, alert, "resolved", times["down"], scope)
            gone = episode["gone"] if episode else None
            sample = {
                "alert": alert,
                "number": number,
                "shape": shape,
                "after_for_s": round(firing - (times["down"] + self.timing["for"]), 2),
                "resolved_after_recovery_s": round(resolved - times["up"], 2),
                "detection_s": round(episode["active"] - times["down"], 2) if episode else None,
                "path_s": round(firing - (episode["active"] + self.timing["for"]), 2) if episode else None,
                "resolved_in_prometheus_s": round(gone - times["up"], 2) if gone else None,
                "firing_messages": sum(m["status"] == "firing" for m in listed),
                "resolved_messages": sum(m["status"] == "resolved" for m in listed),
                "load1": load1(),
            }
            print_sample(sample)
            samples.append(sample)
        return samples

    def both(self, alert: str, status: str, since: float, instance: str | None = None):
        """A condition: both shapes have this message since then."""
        return lambda: all(self.messages.first(s, alert, status, since, instance) for s in SHAPES)

    def website_down(self) -> list[dict]:
        """--stops outages of the site, one after the other."""
        samples = []
        instance = f"http://{self.site.address}/health"
        for number in range(1, self.args.stops + 1):
            # A random phase against the probe and evaluation ticks, as an outage has.
            time.sleep(random.uniform(0, self.timing["probe"]))
            times = {"down": time.time()}
            self.site.stop()
            wait_until(
                self.both("WebsiteDown", "firing", times["down"]),
                self.timing["for"] + 60,
                f"WebsiteDown's firing messages (outage {number})",
                0.2,
            )
            times["up"] = time.time()
            self.site.start()
            wait_until(
                self.both("WebsiteDown", "resolved", times["down"]),
                60 + self.timing["critical_group_interval"],
                f"WebsiteDown's resolved messages (outage {number})",
                0.2,
            )
            # A repeated or split message would come by the group's next tick.
            time.sleep(self.timing["critical_group_interval"] + 3)
            samples += self.sample("WebsiteDown", number, instance, times)
        return samples

    def high_request_rate(self, out: list[dict]) -> None:
        """One load per web stand-in, staggered; each until both shapes' firing messages arrived."""
        times: dict[str, dict] = {}
        loads = {}
        firing_bound = self.timing["for"] + 2 * self.timing["scrape"] + self.timing["group_wait"] + 60
        for i, stand_in in enumerate(self.web):
            pause = (
                random.uniform(8, 8 + self.timing["scrape"])
                if i
                else random.uniform(0, self.timing["scrape"])
            )
            time.sleep(pause)
            loads[stand_in.address] = Load(stand_in, self.args.load)
            times[stand_in.address] = {"down": time.time()}
            loads[stand_in.address].start()
        for address, when in times.items():
            wait_until(
                self.both("HighRequestRate", "firing", when["down"], address),
                max(when["down"] + firing_bound - time.time(), 5),
                f"HighRequestRate's firing messages ({address})",
                0.2,
            )
            loads[address].halt.set()
            when["up"] = time.time()
        # Resolved: the rate window empties below the threshold, then the warning route's next tick.
        bound = 60 + self.timing["group_interval"] + 60
        for address, when in times.items():
            wait_until(
                self.both("HighRequestRate", "resolved", when["down"], address),
                max(when["up"] + bound - time.time(), 5),
                f"HighRequestRate's resolved messages ({address})",
                0.5,
            )
        time.sleep(3)
        for number, (address, when) in enumerate(times.items(), 1):
            out += self.sample("HighRequestRate", number, address, when)


def print_sample(s: dict) -> None:
    def fmt(value) -> str:
        return "   -  " if value is None else f"{value:6.2f}"

    print(
        f"{s['alert']:<16} #{s['number']} {s['shape']:<6}  after for {fmt(s['after_for_s'])} s"
        f" (detection {fmt(s['detection_s'])}, path {fmt(s['path_s'])})"
        f"  resolved {fmt(s['resolved_after_recovery_s'])} s"
        f" (in Prometheus {fmt(s['resolved_in_prometheus_s'])})"
        f"  messages {s['firing_messages']}+{s['resolved_messages']}  load {s['load1']}",
        flush=True,
    )


def summary(samples: list[dict]) -> list[dict]:
    rows = []
    for alert in ("WebsiteDown", "HighRequestRate"):
        for shape in SHAPES:
            picked = [s for s in samples if s["alert"] == alert and s["shape"] == shape]
            if not picked:
                continue
            row = {"alert": alert, "shape": shape, "samples": len(picked)}
            for field in ("after_for_s", "resolved_after_recovery_s", "detection_s", "path_s"):
                values = [s[field] for s in picked if s[field] is not None]
                row[field] = (
                    {"median": round(statistics.median(values), 2), "all": values} if values else None
                )
            row["one_message_each"] = all(
                s["firing_messages"] == 1 and s["resolved_messages"] == 1 for s in picked
            )
            target = TARGETS.get(alert)
            if target:
                row["target"] = target
                row["met"] = (
                    row["after_for_s"]["median"] <= target["firing"]
                    and row["resolved_after_recovery_s"]["median"] <= target["resolved"]
                )
            rows.append(row)
    return rows


def print_summary(rows: list[dict]) -> None:
    for row in rows:
        target = row.get("target")
        verdict = (
            f"; target <= {target['firing']:.0f} s / <= {target['resolved']:.0f} s:"
            f" {'met' if row['met'] else 'MISSED'}"
            if target
            else ""
        )
        print(
            f"{row['alert']:<16} {row['shape']:<6} median after for {row['after_for_s']['median']:.2f} s"
            f" {row['after_for_s']['all']}, resolved {row['resolved_after_recovery_s']['median']:.2f} s"
            f" {row['resolved_after_recovery_s']['all']}; detection {row['detection_s']['median']:.2f} s,"
            f" path {row['path_s']['median']:.2f} s (medians); one firing and one resolved message per"
            f" outage: {'yes' if row['one_message_each'] else 'NO'}{verdict}"
        )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", default="production", help="inventory whose knobs are used (production)")
    parser.add_argument("--stops", type=int, default=5, help="outages per alert (default 5)")
    parser.add_argument(
        "--for",
        dest="for_",
        default="20s",
        help="`for` of WebsiteDown and HighRequestRate instead of the inventory's (default 20s)",
    )
    parser.add_argument("--load", type=float, default=20.0, help="requests/s of a HighRequestRate load (20)")
    parser.add_argument("--no-high-request-rate", action="store_true", help="measure WebsiteDown only")
    parser.add_argument("--json", type=Path, default=None, help="also write the results to this file")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the temporary directory (configurations, debug logs, messages)",
    )
    args = parser.parse_args()
    if args.stops < 1:
        parser.error("--stops must be at least 1")
    return args


def timings(args: argparse.Namespace, inputs: dict) -> dict:
    p, a = inputs["prometheus"], inputs["alertmanager"]
    return {
        "for": seconds(args.for_),
        "probe": seconds(p.get("prometheus_blackbox_scrape_interval") or p["prometheus_scrape_interval"]),
        "scrape": seconds(p["prometheus_scrape_interval"]),
        "group_wait": seconds(a["alertmanager_group_wait"]),
        "group_interval": seconds(a["alertmanager_group_interval"]),
        "critical_group_interval": seconds(
            a.get("alertmanager_critical_group_interval") or a["alertmanager_group_interval"]
        ),
    }


def measure(bench: Bench, args: argparse.Namespace) -> list[dict]:
    """WebsiteDown's outages, with HighRequestRate's loads alongside."""
    rate_samples: list[dict] = []
    errors: list[BaseException] = []

    def rate_part() -> None:
        try:
            bench.high_request_rate(rate_samples)
        except BaseException as error:  # raised again after WebsiteDown's part
            errors.append(error)

    rate_thread = threading.Thread(target=rate_part, daemon=True)
    if not args.no_high_request_rate:
        rate_thread.start()
    samples = bench.website_down()
    if not args.no_high_request_rate:
        rate_thread.join(timeout=bench.timing["group_interval"] + 600)
        if errors:
            raise errors[0]
    return samples + rate_samples


def main() -> int:
    args = parse_args()
    for binary in (PROMETHEUS, ALERTMANAGER, BLACKBOX):
        if not os.access(binary, os.X_OK):
            raise SystemExit(f"{binary} not found: run `sudo scripts/setup.sh tools`")
    # A stop by kill or a CI timeout unwinds like Ctrl-C: every process stops, the files go.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    knobs = inventory_knobs(args.env)
    knobs["lookout_alert_website_down_for"] = args.for_
    knobs["lookout_alert_high_request_rate_for"] = args.for_
    if args.load <= 2 * float(knobs["lookout_alert_high_request_rate"]):
        raise SystemExit("--load must be more than twice the HighRequestRate threshold")
    inputs = {
        "env": knobs["lookout_env"],
        "prometheus": wired_inputs(knobs, "prometheus"),
        "alertmanager": wired_inputs(knobs, "alertmanager"),
    }
    timing = timings(args, inputs)
    shown = {
        k: knobs[k]
        for k in sorted(knobs)
        if re.search(r"interval|group_wait|peer_timeout|website_down_for|high_request_rate", k)
        and "heartbeat" not in k
    }
    print(f"knobs of {args.env} (`for` shortened to {args.for_}):")
    for name, value in shown.items():
        print(f"  {name}: {value}")
    load_start = os.getloadavg()
    print(f"load average at start: {' '.join(f'{v:.2f}' for v in load_start)} ({os.cpu_count()} CPUs)")
    started = time.time()
    loads_seen: list[float] = []
    sampling = threading.Event()

    def sample_load() -> None:
        while not sampling.wait(5):
            loads_seen.append(load1())

    threading.Thread(target=sample_load, daemon=True).start()
    work = Path(tempfile.mkdtemp(prefix="alert-latency-"))
    bench = None
    try:
        bench = Bench(args, inputs, timing, work)
        bench.start()
        print(f"ready after {time.time() - started:.0f} s; measuring", flush=True)
        samples = measure(bench, args)
    except KeyboardInterrupt:
        print("interrupted: every process stopped, temporary files removed", file=sys.stderr)
        return 130
    finally:
        sampling.set()
        if bench:
            bench.close()
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    load_end = os.getloadavg()
    rows = summary(samples)
    during = f"{min(loads_seen):.2f}-{max(loads_seen):.2f}, mean {statistics.mean(loads_seen):.2f}"
    print(
        f"\nload average at end: {' '.join(f'{v:.2f}' for v in load_end)}; 1-minute load during the run:"
        f" {during}; took {time.time() - started:.0f} s"
    )
    print_summary(rows)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report = {
            "env": args.env,
            "for": args.for_,
            "knobs": shown,
            "cpus": os.cpu_count(),
            "load_start": load_start,
            "load_end": load_end,
            "load1_during": loads_seen,
            "samples": samples,
            "summary": rows,
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
