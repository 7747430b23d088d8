"""The common web_config entry on the controller against local hosts (each its own file under a temporary
directory): the basic-auth hashes get random salts and stay idempotent.

- a re-run with the same password keeps the hash on the host (no change reported, the file as it was);
- a password change replaces it with a hash of the new password;
- two hosts, or two files of one host, get different hashes of the same password;
- a hash with the password-derived salt of earlier releases is replaced, although the password matches;
- check mode on a host without the file changes nothing and fails nothing.
"""

import subprocess
from pathlib import Path

import bcrypt
import pytest
import yaml
from controller_helpers import ROOT, ansible_playbook, local_host, tool

PLAY = """
- name: Write the web configurations
  hosts: all
  gather_facts: false
  tasks:
    - name: Write each file of the host
      ansible.builtin.include_role:
        name: common
        tasks_from: web_config
      vars:
        common_web_config_path: "{{ item }}"
        common_web_config_users: {lookout: "{{ web_password }}"}
        common_web_config_group: root
        common_web_config_bcrypt_cost: 5
        common_web_config_promtool: "{{ web_promtool }}"
      loop: "{{ web_files }}"
"""
USER = "lookout"


def _run(workdir: Path, password: str, *extra: str, hosts=("mon1", "mon2")) -> subprocess.CompletedProcess:
    play = workdir / "web_config.yml"
    play.write_text(PLAY)
    inventory = {
        "all": {
            "vars": {"web_password": password, "web_promtool": tool("promtool")},
            "hosts": {
                host: local_host(
                    web_files=[str(workdir / host / name) for name in ("prometheus-web.yml", "am-web.yml")]
                )
                for host in hosts
            },
        }
    }
    for host in hosts:
        (workdir / host).mkdir(exist_ok=True)
    run = ansible_playbook(play, inventory, workdir, *extra)
    assert run.returncode == 0, run.stdout + run.stderr
    return run


def _hashes(workdir: Path) -> dict[str, str]:
    return {
        str(path.relative_to(workdir)): yaml.safe_load(path.read_text())["basic_auth_users"][USER]
        for path in sorted(workdir.glob("mon*/*.yml"))
    }


def _changed(run: subprocess.CompletedProcess) -> dict[str, int]:
    """changed=N per host from the recap."""
    recap = run.stdout.rpartition("PLAY RECAP")[2]
    return {
        line.split()[0]: int(line.split("changed=")[1].split()[0])
        for line in recap.splitlines()
        if "changed=" in line
    }


@pytest.fixture(scope="module")
def first(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    workdir = tmp_path_factory.mktemp("web_config")
    _run(workdir, "first-password")
    return workdir, _hashes(workdir)


def test_every_file_gets_its_own_random_salt(first):
    _, hashes = first
    assert len(hashes) == 4
    assert len(set(hashes.values())) == 4, "two hosts or files got the same hash"
    assert len({hashed[7:29] for hashed in hashes.values()}) == 4
    for hashed in hashes.values():
        assert hashed.startswith("$2b$05$")
        assert bcrypt.checkpw(b"first-password", hashed.encode())
        assert not bcrypt.checkpw(b"another-password", hashed.encode())


def test_a_rerun_keeps_the_hashes_and_changes_nothing(first):
    workdir, hashes = first
    run = _run(workdir, "first-password")
    assert _changed(run) == {"mon1": 0, "mon2": 0}
    assert _hashes(workdir) == hashes


def test_check_mode_on_a_host_without_the_file_changes_nothing(tmp_path):
    run = _run(tmp_path, "first-password", "--check", hosts=("mon3",))
    assert not list(tmp_path.glob("mon3/*.yml"))
    assert "failed=0" in run.stdout


def test_a_password_change_replaces_the_hash(tmp_path):
    _run(tmp_path, "first-password")
    before = _hashes(tmp_path)
    run = _run(tmp_path, "second-password")
    after = _hashes(tmp_path)
    assert _changed(run) == {"mon1": 2, "mon2": 2}
    for name, hashed in after.items():
        assert hashed != before[name]
        assert bcrypt.checkpw(b"second-password", hashed.encode())
        assert not bcrypt.checkpw(b"first-password", hashed.encode())
    # And that one is kept from then on.
    _run(tmp_path, "second-password")
    assert _hashes(tmp_path) == after


def test_a_hash_with_the_earlier_derived_salt_is_replaced(tmp_path):
    import sys

    sys.path.insert(0, str(ROOT / "plugins" / "filter"))
    from web_config import legacy_salt

    path = tmp_path / "mon1" / "prometheus-web.yml"
    path.parent.mkdir()
    secret = b"first-password"
    derived = bcrypt.hashpw(secret, legacy_salt(secret, f"mon1:{path}:{USER}", 5)).decode()
    path.write_text(yaml.safe_dump({"basic_auth_users": {USER: derived}}))
    _run(tmp_path, "first-password", hosts=("mon1",))
    replaced = _hashes(tmp_path)["mon1/prometheus-web.yml"]
    assert replaced != derived
    assert bcrypt.checkpw(secret, replaced.encode())
