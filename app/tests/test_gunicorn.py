"""The app under real gunicorn on 127.0.0.1: metrics summed over workers, config refusal, clean stop."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from conduit import __version__, migrate
from conduit_testing import APP_DIR, sqlite_url

pytestmark = pytest.mark.gunicorn

START_TIMEOUT = 30
REQUEST_TIMEOUT = 10
GUNICORN = [sys.executable, "-m", "gunicorn", "-c", "python:conduit.gunicorn_conf", "conduit.wsgi:app"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    prom_dir: Path
    log: Path

    def pids_with(self, kind: str) -> set[int]:
        """Worker pids that have a metrics file of this kind (``counter``, ``gauge_max``...)."""
        return {
            int(m.group(1))
            for p in self.prom_dir.glob(f"{kind}_*.db")
            if (m := re.search(r"_(\d+)\.db$", p.name))
        }


def _environ(tmp_path: Path, port: int, **extra: str) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("CONDUIT_", "PROMETHEUS_"))}
    environ.pop("SECRET_KEY", None)
    environ.pop("DATABASE_URL", None)
    environ.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(APP_DIR), environ.get("PYTHONPATH")])),
        CONDUIT_ENV="testing",
        DATABASE_URL=sqlite_url(tmp_path / "conduit.db"),
        CONDUIT_BIND=f"127.0.0.1:{port}",
        CONDUIT_WORKERS="2",
        CONDUIT_GRACEFUL_TIMEOUT="5",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prom"),
    )
    environ.update(extra)
    return environ


def _stop(process: subprocess.Popen) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
    return process.wait(timeout=15)


@contextmanager
def gunicorn(tmp_path: Path, workers: int = 2, **extra: str) -> Iterator[Server]:
    migrate.upgrade(sqlite_url(tmp_path / "conduit.db"))
    port = free_port()
    log = tmp_path / "gunicorn.log"
    previous_run = Server("", None, tmp_path / "prom", log).pids_with("gauge_max")
    with log.open("wb") as out:
        process = subprocess.Popen(
            GUNICORN,
            cwd=tmp_path,
            env=_environ(tmp_path, port, CONDUIT_WORKERS=str(workers), **extra),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(f"http://127.0.0.1:{port}", process, tmp_path / "prom", log)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        # Every worker sets the info gauge when it loads the app: wait until all of them have.
        while len(server.pids_with("gauge_max") - previous_run) < workers:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "gunicorn did not start:\n" + log.read_text()
            time.sleep(0.1)
        assert requests.get(f"{server.url}/health", timeout=REQUEST_TIMEOUT).status_code == 200
        yield server
    finally:
        server.process.returncode = _stop(process)


def _request_total(server: Server) -> float:
    text = requests.get(f"{server.url}/metrics", timeout=REQUEST_TIMEOUT).text
    return sum(float(v) for v in re.findall(r"^flask_http_request_total\{[^}]*\} (\S+)$", text, re.MULTILINE))


def _burst(server: Server, count: int) -> None:
    def one(_):
        with requests.Session() as session:  # a connection per request: any worker may take it
            return session.get(f"{server.url}/api/tags", timeout=REQUEST_TIMEOUT).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert set(pool.map(one, range(count))) == {200}


def test_request_counter_is_the_sum_over_all_workers(tmp_path):
    with gunicorn(tmp_path, workers=2) as server:
        sent = 0
        # Concurrent requests land on both workers; a few more bursts if the kernel favoured one.
        for _ in range(10):
            _burst(server, 30)
            sent += 30
            if len(server.pids_with("counter")) >= 2:
                break
        serving = server.pids_with("counter")
        assert len(serving) >= 2, "the requests never reached a second worker"

        for _ in range(5):  # neither scrapes nor health checks are traffic
            requests.get(f"{server.url}/health", timeout=REQUEST_TIMEOUT)
        assert _request_total(server) == sent
        assert _request_total(server) == sent

        text = requests.get(f"{server.url}/metrics", timeout=REQUEST_TIMEOUT).text
        assert f'conduit_app_info{{version="{__version__}"}} 1.0' in text
        assert re.search(
            r'^flask_http_request_duration_seconds_count\{endpoint="api.articles.list_tags",'
            rf'method="GET",status="200"\}} {sent}\.0$',
            text,
            re.MULTILINE,
        )

        # A worker dies: gunicorn replaces it, and what it counted is still in the sum.
        victim = min(serving)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + START_TIMEOUT
        while len(server.pids_with("gauge_max") - {victim}) < 2:
            assert time.monotonic() < deadline, "no replacement worker:\n" + server.log.read_text()
            time.sleep(0.1)
        assert _request_total(server) == sent
        _burst(server, 10)
        assert _request_total(server) == sent + 10
    assert server.process.returncode == 0, server.log.read_text()  # SIGTERM: graceful, clean exit


def test_metrics_directory_is_emptied_at_start(tmp_path):
    stale = tmp_path / "prom"
    stale.mkdir()
    with gunicorn(tmp_path, workers=1) as first:
        _burst(first, 5)
        assert _request_total(first) == 5
    # the files of the previous run are still there; a new master must not add them up again
    assert list(stale.glob("counter_*.db"))
    with gunicorn(tmp_path, workers=1) as second:
        assert _request_total(second) == 0


def test_production_without_secret_key_refuses_to_start(tmp_path):
    environ = _environ(tmp_path, free_port(), CONDUIT_ENV="production")
    result = subprocess.run(
        GUNICORN, cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0
    assert "SECRET_KEY is not set: refusing to start in production mode" in result.stderr
    assert "Booting worker" not in result.stderr


def test_failed_logins_are_counted_across_workers_and_servers(tmp_path):
    """Two gunicorn servers with two workers each on one database (two web hosts): five failed logins
    spread over them, the sixth is refused with 429 and Retry-After by whichever answers."""
    login = {"user": {"email": "mallory@example.org", "password": "wrong-password"}}
    shared = sqlite_url(tmp_path / "shared.db")
    migrate.upgrade(shared)
    (tmp_path / "web1").mkdir()
    (tmp_path / "web2").mkdir()
    with (
        gunicorn(tmp_path / "web1", workers=2, DATABASE_URL=shared) as first,
        gunicorn(tmp_path / "web2", workers=2, DATABASE_URL=shared) as second,
    ):
        statuses = []
        for i in range(6):
            with requests.Session() as session:  # a connection per request: any worker may take it
                server = (first, second)[i % 2]
                response = session.post(f"{server.url}/api/users/login", json=login, timeout=REQUEST_TIMEOUT)
            statuses.append(response.status_code)
        assert statuses == [401] * 5 + [429]
        assert 0 < int(response.headers["Retry-After"]) <= 900
