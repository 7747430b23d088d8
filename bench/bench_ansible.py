"""What the benchmarks share to run ansible-playbook on the controller against the repository's roles."""

import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def find_ansible_playbook() -> str:
    """The venv's ansible-playbook (the one beside this Python), else the first on PATH."""
    found = shutil.which(
        "ansible-playbook", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    )
    if not found:
        raise SystemExit("ansible-playbook not found: run `scripts/setup.sh venv`")
    return found


def ansible_environ(run_dir: Path, **extra: str) -> dict:
    """One run's environment: the repository's configuration and roles, temporary files in run_dir."""
    return dict(
        os.environ,
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_ROLES_PATH=str(ROOT / "roles"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_LOCAL_TEMP=str(run_dir / ".ansible-tmp"),
        **extra,
    )
