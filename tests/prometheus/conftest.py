"""Renders the prometheus role's rules and configuration once per test session: with the role defaults,
and for every environment with its knobs wired by group_vars/all/prometheus.yml and the ports of
group_vars/all/ports.yml (MONITORING_PASSWORD stands in for the vault's vault_monitoring_password, which
environments with lookout_auth_enabled need).

FRONTEND is production's knobs wired the same way in an inventory that also has a `frontend` group (the
wiring then gives site URLs and HAProxy targets) and two `monitoring` hosts (an Alertmanager cluster of two,
the TSDB disk alert on their node exporters). It renders in a run of its own: `groups` is one per
inventory, and the environments' inventory has no frontend host."""

from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from controller_helpers import ENVIRONMENTS, ROOT, ansible_playbook, knobs, local_host
from prometheus_helpers import DEFAULTS, FRONTEND

FRONTEND_ENV = "production"
FRONTEND_HOSTS = {"prod-lb1": {"ansible_host": "203.0.113.10"}}
# Two monitoring hosts beside it: the alert-path rules then expect a cluster of two and read the TSDB disk
# of these hosts' node exporters only.
MONITORING_HOSTS = {
    "prod-mon1": {"ansible_host": "203.0.113.21"},
    "prod-mon2": {"ansible_host": "203.0.113.22"},
}

MONITORING_PASSWORD = "test-monitoring-password"
WIRING = ROOT / "group_vars" / "all" / "prometheus.yml"
PORTS = ROOT / "group_vars" / "all" / "ports.yml"


@dataclass(frozen=True)
class Rendered:
    name: str
    knobs: dict
    directory: Path

    @property
    def rules_file(self) -> Path:
        return self.directory / "lookout.rules.yml"

    @property
    def rules(self) -> dict:
        """Alert name -> rule."""
        groups = yaml.safe_load(self.rules_file.read_text())["groups"]
        return {rule["alert"]: rule for group in groups for rule in group["rules"] if "alert" in rule}

    @property
    def config(self) -> dict:
        return yaml.safe_load((self.directory / "prometheus.yml").read_text())


def _render_playbook(directory: Path, vars_files: list[str], ports: bool) -> Path:
    """One play rendering the prometheus files of every host of its inventory. With `ports`, the wiring's
    ports.yml lies next to the playbook as its group_vars, as playbooks/group_vars links it: the wiring reads
    other hosts' ports from hostvars, which hold playbook group_vars (and not vars_files)."""
    directory.mkdir()
    if ports:
        (directory / "group_vars" / "all").mkdir(parents=True)
        (directory / "group_vars" / "all" / "ports.yml").symlink_to(PORTS)
    play = {
        "name": "Render the prometheus files",
        "hosts": "all",
        "gather_facts": False,
        "vars_files": vars_files,
        "tasks": [
            {
                "name": "Render",
                "ansible.builtin.include_role": {"name": "prometheus", "tasks_from": "render"},
            }
        ],
    }
    playbook = directory / "render.yml"
    playbook.write_text(yaml.safe_dump([play], sort_keys=False))
    return playbook


@pytest.fixture(scope="session")
def rendered(tmp_path_factory) -> dict[str, Rendered]:
    workdir = tmp_path_factory.mktemp("prometheus-render")
    results = {DEFAULTS: Rendered(DEFAULTS, {}, workdir / DEFAULTS)}
    results |= {env: Rendered(env, knobs(env), workdir / env) for env in ENVIRONMENTS}

    defaults = {DEFAULTS: local_host(prometheus_render_dir=str(workdir / DEFAULTS))}
    playbook = _render_playbook(workdir / "defaults-run", [], ports=False)
    run = ansible_playbook(playbook, {"all": {"hosts": defaults}}, playbook.parent)
    assert run.returncode == 0, run.stdout + run.stderr

    wired = _render_playbook(workdir / "wired", [str(WIRING)], ports=True)
    environments = {
        env: local_host(
            **r.knobs,
            vault_monitoring_password=MONITORING_PASSWORD,
            prometheus_render_dir=str(r.directory),
        )
        for env, r in results.items()
        if env != DEFAULTS
    }
    environments_dir = workdir / "environments-run"
    environments_dir.mkdir()
    run = ansible_playbook(wired, {"all": {"hosts": environments}}, environments_dir)
    assert run.returncode == 0, run.stdout + run.stderr

    frontend_dir = workdir / "frontend-run"
    frontend_dir.mkdir()
    results[FRONTEND] = Rendered(FRONTEND, knobs(FRONTEND_ENV), workdir / FRONTEND)
    frontend_inventory = {
        "environments": {
            "hosts": {
                FRONTEND: local_host(
                    **results[FRONTEND].knobs,
                    vault_monitoring_password=MONITORING_PASSWORD,
                    prometheus_render_dir=str(results[FRONTEND].directory),
                )
            }
        },
        "frontend": {"hosts": FRONTEND_HOSTS},
        "monitoring": {"hosts": MONITORING_HOSTS},
    }
    run = ansible_playbook(
        wired, {"all": {"children": frontend_inventory}}, frontend_dir, "--limit", FRONTEND
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return results
