"""The cluster and the dead-man's switch as the role and its wiring derive them, on the controller (no hosts):
peers and the advertised address from the inventory's monitoring hosts, no cluster with one; the heartbeat
URL https-only except to the local stand-in; bad input fails in preflight naming the variable, secrets
unshown."""

import json

import pytest
import yaml
from controller_helpers import ROOT, ansible_playbook, knobs, local_host, outcomes

CHANNELS = {"critical": "#alerts", "warning": "#warnings"}
SLACK = "https://hooks.slack.example.org/services/test"
REQUIRED = {"alertmanager_slack_channels": CHANNELS, "alertmanager_slack_api_url": SLACK}
SECRET_HTTP = "http://hc.example.org/ping/secret-token-1"
SECRET_STANDIN = "http://web7:5001/heartbeat/secret-token-2"
# The gossip address (its port the role's default, 9094) and the flag Alertmanager gets from it.
CLUSTER_ADDRESS = "0.0.0.0"
CLUSTER = "0.0.0.0:9094"

PLAY = """
- name: Check the inputs, then show what the role derived
  hosts: {hosts}
  gather_facts: false
  {vars_files}
  tasks:
    - name: Check the inputs
      ansible.builtin.include_role:
        name: alertmanager
        tasks_from: preflight
        public: true
    - name: Show the derived command line
      ansible.builtin.debug:
        msg:
          exec: "{{{{ __alertmanager_exec_start }}}}"
          stand_in: "{{{{ alertmanager_heartbeat_stand_in_hosts }}}}"
"""


def _run(workdir, inventory: dict, hosts: str, wired: bool):
    play = workdir / "play.yml"
    vars_files = f"vars_files: [{ROOT / 'group_vars' / 'all' / 'alertmanager.yml'}]" if wired else ""
    play.write_text(PLAY.format(hosts=hosts, vars_files=vars_files))
    run = ansible_playbook(play, inventory, workdir, json_output=True)
    report = json.loads(run.stdout)
    shown = {}
    for p in report["plays"]:
        for task in p["tasks"]:
            if task["task"]["name"] == "Show the derived command line":
                shown = {host: result["msg"] for host, result in task["hosts"].items()}
    return run, outcomes(run), shown


def _flags(shown: dict, host: str) -> list[str]:
    return [f for f in shown[host]["exec"] if f.startswith("--cluster.")]


# --- The wiring: production's knobs on two monitoring hosts, demo's on one -----------------------------


@pytest.fixture(scope="module")
def two_monitoring_hosts(tmp_path_factory):
    secrets = {
        "vault_slack_webhook_url": SLACK,
        "vault_heartbeat_url": "https://hc.example.org/ping/production",
        "vault_monitoring_password": "test-monitoring-password",
    }
    common = {**knobs("production"), **secrets}
    inventory = {
        "all": {
            "vars": common,
            "children": {
                "monitoring": {
                    "hosts": {
                        "mon1": local_host(ansible_host="192.0.2.21"),
                        "mon2": local_host(ansible_host="2001:db8::22"),
                    }
                },
                "web": {"hosts": {"web1": local_host(ansible_host="192.0.2.11")}},
            },
        }
    }
    return _run(tmp_path_factory.mktemp("am-two"), inventory, "monitoring", wired=True)


def test_two_monitoring_hosts_make_a_cluster_from_the_inventory(two_monitoring_hosts):
    run, _, shown = two_monitoring_hosts
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr
    # Production gossips over mutual TLS (lookout_tls_enabled).
    tls = "--cluster.tls-config=/etc/alertmanager/alertmanager-cluster-tls.yml"
    assert _flags(shown, "mon1") == [
        f"--cluster.listen-address={CLUSTER}",
        "--cluster.advertise-address=192.0.2.21:9094",
        "--cluster.peer=[2001:db8::22]:9094",
        f"--cluster.peer-timeout={knobs('production')['lookout_alert_cluster_peer_timeout']}",
        tls,
    ]
    assert _flags(shown, "mon2") == [
        f"--cluster.listen-address={CLUSTER}",
        "--cluster.advertise-address=[2001:db8::22]:9094",
        "--cluster.peer=192.0.2.21:9094",
        f"--cluster.peer-timeout={knobs('production')['lookout_alert_cluster_peer_timeout']}",
        tls,
    ]
    # Production: https only.
    assert shown["mon1"]["stand_in"] == []


@pytest.fixture(scope="module")
def one_monitoring_host(tmp_path_factory):
    demo_secrets = yaml.safe_load((ROOT / "inventories/demo/group_vars/all/demo_secrets.yml").read_text())
    inventory = {
        "all": {
            "vars": {**knobs("demo"), **demo_secrets},
            "children": {
                "monitoring": {"hosts": {"monitor1": local_host()}},
                "loadgen": {"hosts": {"load1": local_host(ansible_host="10.0.0.31")}},
                # The stack's stand-in on load1, by name: allowed by the demo's lookout_heartbeat_stand_in.
                "stand_in_by_name": {
                    "hosts": {"monitor9": local_host(vault_heartbeat_url="http://load1:5001/heartbeat/stack")}
                },
            },
        }
    }
    return _run(tmp_path_factory.mktemp("am-one"), inventory, "monitoring:stand_in_by_name", wired=True)


def test_one_monitoring_host_opens_no_gossip_port(one_monitoring_host):
    run, _, shown = one_monitoring_host
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr
    assert _flags(shown, "monitor1") == ["--cluster.listen-address="]


