"""Prometheus' configuration of every environment, rendered by playbooks/render.yml from the inventory
(vaulted environments get a throwaway test vault): jobs follow the inventory groups, probes follow the web
hosts, the environment's label and intervals are set; and no role names an inventory group."""

import os
import re
import subprocess
import sys

import pytest
import yaml
from controller_helpers import ENVIRONMENTS, ROOT, tool

sys.path.insert(0, str(ROOT / "tests" / "inventories"))
from inventory_helpers import make_test_inventory

MY_ROLES = ("common", "node_exporter", "prometheus", "blackbox_exporter")


def _probe_paths() -> list[str]:
    """The paths the wiring probes on every web host, else the role's default."""
    for wiring in sorted((ROOT / "group_vars" / "all").glob("*.yml")):
        paths = (yaml.safe_load(wiring.read_text()) or {}).get("prometheus_blackbox_paths")
        if paths is not None:
            return paths
    return yaml.safe_load((ROOT / "roles" / "prometheus" / "defaults" / "main.yml").read_text())[
        "prometheus_blackbox_paths"
    ]


@pytest.fixture(scope="module")
def configs(tmp_path_factory) -> dict[str, tuple[dict, dict]]:
    """env -> (inventory hosts.yml, the monitoring host's rendered prometheus.yml)."""
    workdir = tmp_path_factory.mktemp("prometheus-config")
    env_vars = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    env_vars["ANSIBLE_CALLBACKS_ENABLED"] = "ansible.builtin.timer"
    runs = {}
    for env in ENVIRONMENTS:
        inventory, password = make_test_inventory(env, workdir / "inventories")
        command = [tool("ansible-playbook"), "-i", str(inventory), str(ROOT / "playbooks" / "render.yml")]
        command += ["--tags", "prometheus", "-e", f"lookout_render_dir={workdir / 'out' / env}"]
        if password:
            command += ["--vault-id", f"{env}@{password}"]
        runs[env] = (
            inventory,
            subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env_vars),
        )
    results = {}
    for env, (inventory, process) in runs.items():
        output = process.communicate(timeout=300)[0].decode()
        assert process.returncode == 0, output
        hosts = yaml.safe_load((inventory / "hosts.yml").read_text())
        rendered = list((workdir / "out" / env).glob("*/prometheus/prometheus.yml"))
        assert len(rendered) == len(_group(hosts, "monitoring")), rendered
        results[env] = (hosts, yaml.safe_load(rendered[0].read_text()))
    return results


def _group(hosts: dict, name: str) -> dict:
    return hosts["all"]["children"][name].get("hosts") or {}


def _address(host: str, hostvars: dict | None) -> str:
    return (hostvars or {}).get("ansible_host", host)


def _job(config: dict, name: str) -> dict:
    jobs = [j for j in config["scrape_configs"] if j["job_name"] == name]
    assert len(jobs) == 1, f"job {name}: {[j['job_name'] for j in config['scrape_configs']]}"
    return jobs[0]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_jobs_follow_the_inventory(configs, env):
    hosts, config = configs[env]
    web = [f"{_address(h, v)}:5566" for h, v in _group(hosts, "web").items()]
    everyone = [
        f"{_address(h, v)}:9100"
        for group in ("web", "monitoring", "loadgen")
        for h, v in _group(hosts, group).items()
    ]
    assert config["global"]["external_labels"] == {"env": env}
    assert _job(config, f"{env}-web")["static_configs"] == [{"targets": web}]
    assert sorted(_job(config, "node")["static_configs"][0]["targets"]) == sorted(everyone)
    probes = _job(config, "blackbox-http")
    assert probes["params"] == {"module": ["http_2xx"]}
    assert [c["labels"]["instance"] for c in probes["static_configs"]] == web
    paths = _probe_paths()
    assert [c["targets"] for c in probes["static_configs"]] == [
        [f"http://{t}{p}" for p in paths] for t in web
    ]
    assert {j["job_name"] for j in config["scrape_configs"]} == {
        "prometheus",
        f"{env}-web",
        "blackbox-http",
        "blackbox",
        "node",
        "alertmanager",
    }
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["127.0.0.1:9093"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_intervals_follow_the_environment(configs, env):
    knobs = yaml.safe_load((ROOT / "inventories" / env / "group_vars" / "all" / "vars.yml").read_text())
    _, config = configs[env]
    assert config["global"]["scrape_interval"] == knobs["lookout_scrape_interval"]
    assert config["global"]["evaluation_interval"] == knobs["lookout_evaluation_interval"]


@pytest.mark.parametrize("role", MY_ROLES)
def test_roles_name_no_inventory_group_and_no_knob(role):
    for path in (ROOT / "roles" / role).rglob("*"):
        if path.is_file() and path.suffix in (".yml", ".j2", ".py"):
            text = path.read_text()
            assert not re.search(r"groups\[|\blookout_\w+|\bvault_\w+", text), f"{path} reads the inventory"
