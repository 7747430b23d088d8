"""Grafana's datasources follow `lookout_auth_enabled`: in every environment (inventory copied with a
generated test vault), the wiring of group_vars/all/grafana.yml gives every Prometheus and Alertmanager
datasource of every monitoring host (the long-term VictoriaMetrics ones too) the monitoring user and the
vault's `vault_monitoring_password` when auth is on (the role provisions them as basicAuth, basicAuthUser
and secureJsonData.basicAuthPassword: test_grafana_files.py), and no credentials at all when it is off (the
demo)."""

import json
import os
import subprocess
import sys

import pytest
import yaml
from controller_helpers import ENVIRONMENTS, ROOT, knobs, tool

sys.path.insert(0, str(ROOT / "tests" / "inventories"))
from inventory_helpers import make_test_inventory

EXPRESSION = (
    "{{ {'prometheus': grafana_prometheus_datasources, 'alertmanager': grafana_alertmanager_datasources,"
    " 'password': vault_monitoring_password} | to_json }}"
)


@pytest.fixture(scope="module")
def resolved(tmp_path_factory) -> dict[str, dict]:
    """env -> monitoring host -> the wired datasources (and the test vault's password)."""
    workdir = tmp_path_factory.mktemp("grafana-auth")
    env_vars = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    results = {}
    for env in ENVIRONMENTS:
        inventory, password_file = make_test_inventory(env, workdir)
        command = [
            tool("ansible"),
            "-i",
            str(inventory),
            "monitoring",
            "--playbook-dir",
            str(ROOT / "playbooks"),
        ]
        command += ["-m", "ansible.builtin.debug", "-a", f"msg={EXPRESSION}", "-o"]
        if password_file:
            command += ["--vault-id", f"{env}@{password_file}"]
        run = subprocess.run(command, capture_output=True, text=True, env=env_vars, check=False, cwd="/")
        assert run.returncode == 0, run.stdout + run.stderr
        hosts = {}
        for line in run.stdout.splitlines():
            host, _, payload = line.partition(" | SUCCESS => ")
            message = json.loads(payload)["msg"]
            hosts[host] = json.loads(message) if isinstance(message, str) else message
        monitoring = yaml.safe_load((inventory / "hosts.yml").read_text())["all"]["children"]["monitoring"]
        assert set(hosts) == set(monitoring["hosts"]), run.stdout
        results[env] = hosts
    return results


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_datasources_log_in_when_auth_is_on(resolved, env):
    env_knobs = knobs(env)
    for host, wired in resolved[env].items():
        sources = wired["prometheus"] + wired["alertmanager"]
        # One of each per monitoring host; the long-term ones (tests/victoriametrics) come on top.
        per_host = [s for s in wired["prometheus"] if not s["name"].startswith("VictoriaMetrics ")]
        assert len(per_host) == len(wired["alertmanager"]) == len(resolved[env]), host
        for source in sources:
            if env_knobs["lookout_auth_enabled"]:
                assert source["basic_auth_user"] == env_knobs["lookout_monitoring_user"], source["name"]
                assert source["basic_auth_password"] == wired["password"], source["name"]
            else:
                assert "basic_auth_user" not in source and "basic_auth_password" not in source, source["name"]
