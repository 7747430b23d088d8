"""Prometheus' configuration of every environment, rendered by playbooks/render.yml from the inventory
(vaulted environments get a throwaway test vault): jobs follow the inventory groups, probes follow the web
hosts, the environment's label and intervals are set; and no role names an inventory group.

Two copies of production pin the PostgreSQL job whatever the inventories hold: one whose `database` group
has two hosts (one without ansible_host, one with its own exporter port), one without the group. Two more
do the same for the `frontend` group (HAProxy's exporters and the probe of the public URL)."""

import re
import subprocess
import sys

import pytest
import yaml
from controller_helpers import ENVIRONMENTS, ROOT, knobs
from prometheus_helpers import environment_renders, render_command, render_env

sys.path.insert(0, str(ROOT / "tests" / "inventories"))
from inventory_helpers import make_test_inventory

MY_ROLES = ("common", "node_exporter", "prometheus", "blackbox_exporter")
# Series the backup timers write (textfile collector) and the rules read: names, not knobs.
BACKUP_METRICS = (
    "lookout_backup_last_success_timestamp_seconds",
    "lookout_restore_check_success",
    "lookout_restore_check_last_success_timestamp_seconds",
)
WITH_DATABASE = "production+database"
WITHOUT_DATABASE = "production-database"
DATABASE_HOSTS = {
    "prod-db1": {"ansible_host": "203.0.113.31"},
    "prod-db2": {"postgres_exporter_port": 9188},
}
WITH_FRONTEND = "production+frontend"
WITHOUT_FRONTEND = "production-frontend"
FRONTEND_HOSTS = {
    "prod-lb1": {"ansible_host": "203.0.113.10"},
    "prod-lb2": {"haproxy_metrics_port": 8406},
}
# Copies of production with their group replaced: variant -> (group, its hosts or None to drop it).
GROUP_VARIANTS = {
    WITH_DATABASE: ("database", DATABASE_HOSTS),
    WITHOUT_DATABASE: ("database", None),
    WITH_FRONTEND: ("frontend", FRONTEND_HOSTS),
    WITHOUT_FRONTEND: ("frontend", None),
}
CONFIG_VARIANTS = (*ENVIRONMENTS, *GROUP_VARIANTS)
# variant -> {monitoring host: its rendered lookout.rules.yml}, filled by the `replicas` fixture.
RULES: dict[str, dict[str, dict]] = {}


def _env(variant: str) -> str:
    return "production" if variant in GROUP_VARIANTS else variant


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
def configs(replicas) -> dict[str, tuple[dict, dict]]:
    """env -> (inventory hosts.yml, the first monitoring host's rendered prometheus.yml)."""
    return {name: (hosts, per_host[min(per_host)]) for name, (hosts, per_host) in replicas.items()}


@pytest.fixture(scope="module")
def replicas(tmp_path_factory) -> dict[str, tuple[dict, dict[str, dict]]]:
    """env -> (inventory hosts.yml, {monitoring host: its rendered prometheus.yml}). The environments are
    the renders test_web_auth.py reads too (environment_renders: once per test run, every service); the
    copies of production render Prometheus' files alone, in parallel with them."""
    workdir = tmp_path_factory.mktemp("prometheus-config")
    runs = {}
    for name, (group, members) in GROUP_VARIANTS.items():
        env = _env(name)
        inventory, password = make_test_inventory(env, workdir / "inventories" / name)
        hosts_file = inventory / "hosts.yml"
        hosts = yaml.safe_load(hosts_file.read_text())
        hosts["all"]["children"].pop(group, None)
        if members:
            hosts["all"]["children"][group] = {"hosts": members}
        hosts_file.write_text(yaml.safe_dump(hosts))
        out = workdir / "out" / name
        command = render_command(env, inventory, password, out, "--tags", "prometheus")
        runs[name] = (
            inventory,
            out,
            subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=render_env()),
        )
    # While the copies render: the environments (rendered here, or by test_web_auth.py).
    finished = {
        env: (render.inventory, render.out, render.output, render.returncode)
        for env, render in environment_renders(tmp_path_factory).items()
    }
    for name, (inventory, out, process) in runs.items():
        finished[name] = (inventory, out, process.communicate(timeout=300)[0].decode(), process.returncode)
    results = {}
    for name in CONFIG_VARIANTS:
        inventory, out, output, returncode = finished[name]
        assert returncode == 0, output
        hosts = yaml.safe_load((inventory / "hosts.yml").read_text())
        rendered = list(out.glob("*/prometheus/prometheus.yml"))
        assert len(rendered) == len(_group(hosts, "monitoring")), rendered
        results[name] = (hosts, {p.parent.parent.name: yaml.safe_load(p.read_text()) for p in rendered})
        RULES[name] = {
            p.parent.parent.name: yaml.safe_load((p.parent / "lookout.rules.yml").read_text())
            for p in rendered
        }
    return results


