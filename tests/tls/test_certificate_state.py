"""common's tls entry on an unchanged host: one comparison (common_certificate_state), and the writing half
only when something differs. Run on the controller (local connection) into a temporary directory:

- a first run writes directories, key, certificate, bundle, CA copy and trust file; a second run changes
  nothing, the comparison reports the host current and the writing half is skipped;
- each way the host can drift (a key's mode, the CA copy's content, a bundle gone, a foreign key, a
  certificate close to its end, a name added, another CA) is reported by the comparison, and the writing
  half puts it right (a changed run), after which the host is current again;
- check mode on a current host changes nothing and skips the writing half too."""

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from controller_helpers import ansible_playbook, local_host

ROLE = "svc"
COMPARE = "Compare the certificate on the host with what it should be (one call)"
WRITE = "Write what differs"


def _inventory(work: Path, **inputs) -> dict:
    tls = work / "etc" / "tls"
    files = {
        "certificate": str(tls / "svc.crt"),
        "key": str(tls / "private" / "svc.key"),
        "ca": str(tls / "svc-ca.crt"),
        "bundle": str(tls / "private" / "svc.pem"),
    }
    hostvars = {
        "tls_files": files,
        "common_certificate_owner": "root",
        "common_certificate_packages": [],
        "common_ca_trust_path": str(work / "trust" / "lookout-state.crt"),
        f"{ROLE}_tls_names": ["svc.example.internal", "10.0.0.5"],
        f"{ROLE}_tls_certificate": "",
        f"{ROLE}_tls_key": "",
        f"{ROLE}_tls_ca_name": "state-test",
        f"{ROLE}_tls_ca_dir": str(work / "ca"),
        f"{ROLE}_tls_ca_certificate": "",
        f"{ROLE}_tls_ca_key": "",
    }
    hostvars |= inputs
    return {"all": {"hosts": {"h": local_host(**hostvars)}}}


PLAY = [
    {
        "name": "The tls entry of a service",
        "hosts": "h",
        "gather_facts": False,
        "tasks": [
            {
                "name": "Trust directory",
                "ansible.builtin.file": {
                    "path": "{{ common_ca_trust_path | dirname }}",
                    "state": "directory",
                },
                "check_mode": False,
                "changed_when": False,
            },
            {
                "name": "Take the certificate",
                "ansible.builtin.include_role": {"name": "common", "tasks_from": "tls"},
                "vars": {
                    "common_tls_role": ROLE,
                    "common_tls_files": "{{ tls_files }}",
                    "common_tls_group": "root",
                },
            },
        ],
    }
]


def _run(work: Path, *extra: str, **inputs) -> dict:
    playbook = work / "play.yml"
    playbook.write_text(yaml.safe_dump(PLAY, sort_keys=False))
    # The trust store is not rebuilt here (update-ca-certificates): the trust file lives in a temporary
    # directory the host's store does not read.
    env = {"PATH": f"{work / 'bin'}:{os.environ['PATH']}"}
    run = ansible_playbook(
        playbook, _inventory(work, **inputs), work, *extra, json_output=True, extra_env=env
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    report = json.loads(run.stdout)
    tasks = {
        task["task"]["name"].removeprefix("common : "): task["hosts"]["h"]
        for task in report["plays"][0]["tasks"]
    }
    compare = tasks.get(COMPARE, {})
    write = next(result for name, result in tasks.items() if name.startswith(WRITE))
    return {
        "changed": report["stats"]["h"]["changed"],
        "current": compare.get("current"),
        "differs": compare.get("differs", []),
        "wrote": not write.get("skipped", False),
    }


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    """One host for the module: every test leaves it current for the default inputs (the order matters)."""
    if os.geteuid() != 0:
        pytest.skip("the entry writes files owned by root: run as root (as CI does)")
    work = tmp_path_factory.mktemp("certificate-state")
    (work / "bin").mkdir()
    stub = work / "bin" / "update-ca-certificates"
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    first = _run(work)
    assert first["changed"] > 0 and first["wrote"], first
    assert first["current"] is False and f"{work}/etc/tls/svc.crt is missing" in first["differs"], first
    return work


CURRENT = {"changed": 0, "current": True, "differs": [], "wrote": False}


def _drift_and_repair(host: Path, expected: list[str], **inputs) -> None:
    drifted = _run(host, **inputs)
    assert drifted["current"] is False and drifted["wrote"] and drifted["changed"] > 0, drifted
    for reason in expected:
        assert any(reason in line for line in drifted["differs"]), (reason, drifted["differs"])
    assert _run(host, **inputs) == CURRENT


def test_an_unchanged_host_costs_one_comparison(host):
    assert _run(host) == CURRENT


def test_check_mode_on_a_current_host_changes_nothing(host):
    assert _run(host, "--check", "--diff") == CURRENT


def test_modes_contents_and_missing_files_are_put_right(host):
    key, copy = host / "etc/tls/private/svc.key", host / "etc/tls/svc-ca.crt"
    key.chmod(0o644)
    copy.write_text("not the CA\n")
    (host / "etc/tls/private/svc.pem").unlink()
    _drift_and_repair(
        host,
        [
            "svc.key is root:root 0644, not root:root 0640",
            "svc-ca.crt has other content",
            "svc.pem is missing",
        ],
    )
    assert (key.stat().st_mode & 0o777) == 0o640
    assert copy.read_text().startswith("-----BEGIN CERTIFICATE-----")


def test_a_foreign_key_is_not_taken_for_the_certificates(host):
    key = host / "etc/tls/private/svc.key"
    subprocess.run(
        ["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(key)],
        check=True,
        capture_output=True,
    )
    key.chmod(0o640)
    _drift_and_repair(host, ["svc.key is not the key of"])


def test_a_certificate_close_to_its_end_is_renewed(host):
    before = (host / "etc/tls/svc.crt").read_text()
    # 365-day certificates renewed within 400 days: the current one is due. The new one (500 days) is
    # current for the default inputs too.
    drifted = _run(host, common_certificate_renew_days=400, common_certificate_validity_days=500)
    assert drifted["current"] is False and drifted["wrote"], drifted
    assert any("within 400 days" in line for line in drifted["differs"]), drifted["differs"]
    assert (host / "etc/tls/svc.crt").read_text() != before
    assert _run(host) == CURRENT


def test_a_new_name_is_signed_again(host):
    names = ["svc.example.internal", "10.0.0.5", "svc2.example.internal"]
    _drift_and_repair(host, ["svc.crt names"], **{f"{ROLE}_tls_names": names})
    text = subprocess.run(
        ["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", str(host / "etc/tls/svc.crt")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "DNS:svc2.example.internal" in text and "IP Address:10.0.0.5" in text, text
    back = _run(host)
    assert back["wrote"] and any("svc.crt names" in line for line in back["differs"]), back


def test_a_certificate_of_another_ca_is_signed_again(host):
    _drift_and_repair(
        host, ["svc.crt is not signed by the CA"], **{f"{ROLE}_tls_ca_dir": str(host / "other-ca")}
    )
    back = _run(host)
    assert back["wrote"] and any("not signed by the CA" in line for line in back["differs"]), back
    assert _run(host) == CURRENT
