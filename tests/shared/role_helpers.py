"""What the role-shape tests read of a role: its YAML files, its inputs, its tasks and its calls of common's
entries (tests/test_role_shape.py, tests/test_role_tls_shape.py)."""

from collections.abc import Iterator
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
# Every service role (common is the shared one they call).
ROLES = sorted(p for p in (ROOT / "roles").glob("*") if (p / "tasks").is_dir() and p.name != "common")
COMMON = {"common", "lookout.stack.common"}


def load(path: Path):
    return yaml.safe_load(path.read_text()) if path.is_file() else None


def defaults(role: Path) -> dict:
    return load(role / "defaults" / "main.yml") or {}


def entries(role: Path) -> dict:
    """The role's argument specs, by entry point."""
    return (load(role / "meta" / "argument_specs.yml") or {}).get("argument_specs") or {}


def inputs(role: Path) -> set[str]:
    """Every input the role defaults or declares in any entry point."""
    names = set(defaults(role))
    for entry in entries(role).values():
        names |= set((entry or {}).get("options") or {})
    return names


def tasks(role: Path) -> Iterator[dict]:
    """Every task of the role's task files, those inside blocks included."""

    def walk(items):
        for task in items or []:
            yield task
            for part in ("block", "rescue", "always"):
                yield from walk(task.get(part))

    for path in sorted((role / "tasks").glob("*.yml")):
        yield from walk(load(path))


def common_calls(role: Path, *names: str) -> Iterator[dict]:
    """The role's tasks that include or import one of the named entries of common."""
    for task in tasks(role):
        include = task.get("ansible.builtin.include_role") or task.get("ansible.builtin.import_role") or {}
        if include.get("name") in COMMON and include.get("tasks_from") in names:
            yield task
