"""Renders the alertmanager role's configuration for every environment, once per test session.

The environments with `lookout_auth_enabled` also get the web configuration (basic auth), hashed from
MONITORING_PASSWORD, which stands in for the vault's vault_monitoring_password."""

import pytest
import yaml
from alertmanager_helpers import HEARTBEAT_URL, NO_HEARTBEAT, Rendered
from controller_helpers import ENVIRONMENTS, ROOT, ansible_playbook, knobs, local_host

MONITORING_PASSWORD = "test-monitoring-password"


@pytest.fixture(scope="session")
def rendered(tmp_path_factory) -> dict[str, Rendered]:
    workdir = tmp_path_factory.mktemp("alertmanager-render")
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
    results = {}
    hosts = {}
    for name, env, heartbeat in [
        *((e, e, HEARTBEAT_URL) for e in ENVIRONMENTS),
        (NO_HEARTBEAT, "production", ""),
    ]:
        directory = workdir / name
        results[name] = Rendered(env=env, knobs=knobs(env), directory=directory)
        # The rendered files refer to their own directory, so amtool also finds the templates.
        hosts[name] = local_host(
            **results[name].knobs,
            vault_monitoring_password=MONITORING_PASSWORD,
            vault_heartbeat_url=heartbeat,
            alertmanager_render_dir=str(directory),
            alertmanager_config_dir=str(directory),
        )
    run = ansible_playbook(playbook, {"all": {"hosts": hosts}}, workdir)
    assert run.returncode == 0, run.stdout + run.stderr
    return results
