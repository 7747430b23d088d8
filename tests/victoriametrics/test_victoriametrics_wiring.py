"""Long-term storage as each environment wires it, and the site preflight's checks of it.

- the knob is on in production and testing, off in demo and development; production's longterm host is
  prod-metrics1, testing's the second monitoring host;
- with it on, every Prometheus writes to VictoriaMetrics on every longterm host (its own over loopback) with
  the monitoring credentials when lookout_auth_enabled, every Grafana gets a long-term datasource for each,
  and the longterm hosts' firewall lets the monitoring hosts in on 8428; with it off, none of this;
- playbooks/preflight.yml (each host played by this machine) refuses, before anything changes: the knob on
  with an empty longterm group (naming the knob), VictoriaMetrics' port taken by another service of its host
  (naming both), and malformed knobs, naming the role input and the knob it is wired from.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from controller_helpers import ROOT, ansible_playbook, knobs, local_host, outcomes, tool

sys.path.insert(0, str(ROOT / "tests" / "inventories"))
from inventory_helpers import ENVS, make_test_inventory

PORT = 8428
GROUPS = ("frontend", "web", "database", "monitoring", "loadgen", "longterm")
DEMO_SECRETS = yaml.safe_load(
    (ROOT / "inventories" / "demo" / "group_vars" / "all" / "demo_secrets.yml").read_text()
)


def _hosts(env: str) -> dict[str, dict]:
    return yaml.safe_load((ROOT / "inventories" / env / "hosts.yml").read_text())["all"]["children"]


def _members(env: str, group: str) -> dict[str, dict]:
    """The group's hosts with their variables from every group that lists them."""
    merged: dict[str, dict] = {}
    for members in _hosts(env).values():
        for name, hostvars in (members["hosts"] or {}).items():
            merged.setdefault(name, {}).update(hostvars or {})
    return {name: merged[name] for name in _hosts(env)[group]["hosts"] or {}}


def _address(host: str, hostvars: dict, seen_from: str) -> str:
    """How a monitoring host reaches a longterm host: its own over loopback."""
    return "127.0.0.1" if host == seen_from else hostvars.get("ansible_host", host)


@pytest.fixture(scope="module", params=ENVS)
def wiring(request, tmp_path_factory):
    """Per host of the environment (test vault): what the wiring gives it."""
    env = request.param
    inventory, password_file = make_test_inventory(env, tmp_path_factory.mktemp(env))
    expression = (
        "{{ {'remote_write': prometheus_remote_write, 'datasources': grafana_prometheus_datasources,"
        " 'firewall': firewall_allow, 'password': vault_monitoring_password} | to_json }}"
    )
    command = [tool("ansible"), "-i", str(inventory), "all", "--playbook-dir", str(ROOT / "playbooks")]
    command += ["-m", "ansible.builtin.debug", "-a", f"msg={expression}", "-o"]
    if password_file:
        command += ["--vault-id", f"{env}@{password_file}"]
    run = subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=False,
        cwd="/",
        env={**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"},
    )
    assert run.returncode == 0, run.stdout + run.stderr
    hosts = {}
    for line in run.stdout.splitlines():
        host, _, rest = line.partition(" | ")
        message = json.loads(rest.split(" => ", 1)[1])["msg"]
        hosts[host] = json.loads(message) if isinstance(message, str) else message
    return env, hosts


def test_the_knob_is_on_in_production_and_testing_only():
    assert {env: knobs(env)["lookout_longterm_enabled"] for env in ENVS} == {
        "demo": False,
        "development": False,
        "testing": True,
        "production": True,
    }
    assert _members("production", "longterm") == {"prod-metrics1": {"ansible_host": "203.0.113.31"}}
    assert list(_members("testing", "longterm")) == ["test-monitor2"]
    assert "test-monitor2" in _members("testing", "monitoring")
    for env in ENVS:
        assert knobs(env)["lookout_longterm_enabled"] == bool(_members(env, "longterm")), env


def test_every_prometheus_writes_to_every_longterm_host(wiring):
    env, hosts = wiring
    knob = knobs(env)
    longterm = _members(env, "longterm")
    for monitor in _members(env, "monitoring"):
        expected = []
        for host, hostvars in longterm.items():
            # https with lookout_tls_enabled (the role's template adds the CA file: tests/prometheus).
            scheme = "https" if knob["lookout_tls_enabled"] else "http"
            target = {"url": f"{scheme}://{_address(host, hostvars, monitor)}:{PORT}/api/v1/write"}
            if knob["lookout_auth_enabled"]:
                target["basic_auth"] = {
                    "username": knob["lookout_monitoring_user"],
                    "password": hosts[monitor]["password"],
                }
            expected.append(target)
        assert hosts[monitor]["remote_write"] == (expected if knob["lookout_longterm_enabled"] else []), (
            monitor
        )


