"""Conduit's probe (roles/conduit/tasks/install.yml): when conduit_python is not the Python the state read ran
with, the role runs common's state module again with conduit_python as its interpreter, and takes the
wheelhouse target and the names' addresses from that answer. Run here on localhost by ansible-playbook, the
role's own two tasks taken from install.yml, with a conduit_python that is not Ansible's interpreter."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TASKS = (
    "Read conduit_python's version, machine and glibc, and the listen and proxy names' addresses",
    "Remember whether the release is installed, the addresses and the wheelhouse this host needs",
)
OTHER_PYTHON = "/usr/bin/python3"


def install_tasks() -> list[dict]:
    found = {
        task["name"]: task for task in yaml.safe_load((ROOT / "roles/conduit/tasks/install.yml").read_text())
    }
    return [found[name] for name in TASKS]


def play(tmp_path: Path, reported_executable: str) -> dict:
    out = tmp_path / "facts.json"
    playbook = [
        {
            "hosts": "localhost",
            "gather_facts": False,
            "vars": {
                "conduit_python": OTHER_PYTHON,
                "__conduit_resolve_names": ["localhost", "127.0.0.1"],
                "__conduit_reported": {},
                "__conduit_console_script": "/nonexistent/bin/conduit",
                "__conduit_reported_host": {
                    "platform": {
                        "executable": reported_executable,
                        "python": "0.0",
                        "machine": "reported",
                        "glibc": "0",
                    },
                    "addresses": {"localhost": ["reported"], "127.0.0.1": ["reported"]},
                },
            },
            "tasks": [
                *install_tasks(),
                {
                    "name": "Write what the tasks left",
                    "ansible.builtin.copy": {
                        "dest": str(out),
                        "content": "{{ {'target': __conduit_target, 'addresses': __conduit_addresses,"
                        " 'probe': __conduit_probe} | to_json }}",
                        "mode": "0600",
                    },
                },
            ],
        }
    ]
    # Ansible's own interpreter as an inventory's host variable sets it (the role's task variable wins).
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    path = tmp_path / "probe.yml"
    path.write_text(yaml.safe_dump(playbook, sort_keys=False))
    env = dict(
        os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_LOCAL_TEMP=str(tmp_path / ".tmp")
    )
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "-i",
            str(inventory),
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.skipif(
    not Path(OTHER_PYTHON).exists() or os.path.realpath(OTHER_PYTHON) == os.path.realpath(sys.executable),
    reason=f"needs {OTHER_PYTHON}, a Python other than the one running the tests",
)
def test_another_python_is_asked_with_the_same_module(tmp_path: Path):
    facts = play(tmp_path, reported_executable=sys.executable)
    platform = facts["probe"]["host"]["platform"]
    assert platform["executable"] == OTHER_PYTHON, "the module ran with conduit_python as its interpreter"
    version = subprocess.run(
        [OTHER_PYTHON, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert facts["target"]["python"] == version
    assert facts["target"]["machine"] == platform["machine"] != "reported"
    assert (
        facts["target"]["name"]
        == f"cp{version.replace('.', '')}-{platform['machine']}-glibc{platform['glibc']}"
    )
    assert facts["addresses"]["127.0.0.1"] == ["127.0.0.1"]
    assert "127.0.0.1" in facts["addresses"]["localhost"] or "::1" in facts["addresses"]["localhost"]


def test_the_state_reads_answer_is_taken_when_it_ran_with_conduit_python(tmp_path: Path):
    facts = play(tmp_path, reported_executable=OTHER_PYTHON)
    assert facts["probe"].get("skipped") is True
    assert facts["target"]["python"] == "0.0"
    assert facts["addresses"] == {"localhost": ["reported"], "127.0.0.1": ["reported"]}