def _group(hosts: dict, name: str) -> dict:
    return (hosts["all"]["children"].get(name) or {}).get("hosts") or {}


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
    # A host listed in several groups (test-monitor2 is also `longterm`) has its variables where it is
    # first defined with them.
    hostvars: dict[str, dict] = {}
    for group in hosts["all"]["children"]:
        for h, v in _group(hosts, group).items():
            hostvars[h] = {**hostvars.get(h, {}), **(v or {})}
    everyone = {f"{_address(h, v)}:9100" for h, v in hostvars.items()}
    assert config["global"]["external_labels"] == {"env": env, "replica": min(_group(hosts, "monitoring"))}
    assert _job(config, f"{env}-web")["static_configs"] == [{"targets": web}]
    assert sorted(_job(config, "node")["static_configs"][0]["targets"]) == sorted(everyone)
    probes = _job(config, "blackbox-http")
    assert probes["params"] == {"module": ["http_2xx"]}
    assert [c["labels"]["instance"] for c in probes["static_configs"]] == web
    paths = _probe_paths()
    scheme = "https" if knobs(env)["lookout_tls_enabled"] else "http"
    assert [c["targets"] for c in probes["static_configs"]] == [
        [f"{scheme}://{t}{p}" for p in paths] for t in web
    ]
    assert {j["job_name"] for j in config["scrape_configs"]} == {
        "prometheus",
        f"{env}-web",
        "blackbox-http",
        "blackbox",
        "node",
        "alertmanager",
    } | ({f"{env}-postgres"} if _group(hosts, "database") else set()) | (
        {f"{env}-haproxy", f"{env}-site"} if _group(hosts, "frontend") else set()
    ) | ({f"{env}-tls"} if knobs(env)["lookout_tls_enabled"] else set())
    monitoring = _group(hosts, "monitoring")
    alertmanagers = (
        [f"{_address(h, v)}:9093" for h, v in monitoring.items()]
        if len(monitoring) > 1
        else ["127.0.0.1:9093"]
    )
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == alertmanagers


# lookout's exporter-toolkit servers, Conduit (gunicorn) and HAProxy's metrics endpoint.
TLS_JOBS = (
    "prometheus",
    "blackbox-http",
    "blackbox",
    "node",
    "alertmanager",
    "{env}-postgres",
    "{env}-site",
    "{env}-web",
    "{env}-haproxy",
)
CA_FILE = "/etc/prometheus/tls/prometheus-ca.crt"