def test_every_grafana_has_a_long_term_datasource_per_longterm_host(wiring):
    env, hosts = wiring
    knob = knobs(env)
    longterm = _members(env, "longterm")
    for monitor in _members(env, "monitoring"):
        sources = [s for s in hosts[monitor]["datasources"] if s["name"].startswith("VictoriaMetrics ")]
        scheme = "https" if knob["lookout_tls_enabled"] else "http"
        expected = [
            {
                "name": f"VictoriaMetrics {host} (long-term)",
                "url": f"{scheme}://{_address(host, hostvars, monitor)}:{PORT}",
            }
            | (
                {
                    "basic_auth_user": knob["lookout_monitoring_user"],
                    "basic_auth_password": hosts[monitor]["password"],
                }
                if knob["lookout_auth_enabled"]
                else {}
            )
            for host, hostvars in longterm.items()
        ]
        assert sources == (expected if knob["lookout_longterm_enabled"] else []), monitor
        # The first datasource, Grafana's default, stays a Prometheus.
        assert hosts[monitor]["datasources"][0]["name"].startswith("Prometheus ")


def test_the_longterm_hosts_let_the_monitoring_hosts_in(wiring):
    env, hosts = wiring
    knob = knobs(env)
    monitoring = [v.get("ansible_host", h) for h, v in _members(env, "monitoring").items()]
    for host, allowed in hosts.items():
        rules = [rule for rule in allowed["firewall"] if rule["comment"] == "victoriametrics from monitoring"]
        if knob["lookout_longterm_enabled"] and host in _members(env, "longterm"):
            assert rules == [
                {"port": PORT, "sources": monitoring, "comment": "victoriametrics from monitoring"}
            ]
        else:
            assert rules == [], host


def _preflight(workdir: Path, hosts: dict[str, tuple[str, ...]], hostvars=None, **overrides):
    """One run of playbooks/preflight.yml with the demo's knobs and secrets, each host on its own loopback
    address."""
    inventory: dict = {
        "all": {
            "vars": {**knobs("demo"), **DEMO_SECRETS, "lookout_longterm_enabled": True, **overrides},
            "children": {group: {"hosts": {}} for group in GROUPS},
        }
    }
    for number, (name, groups) in enumerate(hosts.items(), start=11):
        for group in groups:
            inventory["all"]["children"][group]["hosts"][name] = local_host(
                ansible_host=f"127.0.0.{number}", **(hostvars or {}).get(name, {})
            )
    playbook = ROOT / "playbooks" / "preflight.yml"
    return outcomes(ansible_playbook(playbook, inventory, workdir, json_output=True))


def test_a_monitoring_host_that_also_keeps_the_long_term_store_passes(tmp_path):
    result = _preflight(tmp_path, {"monitor1": ("monitoring", "longterm"), "metrics1": ("longterm",)})
    for host, outcome in result.items():
        assert outcome.failures == (), f"{host}: {outcome.failure}"
        assert outcome.changed == 0


@pytest.mark.parametrize(
    ("hosts", "hostvars", "overrides", "says"),
    [
        (
            {"load1": ("loadgen",)},
            {},
            {},
            "lookout_longterm_enabled is true but the inventory's longterm group has no host",
        ),
        # A longterm host runs node_exporter too (playbooks/base.yml).
        (
            {"metrics1": ("longterm",)},
            {"metrics1": {"victoriametrics_port": 9100}},
            {},
            "metrics1: node_exporter_port and victoriametrics_port share port 9100",
        ),
        (
            {"metrics1": ("longterm",)},
            {},
            {"lookout_longterm_retention": "12h"},
            "victoriametrics: victoriametrics_retention_period (from lookout_longterm_retention) must be at"
            ' least a day, VictoriaMetrics refuses to start with less (got "12h")',
        ),
        # Prometheus takes days; -dedup.minScrapeInterval is a Go duration, which does not.
        (
            {"metrics1": ("longterm",)},
            {},
            {"lookout_scrape_interval": "1d"},
            "victoriametrics: victoriametrics_dedup_min_scrape_interval (from lookout_scrape_interval) must"
            " be a Go duration",
        ),
    ],
    ids=[
        "enabled-without-a-host",
        "port-taken",
        "retention-under-a-day",
        "dedup-in-days",
    ],
)
def test_the_site_preflight_refuses_before_anything_changes(tmp_path, hosts, hostvars, overrides, says):
    result = _preflight(tmp_path, hosts, hostvars, **overrides)
    assert all(outcome.changed == 0 for outcome in result.values())
    failures = " ".join(outcome.failure for outcome in result.values())
    assert says in failures, failures
