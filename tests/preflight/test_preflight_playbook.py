"""playbooks/preflight.yml on the controller, against JSON inventories of local hosts with the demo's knobs
and secrets wired by the top-level group_vars/ (as site.yml sees them):

- two services of one host on one port are refused before anything changes, naming both variables; a host
  in every group with the default ports passes;
- a malformed knob stops the run in the role checks, naming the role input and the knob it is wired from
  (the issue's example: a retention of "30 days", which Prometheus' command line refuses).
"""

import json
from dataclasses import dataclass

import pytest
import yaml
from controller_helpers import ROOT, Outcome, ansible_playbook, knobs, local_host, outcomes

PLAYBOOK = ROOT / "playbooks" / "preflight.yml"
SECRETS = yaml.safe_load(
    (ROOT / "inventories" / "demo" / "group_vars" / "all" / "demo_secrets.yml").read_text()
)
GROUPS = ("frontend", "web", "database", "monitoring", "loadgen")


@dataclass(frozen=True)
class Host:
    groups: tuple[str, ...]
    hostvars: dict


def _run(workdir, hosts: dict[str, Host], **knob_overrides) -> dict[str, Outcome]:
    """One run of playbooks/preflight.yml; each host reached at its own loopback address, so that the names
    the checks resolve (servers, database clients) resolve on this machine."""
    return outcomes(_run_raw(workdir, hosts, **knob_overrides))


def _run_raw(workdir, hosts: dict[str, Host], **knob_overrides):
    """The same run, as it ended (its stdout the JSON report)."""
    inventory: dict = {
        "all": {
            "vars": {**knobs("demo"), **SECRETS, **knob_overrides},
            "children": {g: {"hosts": {}} for g in GROUPS},
        }
    }
    for number, (name, host) in enumerate(hosts.items(), start=11):
        for group in host.groups:
            inventory["all"]["children"][group]["hosts"][name] = local_host(
                **{"ansible_host": f"127.0.0.{number}", **host.hostvars}
            )
    return ansible_playbook(PLAYBOOK, inventory, workdir, json_output=True)


# host -> (its groups and inputs, the variables whose ports clash and the port; None: no clash)
PORT_CASES: dict[str, tuple[Host, tuple[str, str, int] | None]] = {
    "allinone": (Host(("frontend", "web", "database", "monitoring"), {}), None),
    "web-candidate": (
        Host(("web",), {"conduit_candidate_port": 9100}),
        ("node_exporter_port", "conduit_candidate_port", 9100),
    ),
    "db-exporter": (
        Host(("database",), {"postgres_exporter_port": 5432}),
        ("postgresql_port", "postgres_exporter_port", 5432),
    ),
    "lb-metrics": (
        Host(("frontend",), {"haproxy_metrics_port": 9100}),
        ("node_exporter_port", "haproxy_metrics_port", 9100),
    ),
    "mon-grafana": (
        Host(("monitoring",), {"grafana_port": 9090}),
        ("prometheus_port", "grafana_port", 9090),
    ),
    "mon-cluster": (
        Host(
            ("monitoring",),
            {"alertmanager_cluster_listen_address": "0.0.0.0", "alertmanager_cluster_port": 9115},
        ),
        ("blackbox_exporter_port", "alertmanager_cluster_port", 9115),
    ),
    "mon-node": (
        Host(("monitoring",), {"node_exporter_port": 9093}),
        ("node_exporter_port", "alertmanager_port", 9093),
    ),
}
CLASHES = [host for host, (_, clash) in PORT_CASES.items() if clash]


@pytest.fixture(scope="module")
def ports(tmp_path_factory) -> dict[str, Outcome]:
    # PostgreSQL for several web hosts, a public name for the frontends, Grafana on (its port counts).
    hosts = {name: host for name, (host, _) in PORT_CASES.items()}
    overrides = {"lookout_database_engine": "postgresql", "lookout_public_name": "conduit.example.org"}
    # Four monitoring hosts are one Alertmanager cluster of four: its last member looks at the notification
    # log 3 peer timeouts after a flush, which the demo's critical group interval (10s) must outlast.
    overrides["lookout_alert_cluster_peer_timeout"] = "3s"
    return _run(tmp_path_factory.mktemp("ports"), hosts, **overrides, lookout_grafana_enabled=True)


def test_every_host_passes_the_role_checks_and_nothing_changes(ports):
    assert set(ports) == set(PORT_CASES)
    for host, outcome in ports.items():
        assert outcome.changed == 0, host
        assert "share port" in outcome.failure or not outcome.failures, f"{host}: {outcome.failure}"


def test_a_host_with_every_service_on_its_default_port_passes(ports):
    assert ports["allinone"].failures == (), ports["allinone"].failure


@pytest.mark.parametrize("host", CLASHES)
def test_two_services_on_one_port_are_refused_naming_both(ports, host):
    first, second, port = PORT_CASES[host][1]
    assert f"{host}: {first} and {second} share port {port}" in ports[host].failure, ports[host].failure