@pytest.mark.parametrize("variant", CONFIG_VARIANTS)
def test_tls_follows_the_environment(configs, variant):
    """With lookout_tls_enabled every scrape of lookout's servers, the alerts and the remote write use https
    verified against the CA beside Prometheus' certificate, and every TLS listener is probed; without it
    (the demo) nothing is https."""
    env = _env(variant)
    hosts, config = configs[variant]
    tls = knobs(env)["lookout_tls_enabled"]
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    for name in (n.format(env=env) for n in TLS_JOBS):
        if name in jobs:
            assert jobs[name].get("scheme", "http") == ("https" if tls else "http"), name
            assert jobs[name].get("tls_config") == ({"ca_file": CA_FILE} if tls else None), name
    alertmanagers = config["alerting"]["alertmanagers"][0]
    assert alertmanagers.get("scheme", "http") == ("https" if tls else "http")
    for target in config.get("remote_write", []):
        assert target["url"].startswith("https://" if tls else "http://"), target
        assert target.get("tls_config") == ({"ca_file": CA_FILE} if tls else None), target
    if not tls:
        assert f"{env}-tls" not in jobs
        return
    probe = jobs[f"{env}-tls"]
    assert probe["params"] == {"module": ["tls_connect"]}
    monitoring = _group(hosts, "monitoring")
    listeners = set(probe["static_configs"][0]["targets"])
    blackbox_on_loopback = knobs(env)["lookout_blackbox_listen_address"] == "127.0.0.1"
    for host, hostvars in monitoring.items():
        ports = (9090, 9093) + ((3000,) if knobs(env)["lookout_grafana_enabled"] else ())
        for port in ports + (() if blackbox_on_loopback else (9115,)):
            assert f"{_address(host, hostvars)}:{port}" in listeners, (host, port)
        assert (f"{_address(host, hostvars)}:9115" in listeners) != blackbox_on_loopback, host
    # A blackbox exporter on loopback is probed there, once: each Prometheus reaches its own.
    assert ("127.0.0.1:9115" in listeners) == blackbox_on_loopback
    for host, hostvars in _group(hosts, "database").items():
        assert (
            f"{_address(host, hostvars)}:{(hostvars or {}).get('postgres_exporter_port', 9187)}" in listeners
        )
    for host, hostvars in _group(hosts, "frontend").items():
        assert f"{_address(host, hostvars)}:443" in listeners
        assert f"{_address(host, hostvars)}:{(hostvars or {}).get('haproxy_metrics_port', 8405)}" in listeners
    for host, hostvars in _group(hosts, "web").items():
        assert f"{_address(host, hostvars)}:5566" in listeners
    # The Alertmanagers' gossip, when there is a cluster (over mutual TLS).
    for host, hostvars in monitoring.items():
        assert (f"{_address(host, hostvars)}:9094" in listeners) == (len(monitoring) > 1), host
    assert set(jobs["node"]["static_configs"][0]["targets"]) <= listeners


@pytest.mark.parametrize("variant", CONFIG_VARIANTS)
def test_the_postgres_job_follows_the_database_hosts(configs, variant):
    hosts, config = configs[variant]
    exporters = [
        f"{_address(h, v)}:{(v or {}).get('postgres_exporter_port', 9187)}"
        for h, v in _group(hosts, "database").items()
    ]
    postgres_jobs = [j["job_name"] for j in config["scrape_configs"] if "postgres" in j["job_name"]]
    if exporters:
        assert postgres_jobs == [f"{_env(variant)}-postgres"]
        assert _job(config, postgres_jobs[0])["static_configs"] == [{"targets": exporters}]
    else:
        assert postgres_jobs == []


def test_database_hosts_bring_a_postgres_job(configs):
    _, config = configs[WITH_DATABASE]
    assert _job(config, "production-postgres")["static_configs"] == [
        {"targets": ["203.0.113.31:9187", "prod-db2:9188"]}
    ]
    # Their node exporters carry the backup metrics.
    node = _job(config, "node")["static_configs"][0]["targets"]
    assert {"203.0.113.31:9100", "prod-db2:9100"} <= set(node)
    without = {j["job_name"] for j in configs[WITHOUT_DATABASE][1]["scrape_configs"]}
    assert "production-postgres" not in without
    assert {j["job_name"] for j in config["scrape_configs"]} == without | {"production-postgres"}


