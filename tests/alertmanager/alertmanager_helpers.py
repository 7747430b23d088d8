"""Helpers of the alertmanager tests: amtool, ansible-playbook on the controller, rendered configurations.

The role's `render` entry point runs through ansible-playbook on the controller (no hosts), fed by the
same wiring operators use (`group_vars/all/alertmanager.yml`) and by each environment's knobs from
`inventories/<env>/group_vars/all/vars.yml` (secrets are not needed to render).
"""

import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml
from controller_helpers import tool

# Stands in for each environment's vault_heartbeat_url; the rendered files must never contain it.
HEARTBEAT_URL = "https://heartbeat.example.org/ping/secret-token"
# A rendering of production without a heartbeat URL (vault_heartbeat_url: "").
NO_HEARTBEAT = "production-no-heartbeat"


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


def amtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([tool("amtool"), *args], capture_output=True, text=True, timeout=30, check=False)
