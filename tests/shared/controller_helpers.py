"""Helpers every controller-side test folder shares: the repository root, the environments and their knobs,
controller tools, ansible-playbook run on the controller against a JSON inventory (no hosts), and an HTTP
GET with optional basic auth for the live servers the tests start on 127.0.0.1; self-signed certificates."""

import base64
import datetime
import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENTS = ("demo", "development", "testing", "production")


def knobs(env: str) -> dict:
    """The environment's knobs, as operators set them in its inventory."""
    return yaml.safe_load((ROOT / "inventories" / env / "group_vars" / "all" / "vars.yml").read_text())


def tool(name: str) -> str:
    found = shutil.which(name, path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if not found:
        pytest.fail(f"{name} not found on this controller; run `make setup`")
    return found


def ansible_playbook(
    playbook: Path,
    inventory: dict,
    workdir: Path,
    *extra: str,
    json_output: bool = False,
    extra_env: dict | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess:
    """One run on the controller; with json_output its stdout is one JSON report (see `outcomes`); extra_env
    adds to its environment or overrides it (another callback, for a benchmark); timeout in seconds."""
    inventory_file = workdir / "inventory.json"
    inventory_file.write_text(json.dumps(inventory))
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_ROLES_PATH=str(ROOT / "roles"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_LOCAL_TEMP=str(workdir / ".ansible-tmp"),
        # As ansible.cfg, without profile_tasks' lines: lookout.stack.preload loads the filter plugins once.
        ANSIBLE_CALLBACKS_ENABLED="ansible.builtin.timer,lookout.stack.preload",
    )
    if json_output:
        env |= {
            "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
            "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.json,lookout.stack.preload",
        }
    env |= extra_env or {}
    # Common's entries check their arguments against its argument specs in every test run (the roles leave it
    # off by default: docs/conventions.md, "Calls to common's entries"); a later -e in extra may turn it off.
    checks = ["-e", json.dumps({"common_check_entries": True})]
    return subprocess.run(
        [tool("ansible-playbook"), "-i", str(inventory_file), str(playbook), *checks, *extra],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
        cwd=workdir,
    )


def one_play(workdir: Path, tasks: list[dict]) -> Path:
    """A playbook of one play on every host, facts not gathered, with these tasks: its path in workdir."""
    playbook = workdir / "play.yml"
    playbook.write_text(json.dumps([{"hosts": "all", "gather_facts": False, "tasks": tasks}]))
    return playbook


def local_host(**hostvars) -> dict:
    return {"ansible_connection": "local", "ansible_python_interpreter": sys.executable, **hostvars}


def http_get(
    url: str, user: str | None = None, password: str | None = None, timeout: float = 5
) -> tuple[int, bytes]:
    """(status, body) of a GET, with basic auth when a user is given; status 0 when nothing answers."""
    request = urllib.request.Request(url)
    if user is not None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except urllib.error.URLError:
        return 0, b""


# The inputs a role's preflight needs on every host (its required inputs), per role that has any.
PREFLIGHT_REQUIRED = {
    "alertmanager": {
        "alertmanager_slack_channels": {"critical": "#alerts", "warning": "#warnings"},
        "alertmanager_slack_api_url": "https://hooks.slack.example.org/services/test",
    },
    "grafana": {"grafana_admin_password": "test-admin-password"},
    # An IP address: it resolves to itself on the controller.
    "haproxy": {"haproxy_backend_servers": [{"name": "web1", "address": "10.0.0.11", "port": 5566}]},
    "conduit": {"conduit_version": "1.4.0", "conduit_secret_key": "k" * 40},
    "postgresql": {
        "postgresql_version": "15",
        "postgresql_users": [{"name": "conduit", "password": "a-long-enough-password"}],
        "postgresql_databases": [{"name": "conduit", "owner": "conduit"}],
        "postgresql_hba_clients": [{"database": "conduit", "user": "conduit", "address": "localhost"}],
    },
}

PREFLIGHT_PLAY = """
- name: Run a role's input checks
  hosts: all
  gather_facts: false
  tasks:
    - name: Check the inputs
      ansible.builtin.include_role:
        name: {role}
        tasks_from: preflight
"""


def role_preflight(role: str, workdir: Path, **hostvars) -> subprocess.CompletedProcess:
    """Runs the role's own preflight tasks on the controller with these inputs."""
    play = workdir / "preflight.yml"
    play.write_text(PREFLIGHT_PLAY.format(role=role))
    return ansible_playbook(play, {"all": {"hosts": {"localhost": local_host(**hostvars)}}}, workdir)


@dataclass(frozen=True)
class Outcome:
    """One host of a run: how many tasks changed something, and the messages of its failures."""

    changed: int
    failures: tuple[str, ...]

    @property
    def failure(self) -> str:
        """Every failure message, whitespace collapsed (messages are folded)."""
        return " ".join(" ".join(self.failures).split())


def outcomes(run: subprocess.CompletedProcess) -> dict[str, Outcome]:
    """Per host of a run with json_output: its changes, and the message of each failed task or loop item."""
    try:
        report = json.loads(run.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"no JSON report:\n{run.stdout}\n{run.stderr}")
    failures: dict[str, list[str]] = {}
    for play in report["plays"]:
        for task in play["tasks"]:
            for host, result in task["hosts"].items():
                if result.get("failed"):
                    items = [str(r.get("msg", "")) for r in result.get("results", []) if r.get("failed")]
                    failures.setdefault(host, []).extend(items or [str(result.get("msg", ""))])
    return {
        host: Outcome(changed=stats["changed"], failures=tuple(failures.get(host, ())))
        for host, stats in report["stats"].items()
    }


def role_preflight_cases(role: str, workdir: Path, cases: dict[str, dict]) -> dict[str, Outcome]:
    """Runs the role's own preflight tasks once, one inventory host per case (its inputs as host variables
    over the role's defaults), and returns each case's outcome."""
    play = workdir / "preflight.yml"
    play.write_text(PREFLIGHT_PLAY.format(role=role))
    hosts = {case: local_host(**inputs) for case, inputs in cases.items()}
    return outcomes(ansible_playbook(play, {"all": {"hosts": hosts}}, workdir, json_output=True))


def roles_preflight_cases(workdir: Path, cases: dict[str, tuple[str, dict]]) -> dict[str, Outcome]:
    """role_preflight_cases for several roles in one run: case -> (role, inputs), each host including its
    own role's preflight tasks (one start-up and one parse of the roles for all of them). The run may take
    up to 20 s per case (a busy controller), never less than one run's usual 300 s."""
    play = workdir / "preflight.yml"
    play.write_text(PREFLIGHT_PLAY.format(role='"{{ preflight_role }}"'))
    hosts = {case: local_host(preflight_role=role, **inputs) for case, (role, inputs) in cases.items()}
    timeout = max(300, 20 * len(cases))
    return outcomes(
        ansible_playbook(play, {"all": {"hosts": hosts}}, workdir, json_output=True, timeout=timeout)
    )


def demo_monitoring_preflight(workdir: Path, **knob_overrides) -> Outcome:
    """playbooks/preflight.yml for one monitoring host with the demo's knobs and plain secrets, these knobs
    changed: the host's outcome (its messages name the role input and the knob it is wired from)."""
    secrets = yaml.safe_load(
        (ROOT / "inventories" / "demo" / "group_vars" / "all" / "demo_secrets.yml").read_text()
    )
    inventory = {
        "all": {
            "vars": {**knobs("demo"), **secrets, **knob_overrides},
            "children": {"monitoring": {"hosts": {"monitor1": local_host(ansible_host="127.0.0.11")}}},
        }
    }
    run = ansible_playbook(ROOT / "playbooks" / "preflight.yml", inventory, workdir, json_output=True)
    return outcomes(run)["monitor1"]


def prometheus_live_inputs(config_dir: Path, port: int) -> dict:
    """The prometheus role's render entry writing into config_dir, for a live server on 127.0.0.1:port that
    scrapes and evaluates every second."""
    return {
        "prometheus_render_dir": str(config_dir),
        "prometheus_config_dir": str(config_dir),
        "prometheus_listen_address": "127.0.0.1",
        "prometheus_port": port,
        "prometheus_scrape_interval": "1s",
        "prometheus_evaluation_interval": "1s",
    }


def start_quietly(argv: list[str]) -> subprocess.Popen:
    """A server started on this machine for a live test, its output discarded; the caller terminates it."""
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, timeout: float):
    """Polls condition() every 0.25 s until it returns something true or timeout seconds pass; returns its
    last result."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.25)
    return condition()


def self_signed_pem(days_from: int, days_to: int, name: str = "monitor1") -> tuple[str, str]:
    """A self-signed certificate valid from/to these days relative to now, and its key (PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + datetime.timedelta(days=days_from))
        .not_valid_after(now + datetime.timedelta(days=days_to))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return certificate.public_bytes(serialization.Encoding.PEM).decode(), key_pem
