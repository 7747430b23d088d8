"""Helpers of the alertmanager tests: amtool, ansible-playbook on the controller, rendered configurations.

The role's `render` entry point runs through ansible-playbook on the controller (no hosts), fed by the
same wiring operators use (`group_vars/all/alertmanager.yml`) and by each environment's knobs from
`inventories/<env>/group_vars/all/vars.yml` (secrets are not needed to render).
"""

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENTS = ("demo", "development", "testing", "production")


@dataclass(frozen=True)
class Rendered:
    env: str
    knobs: dict
    directory: Path

    @property
    def channels(self) -> dict:
        return self.knobs["lookout_slack_channels"]

    @property
    def config_file(self) -> Path:
        return self.directory / "alertmanager.yml"

    @property
    def config(self) -> dict:
        return yaml.safe_load(self.config_file.read_text())

    @property
    def template_glob(self) -> str:
        return str(self.directory / "templates" / "*.tmpl")


def knobs(env: str) -> dict:
    """The environment's knobs, as operators set them in its inventory."""
    return yaml.safe_load((ROOT / "inventories" / env / "group_vars" / "all" / "vars.yml").read_text())


def _tool(name: str) -> str:
    found = shutil.which(name, path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if not found:
        pytest.fail(f"{name} not found on this controller; run `make setup`")
    return found


def amtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([_tool("amtool"), *args], capture_output=True, text=True, timeout=30, check=False)


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
    )
    return subprocess.run(
        [_tool("ansible-playbook"), "-i", str(inventory_file), str(playbook), *extra],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
        cwd=workdir,
    )


def local_host(**hostvars) -> dict:
    return {"ansible_connection": "local", "ansible_python_interpreter": sys.executable, **hostvars}