def test_the_demo_allows_plain_http_to_loopback_and_its_own_hosts_only(one_monitoring_host):
    _, result, shown = one_monitoring_host
    assert result["monitor9"].failures == (), "the stand-in on an inventory host is accepted"
    assert {"127.0.0.1", "::1", "localhost", "monitor1", "load1", "10.0.0.31"} <= set(
        shown["monitor1"]["stand_in"]
    )


# --- Bad input, straight to the role --------------------------------------------------------------------


def _case(**inputs) -> dict:
    return local_host(**REQUIRED, **inputs)


CASES = {
    "heartbeat_http": (_case(alertmanager_heartbeat_url=SECRET_HTTP), "alertmanager_heartbeat_url"),
    "heartbeat_http_to_another_host": (
        _case(
            alertmanager_heartbeat_url=SECRET_STANDIN,
            alertmanager_heartbeat_stand_in_hosts=["load1", "127.0.0.1"],
        ),
        "alertmanager_heartbeat_url",
    ),
    "heartbeat_no_scheme": (
        _case(alertmanager_heartbeat_url="hc.example.org/ping/x"),
        "alertmanager_heartbeat_url",
    ),
    "heartbeat_interval": (
        _case(alertmanager_heartbeat_interval="1 minute"),
        "alertmanager_heartbeat_interval",
    ),
    "heartbeat_alertname": (
        _case(alertmanager_heartbeat_alertname="Watch dog"),
        "alertmanager_heartbeat_alertname",
    ),
    "cluster-peer-not-monitoring": (
        _case(alertmanager_cluster_members=["cluster-peer-not-monitoring", "web1"]),
        "alertmanager_cluster_members (cluster-peer-not-monitoring, web1): "
        "web1 is not a host of the inventory group monitoring",
    ),
    "cluster-member-twice": (
        _case(alertmanager_cluster_members=["cluster-member-twice", "mon-peer", "mon-peer"]),
        "mon-peer is listed twice",
    ),
    "cluster-same-address": (
        _case(ansible_host="192.0.2.99", alertmanager_cluster_members=["cluster-same-address", "mon-twin"]),
        "cluster-same-address and mon-twin are one address (192.0.2.99): one Alertmanager listed twice",
    ),
    "cluster-without-this-host": (
        _case(alertmanager_cluster_members=["mon-peer", "mon-twin"]),
        "this host (cluster-without-this-host) is not one of them",
    ),
    "cluster-without-listen-address": (
        _case(alertmanager_cluster_members=["cluster-without-listen-address", "mon-peer"]),
        "a cluster needs alertmanager_cluster_listen_address",
    ),
    "cluster-unresolvable": (
        _case(
            ansible_host="192.0.2.98", alertmanager_cluster_members=["cluster-unresolvable", "mon-nowhere"]
        ),
        "alertmanager_cluster_members: mon-nowhere.invalid does not resolve",
    ),
    "cluster-loopback": (
        _case(ansible_host="localhost", alertmanager_cluster_members=["cluster-loopback", "mon-peer"]),
        "alertmanager_cluster_members: this host's address localhost resolves to 127.0.0.1",
    ),
}
GOOD = {
    "heartbeat_https": _case(alertmanager_heartbeat_url="https://hc.example.org/ping/x"),
    "heartbeat_none": _case(alertmanager_heartbeat_url=""),
    "heartbeat_stand_in": _case(
        alertmanager_heartbeat_url="http://LOAD1:5001/heartbeat/x",
        alertmanager_heartbeat_stand_in_hosts=["load1"],
    ),
    "cluster-of-one-listening": _case(),
}


@pytest.fixture(scope="module")
def direct(tmp_path_factory):
    cluster = {"alertmanager_cluster_listen_address": CLUSTER_ADDRESS}
    cases = {name: {**inputs, **cluster} for name, (inputs, _) in CASES.items()}
    cases["cluster-without-listen-address"].pop("alertmanager_cluster_listen_address")
    inventory = {
        "all": {
            "children": {
                "cases": {
                    "hosts": {**cases, **{name: {**inputs, **cluster} for name, inputs in GOOD.items()}}
                },
                "monitoring": {
                    "hosts": {
                        **{name: {} for name in [*cases, *GOOD]},
                        "mon-peer": local_host(ansible_host="192.0.2.22"),
                        "mon-twin": local_host(ansible_host="192.0.2.99"),
                        "mon-nowhere": local_host(ansible_host="mon-nowhere.invalid"),
                    }
                },
                "web": {"hosts": {"web1": local_host()}},
            }
        }
    }
    return _run(tmp_path_factory.mktemp("am-direct"), inventory, "cases", wired=False)


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_fails_before_any_change_naming_the_variable(direct, case):
    _, result, _ = direct
    assert result[case].changed == 0
    assert result[case].failures, f"{case} passed"
    assert CASES[case][1] in result[case].failure, result[case].failure


@pytest.mark.parametrize("case", sorted(GOOD))
def test_valid_input_passes(direct, case):
    _, result, _ = direct
    assert result[case].failures == (), result[case].failure


def test_a_cluster_of_one_listens_without_peers(direct):
    _, _, shown = direct
    assert _flags(shown, "cluster-of-one-listening") == [f"--cluster.listen-address={CLUSTER}"]


def test_the_heartbeat_url_is_never_shown(direct):
    run, _, _ = direct
    for secret in (SECRET_HTTP, SECRET_STANDIN, "secret-token"):
        assert secret not in run.stdout + run.stderr
