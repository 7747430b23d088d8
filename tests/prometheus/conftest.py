"""Renders the prometheus role's rules and configuration once per test session: with the role defaults,
and for every environment with its knobs wired by group_vars/all/prometheus.yml (MONITORING_PASSWORD stands in
for the vault's vault_monitoring_password, which environments with lookout_auth_enabled need).

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


def _render_task(hosts: str, vars_files: list[str]) -> dict:
    return {
        "name": f"Render the prometheus files of {hosts}",
        "hosts": hosts,
        "gather_facts": False,
        "vars_files": vars_files,
        "tasks": [
            {
                "name": "Render",
                "ansible.builtin.include_role": {"name": "prometheus", "tasks_from": "render"},
            }
        ],
    }


@pytest.fixture(scope="session")
def rendered(tmp_path_factory) -> dict[str, Rendered]:
    workdir = tmp_path_factory.mktemp("prometheus-render")
    playbook = workdir / "render.yml"
    wiring = str(ROOT / "group_vars" / "all" / "prometheus.yml")
    playbook.write_text(
        yaml.safe_dump(
            [_render_task("defaults", []), _render_task("environments", [wiring])], sort_keys=False
        )
    )
    results = {DEFAULTS: Rendered(DEFAULTS, {}, workdir / DEFAULTS)}
    results |= {env: Rendered(env, knobs(env), workdir / env) for env in ENVIRONMENTS}
    inventory = {
        "defaults": {"hosts": {DEFAULTS: local_host(prometheus_render_dir=str(workdir / DEFAULTS))}},
        "environments": {
            "hosts": {
                env: local_host(
                    **r.knobs,
                    vault_monitoring_password=MONITORING_PASSWORD,
                    prometheus_render_dir=str(r.directory),
                )
                for env, r in results.items()
                if env != DEFAULTS
            }
        },
    }
    run = ansible_playbook(playbook, {"all": {"children": inventory}}, workdir)
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
        playbook, {"all": {"children": frontend_inventory}}, frontend_dir, "--limit", FRONTEND
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return results