@pytest.mark.parametrize(
    ("hosts", "knob", "says"),
    [
        (
            {"monitor1": Host(("monitoring",), {})},
            {"lookout_retention": "30 days"},
            "prometheus: prometheus_retention (from lookout_retention) must be a Prometheus duration",
        ),
        # Wired through another input: haproxy_backend_maxconn is conduit_workers, lookout_conduit_workers.
        (
            {"web1": Host(("web",), {}), "lb1": Host(("frontend",), {})},
            {"lookout_conduit_workers": 0, "lookout_public_name": "conduit.example.org"},
            "haproxy: haproxy_backend_maxconn (from lookout_conduit_workers) must be a whole number above 0"
            ' (got "0")',
        ),
        # The app's test hashing outside the demo (lookout_env decides).
        (
            {"web1": Host(("web",), {})},
            {"lookout_conduit_password_hash": "pbkdf2:sha256:1000", "lookout_env": "production"},
            "conduit: conduit_password_hash (from lookout_conduit_password_hash) is below the production"
            " floor outside the demo",
        ),
    ],
    ids=["retention", "workers-behind-a-frontend", "test-hashing-outside-the-demo"],
)
def test_a_bad_knob_stops_the_run_naming_input_and_knob(tmp_path, hosts, knob, says):
    outcome = _run(tmp_path, hosts, **knob)
    assert all(o.changed == 0 for o in outcome.values())
    failures = " ".join(o.failure for o in outcome.values())
    assert says in failures, failures
    assert f'(got "{next(iter(knob.values()))}")' in failures


def test_the_demo_may_run_the_test_hashing(tmp_path):
    outcome = _run(tmp_path, {"web1": Host(("web",), {})}, lookout_conduit_password_hash="pbkdf2:sha256:1000")
    assert outcome["web1"].failures == (), outcome["web1"].failure


REMEMBER = "Remember the roles whose inputs this run has checked on this host"


def _remembered(run) -> dict[str, list[str]]:
    """common_preflight_passed as the last task set it, per host (absent: the task did not run there)."""
    report = json.loads(run.stdout)
    return {
        host: result["ansible_facts"]["common_preflight_passed"]
        for play in report["plays"]
        for task in play["tasks"]
        if task["task"]["name"] == REMEMBER
        for host, result in task["hosts"].items()
    }


def test_each_host_remembers_the_roles_it_checked(tmp_path):
    """The roles then skip their own checks (tasks/main.yml): only those this run checked on the host."""
    run = _run_raw(
        tmp_path,
        {"web1": Host(("web",), {}), "monitor1": Host(("monitoring",), {}), "load1": Host(("loadgen",), {})},
        lookout_firewall_enabled=False,
    )
    assert run.returncode == 0, run.stdout[-3000:]
    assert _remembered(run) == {
        "web1": ["node_exporter", "conduit"],
        "monitor1": ["node_exporter", "blackbox_exporter", "alertmanager", "prometheus"],
        "load1": ["node_exporter", "k6"],
    }


def test_a_refused_run_remembers_nothing(tmp_path):
    """One host's failed check stops every host before the roles are remembered as checked."""
    hosts = {"web1": Host(("web",), {}), "clash": Host(("web",), {"conduit_candidate_port": 9100})}
    run = _run_raw(tmp_path, hosts, lookout_database_engine="postgresql")
    assert "share port 9100" in outcomes(run)["clash"].failure
    assert _remembered(run) == {}


# The tasks of the roles' preflight_host.yml (and common's resolve entry) that ask a host something.
ASKING = (
    "Resolve the names on the host",
    "Check the backup schedules with systemd's own parser",
    "Read Ansible's connection as the host sees it",
)


def _asked(run) -> dict[str, list[str]]:
    """Per task that asks a host, the hosts it ran on (not skipped)."""
    report = json.loads(run.stdout)
    found: dict[str, list[str]] = {}
    for play in report["plays"]:
        for task in play["tasks"]:
            name = task["task"]["name"].split(" : ")[-1]
            if name in ASKING:
                ran = [host for host, result in task["hosts"].items() if not result.get("skipped")]
                found.setdefault(name, []).extend(ran)
    return {name: sorted(hosts) for name, hosts in found.items() if hosts}


def test_a_refused_input_stops_the_run_before_any_host_is_asked(tmp_path):
    """Every check the controller can decide runs first, on every host: one refused there stops the run
    before a host is asked to resolve a name (an unreachable host would otherwise hide the input's error)."""
    hosts = {"db1": Host(("database",), {}), "clash": Host(("web",), {"conduit_candidate_port": 9100})}
    (tmp_path / "refused").mkdir()
    (tmp_path / "passed").mkdir()
    refused = _run_raw(tmp_path / "refused", hosts, lookout_database_engine="postgresql")
    assert "share port 9100" in outcomes(refused)["clash"].failure
    assert _asked(refused) == {}
    passed = _run_raw(
        tmp_path / "passed", {**hosts, "clash": Host(("web",), {})}, lookout_database_engine="postgresql"
    )
    assert passed.returncode == 0, passed.stdout[-3000:]
    assert "db1" in _asked(passed)["Resolve the names on the host"]


def test_a_host_named_wrong_is_refused_by_its_peers_before_it_is_asked(tmp_path):
    """A web host the database cannot resolve, and that Ansible cannot reach either: the database role's
    check names it, and the host is never asked anything. The group roles' checks that ask a host run before
    the firewall's (which every host runs, the unreachable one too) on every host: one looped include over
    lists that differ per host would order the included files by whichever host's result came first (here
    the web hosts', listed before db1: the firewall's check would run first)."""
    hosts = {
        "web1": Host(("web",), {}),
        "web3": Host(("web",), {"ansible_connection": "ssh", "ansible_host": "web3.invalid"}),
        "db1": Host(("database",), {}),
    }
    run = _run_raw(tmp_path, hosts, lookout_database_engine="postgresql", lookout_firewall_enabled=True)
    found = outcomes(run)
    assert "postgresql_hba_clients: web3.invalid does not resolve on db1" in found["db1"].failure, found
    assert json.loads(run.stdout)["stats"]["web3"]["unreachable"] == 0, found