@pytest.mark.parametrize("variant", CONFIG_VARIANTS)
def test_the_frontend_jobs_follow_the_frontend_hosts(configs, variant):
    hosts, config = configs[variant]
    env = _env(variant)
    exporters = [
        f"{_address(h, v)}:{(v or {}).get('haproxy_metrics_port', 8405)}"
        for h, v in _group(hosts, "frontend").items()
    ]
    names = {j["job_name"] for j in config["scrape_configs"]}
    if not exporters:
        assert not names & {f"{env}-haproxy", f"{env}-site"}
        return
    assert _job(config, f"{env}-haproxy")["static_configs"] == [{"targets": exporters}]
    site = _job(config, f"{env}-site")
    public_name = yaml.safe_load(
        (ROOT / "inventories" / env / "group_vars" / "all" / "vars.yml").read_text()
    )["lookout_public_name"]
    assert site["static_configs"] == [{"targets": [f"https://{public_name}/health"]}]
    # The same module as the per-host probes, through the same blackbox exporter, with its credentials.
    probes = _job(config, "blackbox-http")
    assert site["params"] == probes["params"] and site["metrics_path"] == "/probe"
    assert site.get("basic_auth") == probes.get("basic_auth")
    relabel = {(tuple(r.get("source_labels", [])), r["target_label"]) for r in site["relabel_configs"]}
    assert {(("__address__",), "__param_target"), (("__address__",), "instance")} <= relabel
    assert [r["replacement"] for r in site["relabel_configs"] if r["target_label"] == "__address__"] == [
        r["replacement"] for r in probes["relabel_configs"] if r["target_label"] == "__address__"
    ]


def test_frontend_hosts_bring_their_jobs(configs):
    _, config = configs[WITH_FRONTEND]
    assert _job(config, "production-haproxy")["static_configs"] == [
        {"targets": ["203.0.113.10:8405", "prod-lb2:8406"]}
    ]
    # Their node exporters are scraped like every host's.
    assert {"203.0.113.10:9100", "prod-lb2:9100"} <= set(_job(config, "node")["static_configs"][0]["targets"])
    without = {j["job_name"] for j in configs[WITHOUT_FRONTEND][1]["scrape_configs"]}
    assert {j["job_name"] for j in config["scrape_configs"]} == without | {
        "production-haproxy",
        "production-site",
    }


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
            for metric in BACKUP_METRICS:
                text = text.replace(metric, "")
            assert not re.search(r"groups\[|\blookout_\w+|\bvault_\w+", text), f"{path} reads the inventory"


def _knobs(env: str) -> dict:
    return yaml.safe_load((ROOT / "inventories" / env / "group_vars" / "all" / "vars.yml").read_text())


