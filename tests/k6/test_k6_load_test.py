"""The k6 role's load test, rendered exactly as Ansible renders it, checked with the real k6 binary.

- the default profile is the seed's (30 s to 10 VUs, 180 s at 20, 30 s down to 0) with the error-rate,
  p95 and checks thresholds;
- a few seconds of it against a real Conduit (gunicorn, SQLite) on 127.0.0.1 pass every check and
  threshold, and the role's report template reads the summary;
- an impossible threshold makes k6 exit 99 and the report names the failed threshold.
"""

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "k6"
BIN = Path(sys.executable).parent
K6 = BIN / "k6"
ANSIBLE = BIN / "ansible"
THRESHOLDS_FAILED = 99

pytestmark = pytest.mark.skipif(not K6.exists(), reason=f"no k6 binary at {K6} (make setup installs it)")


def _ansible_debug(tmp_path: Path, expression: str, **overrides) -> str:
    """Template an expression on the controller with the role's defaults, internals and overrides."""
    extra = tmp_path / "overrides.json"
    extra.write_text(json.dumps(overrides))
    run = subprocess.run(
        [
            str(ANSIBLE),
            "localhost",
            "-c",
            "local",
            "-o",
            "-m",
            "ansible.builtin.debug",
            "-a",
            f"msg={{{{ {expression} }}}}",
            "-e",
            f"@{ROLE / 'defaults' / 'main.yml'}",
            "-e",
            f"@{ROLE / 'vars' / 'main.yml'}",
            "-e",
            f"@{extra}",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        env={**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"},
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return json.loads(run.stdout.split(" => ", 1)[1])["msg"]


def render_script(tmp_path: Path, **overrides) -> Path:
    text = _ansible_debug(
        tmp_path, f"lookup('ansible.builtin.template', '{ROLE / 'templates' / 'conduit.js.j2'}')", **overrides
    )
    script = tmp_path / "conduit.js"
    script.write_text(text)
    return script


def report(tmp_path: Path, summary: Path) -> dict:
    content = base64.b64encode(summary.read_bytes()).decode()
    text = _ansible_debug(
        tmp_path,
        f"lookup('ansible.builtin.template', '{ROLE / 'templates' / 'report.j2'}')",
        __k6_summary_file={"content": content},
    )
    return yaml.safe_load(text)


def inspect(script: Path) -> dict:
    run = subprocess.run([str(K6), "inspect", str(script)], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def k6_run(script: Path, summary: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            str(K6),
            "run",
            "--no-color",
            "--no-usage-report",
            "--quiet",
            f"--summary-export={summary}",
            "--address=127.0.0.1:0",
            str(script),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=script.parent,
        env={**os.environ, "HOME": str(script.parent), "K6_NO_USAGE_REPORT": "true"},
    )


@pytest.fixture(scope="module")
def conduit(tmp_path_factory):
    """A real Conduit under gunicorn on 127.0.0.1 with a fresh SQLite database."""
    workdir = tmp_path_factory.mktemp("conduit")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONDUIT_", "PROMETHEUS_"))}
    env.update(
        PYTHONPATH=str(ROOT / "app"),
        CONDUIT_ENV="testing",
        DATABASE_URL=f"sqlite:///{workdir / 'conduit.db'}",
        CONDUIT_BIND=f"127.0.0.1:{port}",
        CONDUIT_WORKERS="2",
        PROMETHEUS_MULTIPROC_DIR=str(workdir / "prom"),
    )
    (workdir / "prom").mkdir()
    subprocess.run(
        [sys.executable, "-m", "conduit", "db", "upgrade"], env=env, check=True, capture_output=True
    )
    log = (workdir / "gunicorn.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "python:conduit.gunicorn_conf", "conduit.wsgi:app"],
        cwd=workdir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (workdir / "gunicorn.log").read_text()
            try:
                if requests.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):  # a loaded machine answers late
                pass
            assert time.monotonic() < deadline, (workdir / "gunicorn.log").read_text()
            time.sleep(0.2)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
        log.close()


def test_default_profile_is_the_seeds(tmp_path):
    options = inspect(render_script(tmp_path, k6_target_urls=["http://web1:5566"]))
    assert options["stages"] == [
        {"duration": "30s", "target": 10},
        {"duration": "3m0s", "target": 20},
        {"duration": "30s", "target": 0},
    ]
    assert options["thresholds"] == {
        "http_req_failed": ["rate<0.01"],
        "http_req_duration": ["p(95)<500"],
        "checks": ["rate>0.99"],
    }


def test_stage_seconds_add_up(tmp_path):
    stages = [
        {"duration": "1m", "target": 5},
        {"duration": "90s", "target": 5},
        {"duration": "1h", "target": 0},
    ]
    assert int(_ansible_debug(tmp_path, "__k6_stage_seconds", k6_stages=stages)) == 60 + 90 + 3600


def test_a_short_run_against_conduit_passes_its_thresholds(tmp_path, conduit):
    script = render_script(
        tmp_path,
        k6_target_urls=[conduit],
        k6_stages=[{"duration": "2s", "target": 3}, {"duration": "3s", "target": 3}],
        k6_sleep_seconds=0.2,
        k6_p95_ms=2000,
        k6_tags={"env": "unit"},
    )
    summary = tmp_path / "summary.json"
    run = k6_run(script, summary)
    assert run.returncode == 0, run.stdout + run.stderr
    figures = report(tmp_path, summary)
    assert figures["failed_thresholds"] == []
    assert figures["checks_failed"] == 0
    # setup() wrote an article, so each iteration made four reads plus setup's two writes.
    assert figures["requests"] >= 4 * figures["iterations"] + 2
    assert figures["iterations"] > 0
    assert figures["failed_request_rate"] == 0
    assert figures["max_vus"] == 3
    articles = requests.get(f"{conduit}/api/articles?tag=k6", timeout=5).json()["articles"]
    assert articles, "setup() wrote no article"


def test_a_failed_threshold_fails_the_run(tmp_path, conduit):
    script = render_script(
        tmp_path,
        k6_target_urls=[conduit],
        k6_stages=[{"duration": "2s", "target": 1}],
        k6_seed_article=False,
        k6_sleep_seconds=0.2,
        k6_p95_ms=0,
    )
    summary = tmp_path / "summary.json"
    run = k6_run(script, summary)
    assert run.returncode == THRESHOLDS_FAILED, run.stdout + run.stderr
    assert report(tmp_path, summary)["failed_thresholds"] == ["http_req_duration p(95)<0"]
