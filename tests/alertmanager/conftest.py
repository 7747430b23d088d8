"""Renders the alertmanager role's configuration for every environment, once per test session.

The environments with `lookout_auth_enabled` also get the web configuration (basic auth), hashed from
MONITORING_PASSWORD, which stands in for the vault's vault_monitoring_password."""

from pathlib import Path

import pytest
import yaml
from alertmanager_helpers import HEARTBEAT_URL, NO_HEARTBEAT, Rendered
from controller_helpers import ENVIRONMENTS, ROOT, ansible_playbook, knobs, local_host
from render_cache import once_per_run

MONITORING_PASSWORD = "test-monitoring-password"


# Name -> (environment, vault_heartbeat_url).
CASES = {**{env: (env, HEARTBEAT_URL) for env in ENVIRONMENTS}, NO_HEARTBEAT: ("production", "")}


def _render(workdir: Path):
    """Renders every case into workdir/<name> in one ansible-playbook run; returns a check of the run."""
    playbook = workdir / "render.yml"
    playbook.write_text(
        yaml.safe_dump(
            [
                {
                    "name": "Render the alertmanager configuration of every environment",
                    "hosts": "all",
                    "gather_facts": False,
                    "vars_files": [str(ROOT / "group_vars" / "all" / "alertmanager.yml")],
                    "tasks": [
                        {
                            "name": "Render",
                            "ansible.builtin.include_role": {"name": "alertmanager", "tasks_from": "render"},
                        }
                    ],
                }
            ],
            sort_keys=False,
        )
    )
    hosts = {}
    for name, (env, heartbeat) in CASES.items():
        directory = workdir / name
        # The rendered files refer to their own directory, so amtool also finds the templates.
        hosts[name] = local_host(
            **knobs(env),
            vault_monitoring_password=MONITORING_PASSWORD,
            vault_heartbeat_url=heartbeat,
            alertmanager_render_dir=str(directory),
            alertmanager_config_dir=str(directory),
        )
    run = ansible_playbook(playbook, {"all": {"hosts": hosts}}, workdir)

    def check() -> None:
        assert run.returncode == 0, run.stdout + run.stderr

    return check


@pytest.fixture(scope="session")
def rendered(tmp_path_factory) -> dict[str, Rendered]:
    """Rendered once per test run: the xdist workers share it (tests/shared/render_cache.py)."""
    inputs = {"cases": CASES, "password": MONITORING_PASSWORD}
    workdir = once_per_run(
        tmp_path_factory, "alertmanager", {"environments": inputs}, lambda _, d: _render(d)
    )
    return {
        name: Rendered(env=env, knobs=knobs(env), directory=workdir["environments"] / name)
        for name, (env, _) in CASES.items()
    }
