"""Alertmanager's gossip over mutual TLS, live on 127.0.0.1 with Debian's Alertmanager 0.25 and what the role
writes: common's `tls` entry signs each member's certificate with a test CA (clientAuth too, the advertised
address among its names), and common's `files` entry writes the role's --cluster.tls-config file after the
role's check (a mutual TLS handshake with the files it names).

- two members that hold certificates of the CA gossip: each sees both in /api/v2/status;
- a third Alertmanager whose certificate comes from another CA, pointed at the first, does not join: it
  stays alone and the members stay two;
- the role's check refuses a file whose certificate does not verify against the CA it names;
- the blackbox exporter's tls_connect module (Prometheus' `<env>-tls` probe) verifies the gossip port's
  certificate against the CA and reads its end;
- the role's command line carries --cluster.tls-config when clustered with alertmanager_cluster_tls_enabled.
"""

import grp
import json
import os
import pwd
import subprocess
import urllib.request
from pathlib import Path

import pytest
import yaml
from controller_helpers import ROOT, ansible_playbook, free_port, local_host, start_quietly, wait_for

ALERTMANAGER = Path("/usr/bin/prometheus-alertmanager")
BLACKBOX = Path("/usr/bin/prometheus-blackbox-exporter")
ROLE_VARS = ROOT / "roles" / "alertmanager" / "vars" / "main.yml"
MEMBERS = ("am1", "am2")


def _play(hosts: str) -> dict:
    """One play per CA: common creates a play's CA once, for all of its hosts."""
    return {
        "name": "Each Alertmanager's certificate and gossip TLS file, as the role's configure step writes",
        "hosts": hosts,
        "gather_facts": False,
        "vars_files": [str(ROLE_VARS)],
        "tasks": [
            {
                "name": "Take the certificate",
                "ansible.builtin.include_role": {"name": "common", "tasks_from": "tls"},
                "vars": {
                    "common_tls_role": "alertmanager",
                    "common_tls_files": "{{ __alertmanager_tls_files }}",
                    "common_tls_group": "{{ alertmanager_system_group }}",
                    "common_tls_extra_names": "{{ __alertmanager_tls_extra_names }}",
                    "common_tls_client_auth": "{{ __alertmanager_cluster_tls | bool }}",
                },
            },
            {
                "name": "Write the gossip's TLS configuration (checked)",
                "ansible.builtin.include_role": {"name": "common", "tasks_from": "files"},
                "vars": {
                    "common_files": [
                        {
                            "path": "{{ __alertmanager_cluster_tls_file }}",
                            "content": "{{ __alertmanager_cluster_tls_config | to_nice_json }}\n",
                            "group": "{{ alertmanager_system_group }}",
                            "mode": "0640",
                            "validate": "python3 -c {{ __alertmanager_cluster_tls_check | quote }} %s",
                        }
                    ]
                },
            },
            {
                "name": "Write the command line the unit would run",
                "ansible.builtin.copy": {
                    "content": "{{ __alertmanager_exec_start | to_json }}",
                    "dest": "{{ alertmanager_config_dir }}/exec_start.json",
                    "mode": "0644",
                },
            },
        ],
    }


def _host(name: str, work: Path, ca: str) -> dict:
    group = grp.getgrgid(os.getgid()).gr_name
    return local_host(
        ansible_host="127.0.0.1",
        alertmanager_config_dir=str(work / name),
        alertmanager_data_dir=str(work / name / "data"),
        alertmanager_system_group=group,
        alertmanager_install_method="package",
        alertmanager_listen_address="127.0.0.1",
        alertmanager_port=9093,
        alertmanager_web_external_url="",
        alertmanager_web_basic_auth_enabled=False,
        alertmanager_data_retention="120h",
        alertmanager_cluster_group="all",
        alertmanager_cluster_members=list(MEMBERS),
        alertmanager_cluster_listen_address="127.0.0.1",
        alertmanager_cluster_port=9094,
        alertmanager_cluster_tls_enabled=True,
        alertmanager_cluster_peer_timeout="15s",
        alertmanager_tls_enabled=True,
        __alertmanager_cluster_advertise_ip="127.0.0.1",
        alertmanager_tls_names=[name],
        alertmanager_tls_certificate="",
        alertmanager_tls_key="",
        alertmanager_tls_ca_name=ca,
        alertmanager_tls_ca_dir=str(work / ca),
        alertmanager_tls_ca_certificate="",
        alertmanager_tls_ca_key="",
        common_certificate_owner=pwd.getpwuid(os.getuid()).pw_name,
        common_certificate_packages=[],
        common_ca_trust_path="",
    )


class _RoleVars(yaml.SafeLoader):
    """Reads a role's vars file, its !unsafe values as plain strings."""


_RoleVars.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def _role_var(name: str) -> str:
    return yaml.load(ROLE_VARS.read_text(), Loader=_RoleVars)[name]


