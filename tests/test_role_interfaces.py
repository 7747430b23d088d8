"""Every role's interface is one thing written in three places; these tests fail when they drift.

- each input in `defaults/main.yml` is declared in `meta/argument_specs.yml` (and the reverse, for
  inputs that are optional), with a type and a description;
- inputs are prefixed with the role's name; internals (`__<role>_*`) never appear in either;
- each input is documented in the role's README.
"""

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
ROLES = sorted(p for p in (ROOT / "roles").glob("*") if (p / "tasks").is_dir())


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text()) or {} if path.exists() else {}


def _specs(role: Path) -> dict:
    return _load(role / "meta" / "argument_specs.yml").get("argument_specs", {}) or {}


def _main_spec(role: Path) -> dict:
    return _specs(role).get("main", {}).get("options", {}) or {}


def _all_options(role: Path) -> dict:
    """Options of every entry point (main and any tasks_from entry an internal role offers)."""
    options = {}
    for entry in _specs(role).values():
        options.update(entry.get("options", {}) or {})
    return options


def test_roles_exist():
    assert ROLES, "no roles found under roles/"


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_every_role_has_the_house_shape(role: Path):
    for part in ("tasks/main.yml", "meta/main.yml", "meta/argument_specs.yml", "README.md"):
        assert (role / part).is_file(), f"{role.name}: missing {part}"


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_defaults_and_argument_specs_agree(role: Path):
    defaults = _load(role / "defaults" / "main.yml")
    spec = _main_spec(role)
    undeclared = sorted(set(defaults) - set(spec))
    assert not undeclared, f"{role.name}: defaults not in argument_specs: {undeclared}"
    for name, option in spec.items():
        assert option.get("type"), f"{role.name}: {name} has no type in argument_specs"
        assert option.get("description"), f"{role.name}: {name} has no description in argument_specs"
        if not option.get("required", False):
            assert name in defaults, f"{role.name}: optional input {name} has no value in defaults/main.yml"


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_inputs_are_role_prefixed(role: Path):
    names = set(_load(role / "defaults" / "main.yml")) | set(_all_options(role))
    wrong = sorted(n for n in names if not n.startswith(f"{role.name}_"))
    assert not wrong, f"{role.name}: inputs must start with '{role.name}_': {wrong}"


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_inputs_are_documented_in_readme(role: Path):
    readme = (role / "README.md").read_text()
    missing = sorted(n for n in _all_options(role) if f"`{n}`" not in readme)
    assert not missing, f"{role.name}: README does not document {missing}"
