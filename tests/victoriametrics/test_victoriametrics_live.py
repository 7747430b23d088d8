"""Debian's VictoriaMetrics binary on 127.0.0.1, started with the command line and the environment file the
victoriametrics role renders (the storage in a scratch directory): the password is in neither its command
line nor its log, the API answers 401 without the credentials; two writers sending the same series (as the
two Prometheus replicas do once their replica label is dropped) are kept once per scrape interval, as many
samples as one writer sent, while the same flags without -dedup.minScrapeInterval keep both writers' samples;
series that still differ by their replica label are never merged."""

import base64
import json
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from controller_helpers import http_get
from victoriametrics_helpers import BINARY, render

USER = "lookout"
PASSWORD = 'live "test" $password`'
INTERVAL_S = 15
# Two writers, scraping the same target at different moments of each interval (as two replicas do).
OFFSETS_MS = (2_000, 7_000)
INTERVALS = 40
METRIC = "http_requests_total"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _request(url: str, data: bytes | None = None, password: str | None = PASSWORD) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    if password is not None:
        request.add_header(
            "Authorization", "Basic " + base64.b64encode(f"{USER}:{password}".encode()).decode()
        )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


class Server:
    def __init__(self, workdir, name: str, rendered):
        self.flags = rendered.flags
        self.url = (
            "http://" + next(f for f in self.flags if f.startswith("-httpListenAddr=")).split("=", 1)[1]
        )
        self.log = workdir / f"{name}.log"
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                self.flags, env={"PATH": "/usr/bin:/bin", **rendered.environment}, stdout=log, stderr=log
            )
        deadline = time.monotonic() + 30
        while http_get(self.url + "/health")[0] != 200:
            assert self.process.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, f"{name} not ready:\n{self.log.read_text()}"
            time.sleep(0.2)

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def write(self, series: dict[str, str], timestamps_ms: list[int]):
        """One writer's samples of one series (the counter's values as a scrape would see them)."""
        line = json.dumps(
            {
                "metric": {"__name__": METRIC, **series},
                "values": list(range(len(timestamps_ms))),
                "timestamps": timestamps_ms,
            }
        )
        status, body = _request(self.url + "/api/v1/import", line.encode())
        assert status == 204, body

    def count(self, selector: str, at_s: float) -> float:
        """Samples of the selected series over the whole written range, summed over the series."""
        _request(self.url + "/internal/force_flush")
        query = urllib.parse.urlencode({"query": f"sum(count_over_time({selector}[1h]))", "time": at_s})
        status, body = _request(f"{self.url}/api/v1/query?{query}")
        assert status == 200, body
        result = json.loads(body)["data"]["result"]
        return float(result[0]["value"][1]) if result else 0.0


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    if not BINARY.exists():
        pytest.skip("Debian's victoria-metrics is not on this controller (make setup)")
    workdir = tmp_path_factory.mktemp("victoriametrics-live")
    common = {
        "victoriametrics_listen_address": "127.0.0.1",
        "victoriametrics_retention_period": "30d",
        "victoriametrics_basic_auth_user": USER,
        "victoriametrics_basic_auth_password": PASSWORD,
    }
    hosts = {
        name: {
            **common,
            "victoriametrics_port": _free_port(),
            "victoriametrics_storage_path": str(workdir / f"{name}-data"),
            "victoriametrics_dedup_min_scrape_interval": dedup,
        }
        for name, dedup in (("dedup", f"{INTERVAL_S}s"), ("control", ""))
    }
    rendered = render(workdir, hosts)
    for name, result in rendered.items():
        assert not result.failure, f"{name}: {result.failure}"
    started = {}
    try:
        for name in hosts:
            started[name] = Server(workdir, name, rendered[name])
        yield started
    finally:
        for server in started.values():
            server.stop()


@pytest.fixture(scope="module")
def written(servers) -> float:
    """The same series from both writers into both servers, two hours back (well inside the retention, long
    before the newest data a query leaves out); returns a query time covering every sample."""
    start_ms = (int(time.time()) - 2 * 3600) // INTERVAL_S * INTERVAL_S * 1000
    for server in servers.values():
        for offset in OFFSETS_MS:
            stamps = [start_ms + k * INTERVAL_S * 1000 + offset for k in range(INTERVALS)]
            server.write({"job": "live-web", "instance": "web1:5566"}, stamps)
    return start_ms / 1000 + INTERVALS * INTERVAL_S


def test_the_dedup_interval_is_on_the_command_line(servers):
    assert f"-dedup.minScrapeInterval={INTERVAL_S}s" in servers["dedup"].flags
    assert not [f for f in servers["control"].flags if f.startswith("-dedup.")]


def test_the_password_is_neither_on_the_command_line_nor_in_the_log(servers):
    server = servers["dedup"]
    with open(f"/proc/{server.process.pid}/cmdline", "rb") as cmdline:
        words = cmdline.read().decode().split("\0")
    assert "-envflag.enable" in words
    assert not [word for word in words if PASSWORD in word or "httpAuth" in word]
    log = server.log.read_text()
    assert 'flag "httpAuth.username"="lookout"' in log, log
    assert PASSWORD not in log


def test_the_api_needs_the_credentials(servers):
    url = servers["dedup"].url + "/api/v1/query?query=1"
    assert _request(url, password=None)[0] == 401
    assert _request(url, password="wrong")[0] == 401
    assert _request(url)[0] == 200
    assert _request(servers["dedup"].url + "/api/v1/import", b"", password=None)[0] == 401


def test_one_series_from_two_writers_is_kept_once_per_interval(servers, written):
    selector = f'{METRIC}{{job="live-web"}}'
    # Without deduplication both writers' samples stay: the flag is what makes the difference.
    assert servers["control"].count(selector, written) == INTERVALS * len(OFFSETS_MS)
    assert servers["dedup"].count(selector, written) == INTERVALS


def test_series_that_differ_by_the_replica_label_are_not_merged(servers, written):
    server = servers["dedup"]
    start_ms = int((written - INTERVALS * INTERVAL_S) * 1000)
    for replica, offset in zip(("monitor1", "monitor2"), OFFSETS_MS, strict=True):
        stamps = [start_ms + k * INTERVAL_S * 1000 + offset for k in range(INTERVALS)]
        server.write({"job": "live-replicas", "instance": "web1:5566", "replica": replica}, stamps)
    assert server.count(f'{METRIC}{{job="live-replicas"}}', written) == INTERVALS * len(OFFSETS_MS)
