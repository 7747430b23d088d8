"""Debian's Prometheus on 127.0.0.1 with what the role renders for basic auth (its render entry, the
configuration directory pointed at a scratch directory): every path answers 401 without credentials or with
a wrong password and 200 with the user's; Prometheus scrapes itself through the password_file (its target is
up); a replaced web configuration counts on the next request, no reload; and k6's remote-write output reaches
the receiver with K6_PROMETHEUS_RW_USERNAME/_PASSWORD, while a run without them is refused."""

import json
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml
from controller_helpers import (
    ROOT,
    ansible_playbook,
    free_port,
    http_get,
    local_host,
    prometheus_live_inputs,
    wait_for,
)

sys.path.insert(0, str(ROOT / "plugins" / "filter"))
from web_config import web_config_bcrypt

PROMETHEUS = Path("/usr/bin/prometheus")
K6 = Path(sys.executable).with_name("k6")
USER = "lookout"
PASSWORD = "live-test-password"


def _wait_for(condition, timeout: float = 20.0):
    return wait_for(condition, timeout)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not PROMETHEUS.exists():
        pytest.skip("Debian's prometheus is not on this controller (make setup)")
    workdir = tmp_path_factory.mktemp("web-auth-live")
    config_dir = workdir / "etc"
    port = free_port()
    playbook = workdir / "render.yml"
    playbook.write_text(
        yaml.safe_dump(
            [
                {
                    "name": "Render Prometheus with basic auth",
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
    host = local_host(
        **prometheus_live_inputs(config_dir, port),
        prometheus_blackbox_address="",
        prometheus_web_basic_auth_enabled=True,
        prometheus_web_basic_auth_users={USER: PASSWORD},
    )
    run = ansible_playbook(playbook, {"all": {"hosts": {"mon1": host}}}, workdir)
    assert run.returncode == 0, run.stdout + run.stderr
    # What the role's configure step writes next to the configuration on a host.
    (config_dir / "client-self.password").write_text(PASSWORD)
    process = subprocess.Popen(
        [
            str(PROMETHEUS),
            f"--config.file={config_dir / 'prometheus.yml'}",
            f"--web.config.file={config_dir / 'prometheus-web.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-remote-write-receiver",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        assert _wait_for(lambda: http_get(f"{base}/-/ready", USER, PASSWORD)[0] == 200), (
            "Prometheus did not start"
        )
        yield {"base": base, "config_dir": config_dir, "workdir": workdir}
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.mark.parametrize("path", ["/-/ready", "/-/healthy", "/api/v1/targets", "/metrics", "/graph"])
def test_every_path_needs_the_user(server, path):
    url = server["base"] + path
    assert http_get(url)[0] == 401
    assert http_get(url, USER, "wrong-password")[0] == 401
    assert http_get(url, "someone-else", PASSWORD)[0] == 401
    assert http_get(url, USER, PASSWORD)[0] == 200


def test_prometheus_scrapes_itself_through_its_password_file(server):
    def self_target():
        status, body = http_get(f"{server['base']}/api/v1/targets", USER, PASSWORD)
        targets = json.loads(body)["data"]["activeTargets"] if status == 200 else []
        return [t for t in targets if t["labels"]["job"] == "prometheus" and t["health"] == "up"]

    assert _wait_for(self_target), http_get(f"{server['base']}/api/v1/targets", USER, PASSWORD)[1]


def k6_run(server, case: str, *, authenticated: bool) -> subprocess.CompletedProcess:
    script = server["workdir"] / "noop.js"
    script.write_text("export const options = { iterations: 3 };\nexport default function () {}\n")
    env = {
        "HOME": str(server["workdir"]),
        "K6_NO_USAGE_REPORT": "true",
        "K6_PROMETHEUS_RW_SERVER_URL": f"{server['base']}/api/v1/write",
    }
    if authenticated:
        env |= {"K6_PROMETHEUS_RW_USERNAME": USER, "K6_PROMETHEUS_RW_PASSWORD": PASSWORD}
    return subprocess.run(
        [
            str(K6),
            "run",
            "--quiet",
            "--no-color",
            "--tag",
            f"case={case}",
            "--out=experimental-prometheus-rw",
            str(script),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
        cwd=server["workdir"],
    )


def _k6_series(server, case: str) -> list:
    query = urllib.parse.quote(f'k6_iterations_total{{case="{case}"}}')
    status, body = http_get(f"{server['base']}/api/v1/query?query={query}", USER, PASSWORD)
    return json.loads(body)["data"]["result"] if status == 200 else []


def test_k6_remote_write_needs_the_credentials(server):
    if not K6.exists():
        pytest.skip("no k6 in the venv (make setup)")
    refused = k6_run(server, "without-auth", authenticated=False)
    accepted = k6_run(server, "with-auth", authenticated=True)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert _wait_for(lambda: _k6_series(server, "with-auth")), accepted.stdout + accepted.stderr
    assert _k6_series(server, "without-auth") == [], refused.stdout + refused.stderr
    assert "401" in refused.stdout + refused.stderr


def test_a_new_web_configuration_counts_without_a_reload(server):
    """exporter-toolkit reads the file on every request: what lets the roles skip any reload."""
    web = server["config_dir"] / "prometheus-web.yml"
    original = web.read_text()
    new_password = "the-next-password"
    candidate = web.with_suffix(".new")
    candidate.write_text(
        yaml.safe_dump({"basic_auth_users": {USER: web_config_bcrypt(new_password, "live-test", 4)}})
    )
    try:
        candidate.replace(web)
        assert http_get(f"{server['base']}/-/ready", USER, new_password)[0] == 200
        assert http_get(f"{server['base']}/-/ready", USER, PASSWORD)[0] == 401
    finally:
        web.write_text(original)
    assert http_get(f"{server['base']}/-/ready", USER, PASSWORD)[0] == 200