def test_some_environments_have_an_ha_pair(replicas):
    """The HA tests below judge something: production and testing list two monitoring hosts."""
    assert {env for env in ENVIRONMENTS if len(_group(replicas[env][0], "monitoring")) > 1} >= {
        "production",
        "testing",
    }
    assert len(_group(replicas["demo"][0], "monitoring")) == 1


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_replicas_differ_only_by_their_replica_label(replicas, env):
    hosts, per_host = replicas[env]
    assert sorted(per_host) == sorted(_group(hosts, "monitoring"))
    stripped = []
    for host, config in per_host.items():
        labels = config["global"]["external_labels"]
        assert labels == {"env": env, "replica": host}
        common = {**config["global"], "external_labels": {"env": env}}
        # A long-term store on the monitoring host itself is written to on loopback: the remote-write URLs
        # may differ, nothing else of remote_write may.
        remote = [{k: v for k, v in r.items() if k != "url"} for r in config.get("remote_write", [])]
        stripped.append(yaml.safe_dump({**config, "global": common, "remote_write": remote}))
    assert len(set(stripped)) == 1, f"{env}: the monitoring hosts' configurations differ beyond `replica`"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_alerts_reach_every_alertmanager_without_the_replica_label(replicas, env):
    hosts, per_host = replicas[env]
    monitoring = _group(hosts, "monitoring")
    auth = _knobs(env)["lookout_auth_enabled"]
    for config in per_host.values():
        alerting = config["alerting"]
        assert alerting["alert_relabel_configs"] == [{"action": "labeldrop", "regex": "replica"}]
        (alertmanagers,) = alerting["alertmanagers"]
        targets = alertmanagers["static_configs"][0]["targets"]
        if len(monitoring) > 1:
            # Every Alertmanager at its inventory address, the same list on every replica.
            assert targets == [f"{_address(h, v)}:9093" for h, v in monitoring.items()]
        else:
            assert targets == ["127.0.0.1:9093"]
        # Every Alertmanager is scraped too (its notification and cluster metrics), with the same credentials.
        scrape = _job(config, "alertmanager")
        assert scrape["static_configs"] == [{"targets": targets}]
        assert ("basic_auth" in alertmanagers) == ("basic_auth" in scrape) == auth
        if auth:
            assert alertmanagers["basic_auth"] == scrape["basic_auth"]
            assert scrape["basic_auth"]["password_file"].endswith("client-alertmanager.password")


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_prometheus_scrapes_itself_and_its_peers(replicas, env):
    hosts, per_host = replicas[env]
    monitoring = _group(hosts, "monitoring")
    auth = _knobs(env)["lookout_auth_enabled"]
    for config in per_host.values():
        job = _job(config, "prometheus")
        targets = job["static_configs"][0]["targets"]
        if len(monitoring) > 1:
            assert targets == [f"{_address(h, v)}:9090" for h, v in monitoring.items()]
        else:
            assert targets == ["127.0.0.1:9090"]
        assert ("basic_auth" in job) == auth


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_probe_interval_follows_the_environment(replicas, env):
    _, per_host = replicas[env]
    for config in per_host.values():
        probes = _job(config, "blackbox-http")
        assert probes["scrape_interval"] == _knobs(env)["lookout_probe_scrape_interval"]
        assert "scrape_interval" not in _job(config, "node")


def _alert(rules: dict, name: str) -> dict:
    found = [r for g in rules["groups"] for r in g["rules"] if r.get("alert") == name]
    assert len(found) == 1, name
    return found[0]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_alert_path_rules_follow_the_inventory(replicas, env):
    """The cluster size is the number of monitoring hosts; the TSDB disk alert reads their node exporters
    only; and the replicas' rules are the same."""
    hosts, _ = replicas[env]
    monitoring = _group(hosts, "monitoring")
    per_host = RULES[env]
    assert len({yaml.safe_dump(r) for r in per_host.values()}) == 1
    rules = next(iter(per_host.values()))
    members = _alert(rules, "AlertmanagerClusterMembersMissing")["expr"]
    assert members.endswith(f"< {len(monitoring)}"), members
    storage = _alert(rules, "PrometheusStorageFilling")["expr"]
    # A PromQL string: its backslashes are escaped.
    regex = re.search(r'instance=~"([^"]+)"', storage).group(1).replace("\\\\", "\\")
    nodes = [f"{_address(h, v)}:9100" for h, v in monitoring.items()]
    assert all(re.fullmatch(regex, n) for n in nodes), (regex, nodes)
    everyone = [
        f"{_address(h, v)}:9100" for g in hosts["all"]["children"] for h, v in _group(hosts, g).items()
    ]
    assert [n for n in everyone if re.fullmatch(regex, n)] == [n for n in everyone if n in nodes]
    assert f'mountpoint="{_knobs(env)["lookout_tsdb_mountpoint"]}"' in storage
    assert _alert(rules, "PrometheusStorageFilling")["for"] == _knobs(env)["lookout_alert_tsdb_disk_for"]
    assert _alert(rules, "Watchdog")["labels"] == {"severity": "heartbeat"}
