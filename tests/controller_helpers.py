"""Helpers every controller-side test folder shares: the repository root, the environments and their knobs,
controller tools, and ansible-playbook run on the controller against a JSON inventory (no hosts)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
ENVIRONMENTS = ("demo", "development", "testing", "production")


def knobs(env: str) -> dict:
    """The environment's knobs, as operators set them in its inventory."""
    return yaml.safe_load((ROOT / "inventories" / env / "group_vars" / "all" / "vars.yml").read_text())


def tool(name: str) -> str:
    found = shutil.which(name, path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if not found:
        pytest.fail(f"{name} not found on this controller; run `make setup`")
    return found


def ansible_playbook(
    playbook: Path, inventory: dict, workdir: Path, *extra: str
) -> subprocess.CompletedProcess:
    inventory_file = workdir / "inventory.json"
    inventory_file.write_text(json.dumps(inventory))
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_ROLES_PATH=str(ROOT / "roles"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_LOCAL_TEMP=str(workdir / ".ansible-tmp"),
        ANSIBLE_CALLBACKS_ENABLED="ansible.builtin.timer",
    )
    return subprocess.run(
        [tool("ansible-playbook"), "-i", str(inventory_file), str(playbook), *extra],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
        cwd=workdir,
    )


def local_host(**hostvars) -> dict:
    return {"ansible_connection": "local", "ansible_python_interpreter": sys.executable, **hostvars}