def _status(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/status", timeout=5) as response:
        return json.loads(response.read())["cluster"]


def _peers(port: int) -> int:
    try:
        return len(_status(port)["peers"])
    except (OSError, ValueError, KeyError):
        return 0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if not (ALERTMANAGER.exists() and BLACKBOX.exists()):
        pytest.skip("Debian's alertmanager and blackbox exporter are not on this controller (make setup)")
    work = tmp_path_factory.mktemp("gossip-tls")
    hosts = {name: _host(name, work, "gossip-ca") for name in MEMBERS}
    hosts["rogue"] = _host("rogue", work, "rogue-ca")
    (work / "play.yml").write_text(
        yaml.safe_dump([_play(":".join(MEMBERS)), _play("rogue")], sort_keys=False)
    )
    run = ansible_playbook(work / "play.yml", {"all": {"hosts": hosts}}, work)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr
    (work / "alertmanager.yml").write_text("route:\n  receiver: nobody\nreceivers:\n  - name: nobody\n")
    names = (*MEMBERS, "rogue")
    web = {name: free_port() for name in names}
    gossip = {name: free_port() for name in names}
    peer = {"am1": "am2", "am2": "am1", "rogue": "am1"}
    processes = {}

    def start(name: str) -> None:
        processes[name] = start_quietly(
            [
                str(ALERTMANAGER),
                f"--config.file={work / 'alertmanager.yml'}",
                f"--storage.path={work / name / 'data'}",
                f"--web.listen-address=127.0.0.1:{web[name]}",
                f"--cluster.listen-address=127.0.0.1:{gossip[name]}",
                f"--cluster.advertise-address=127.0.0.1:{gossip[name]}",
                f"--cluster.peer=127.0.0.1:{gossip[peer[name]]}",
                f"--cluster.tls-config={work / name / 'alertmanager-cluster-tls.yml'}",
                "--cluster.peer-timeout=1s",
            ]
        )

    for name in MEMBERS:
        start(name)
    try:
        yield {"work": work, "web": web, "gossip": gossip, "start": start}
    finally:
        for process in processes.values():
            process.terminate()
            process.wait(timeout=20)


def test_the_role_adds_the_flag(cluster):
    argv = json.loads((cluster["work"] / "am1" / "exec_start.json").read_text())
    assert f"--cluster.tls-config={cluster['work'] / 'am1' / 'alertmanager-cluster-tls.yml'}" in argv


def test_members_with_certificates_of_the_ca_gossip(cluster):
    for name in MEMBERS:
        assert wait_for(lambda n=name: _peers(cluster["web"][n]) == 2, 30), (
            name,
            _status(cluster["web"][name]),
        )


def test_a_peer_with_a_certificate_of_another_ca_does_not_join(cluster):
    assert wait_for(lambda: _peers(cluster["web"]["am1"]) == 2, 30)
    cluster["start"]("rogue")
    assert wait_for(lambda: _peers(cluster["web"]["rogue"]) == 1, 30), "the rogue Alertmanager did not start"
    # Long enough for several join attempts (--cluster.peer-timeout 1s, reconnects every few seconds).
    assert not wait_for(lambda: _peers(cluster["web"]["rogue"]) > 1 or _peers(cluster["web"]["am1"]) > 2, 10)
    assert _peers(cluster["web"]["am1"]) == 2 and _peers(cluster["web"]["am2"]) == 2


def test_the_check_refuses_files_that_make_no_mutual_handshake(cluster, tmp_path):
    config = json.loads((cluster["work"] / "rogue" / "alertmanager-cluster-tls.yml").read_text())
    ca = str(cluster["work"] / "am1" / "tls" / "alertmanager-ca.crt")
    config["tls_server_config"]["client_ca_file"] = config["tls_client_config"]["ca_file"] = ca
    candidate = tmp_path / "cluster-tls.yml"
    candidate.write_text(json.dumps(config))
    script = _role_var("__alertmanager_cluster_tls_check")
    refused = subprocess.run(
        ["python3", "-c", script, str(candidate)], capture_output=True, text=True, timeout=30, check=False
    )
    assert refused.returncode != 0 and "no mutual TLS handshake" in refused.stderr, refused.stderr
    good = cluster["work"] / "am1" / "alertmanager-cluster-tls.yml"
    accepted = subprocess.run(
        ["python3", "-c", script, str(good)], capture_output=True, text=True, timeout=30, check=False
    )
    assert accepted.returncode == 0, accepted.stderr


def test_the_tls_probe_verifies_the_gossip_port(cluster, tmp_path):
    """Prometheus' `<env>-tls` job probes the gossip port with the blackbox exporter's tls_connect module."""
    assert wait_for(lambda: _peers(cluster["web"]["am1"]) == 2, 30)
    ca = str(cluster["work"] / "am1" / "tls" / "alertmanager-ca.crt")
    # The blackbox_exporter role's module (vars/main.yml, __blackbox_exporter_tls_module).
    tls = {"ca_file": ca, "min_version": "TLS12"}
    module = {
        "prober": "tcp",
        "timeout": "5s",
        "tcp": {"preferred_ip_protocol": "ip4", "tls": True, "tls_config": tls},
    }
    (tmp_path / "blackbox.yml").write_text(yaml.safe_dump({"modules": {"tls_connect": module}}))
    port = free_port()
    blackbox = start_quietly(
        [
            str(BLACKBOX),
            f"--config.file={tmp_path / 'blackbox.yml'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ]
    )
    target = f"am1:{cluster['gossip']['am1']}"
    url = f"http://127.0.0.1:{port}/probe?module=tls_connect&target=127.0.0.1:{cluster['gossip']['am1']}"

    def probe() -> str:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return response.read().decode()
        except OSError:
            return ""

    try:
        body = wait_for(lambda: "probe_success 1" in probe() and probe(), 20)
    finally:
        blackbox.terminate()
        blackbox.wait(timeout=20)
    assert body and "probe_success 1" in body, (target, body)
    assert "probe_ssl_earliest_cert_expiry" in body
