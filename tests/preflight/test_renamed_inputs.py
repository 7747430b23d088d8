"""An input still set under the name it had before a release renamed it would be ignored without a word, the
role's default taking its place. Each role that renamed inputs passes them ({old: new}) to common's renamed
entry as the first check of its preflight, which stops the play naming the old and the new name before
anything changes. The renames are read from the roles' preflight files: a role that lists one is tried here.
One ansible-playbook run per role on the controller, one inventory host per case."""

import re
from collections.abc import Callable

import pytest
import yaml
from controller_helpers import PREFLIGHT_REQUIRED, ROOT, Outcome, role_preflight_cases


def _renamed(role: str) -> dict[str, str]:
    tasks = yaml.safe_load((ROOT / "roles" / role / "tasks" / "preflight.yml").read_text()) or []
    for task in tasks:
        include = task.get("ansible.builtin.include_role") or {}
        if include.get("tasks_from") == "renamed":
            return task["vars"]["common_renamed_inputs"]
    return {}


RENAMED = {
    path.parts[-3]: renamed
    for path in sorted((ROOT / "roles").glob("*/tasks/preflight.yml"))
    if (renamed := _renamed(path.parts[-3]))
}
PAIRS = [(role, old, new) for role, renamed in RENAMED.items() for old, new in renamed.items()]


def _defaults(role: str) -> dict:
    return yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text()) or {}


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Callable[[str], dict[str, Outcome]]:
    """A role's outcomes, from one run per role (made when a test first asks): each old name alone, all of
    them at once, and the new names set (each to its default)."""
    runs: dict[str, dict[str, Outcome]] = {}

    def of(role: str) -> dict[str, Outcome]:
        if role not in runs:
            required, defaults = PREFLIGHT_REQUIRED.get(role, {}), _defaults(role)
            renamed = RENAMED[role]
            hosts = {f"old-{old}": {**required, old: defaults[new]} for old, new in renamed.items()}
            hosts["all-old"] = {**required, **{old: defaults[new] for old, new in renamed.items()}}
            hosts["new"] = {**required, **{new: defaults[new] for new in renamed.values()}}
            runs[role] = role_preflight_cases(role, tmp_path_factory.mktemp(role), hosts)
        return runs[role]

    return of


def test_the_renamed_inputs_are_listed():
    """The inputs issue 18 renamed, so that this test cannot pass on an empty list."""
    olds = {old for _, old, _ in PAIRS}
    assert {"alertmanager_package_name", "grafana_archive_file", "conduit_user"} <= olds, olds
    # The listeners' inputs, one scheme (tests/test_role_shape.py).
    listeners = {
        "alertmanager_web_listen_address",
        "alertmanager_web_listen_port",
        "grafana_http_addr",
        "grafana_http_port",
        "haproxy_metrics_address",
    }
    assert listeners <= olds, olds


@pytest.mark.parametrize(("role", "old", "new"), PAIRS, ids=[f"{r}-{o}" for r, o, _ in PAIRS])
def test_new_name_is_an_input_and_old_name_is_gone(role, old, new):
    assert new in _defaults(role), f"{role}: {new} has no default"
    for part in ("defaults/main.yml", "meta/argument_specs.yml", "README.md"):
        text = (ROOT / "roles" / role / part).read_text()
        assert not re.search(rf"\b{old}\b", text), f"{role}: {part} still names {old}"


@pytest.mark.parametrize("role", sorted(RENAMED))
def test_the_check_comes_first(role):
    first = yaml.safe_load((ROOT / "roles" / role / "tasks" / "preflight.yml").read_text())[0]
    assert (first.get("ansible.builtin.include_role") or {}).get("tasks_from") == "renamed", first


@pytest.mark.parametrize(("role", "old", "new"), PAIRS, ids=[f"{r}-{o}" for r, o, _ in PAIRS])
def test_old_name_is_refused_naming_both(results, role, old, new):
    outcome = results(role)[f"old-{old}"]
    assert f"{role}: {old} was renamed to {new}." in outcome.failure, outcome.failure
    assert outcome.changed == 0


@pytest.mark.parametrize("role", sorted(RENAMED))
def test_every_old_name_set_is_named(results, role):
    outcome = results(role)["all-old"]
    for old, new in RENAMED[role].items():
        assert f"{old} was renamed to {new}" in outcome.failure, outcome.failure


@pytest.mark.parametrize("role", sorted(RENAMED))
def test_new_names_pass(results, role):
    outcome = results(role)["new"]
    assert outcome.failures == (), outcome.failure
    assert outcome.changed == 0
