"""playbooks/preflight.yml checks, on each host, the inputs of exactly the roles site.yml's plays run there.

The preflight play hands each host one looped include over lookout_preflight_roles (a host spends no task
skipping the check of a role it does not run). That list is written by hand beside the plays; this test
reads the plays (playbooks/<group>.yml, as site.yml imports them) and compares, group by group, with the
environment's switches (lookout_*_enabled) on and off.
"""

import itertools

import jinja2
import pytest
import yaml
from controller_helpers import ROOT

PLAYBOOKS = ROOT / "playbooks"
GROUPS = ("frontend", "web", "database", "monitoring", "loadgen", "longterm")
SWITCHES = ("lookout_grafana_enabled", "lookout_longterm_enabled", "lookout_firewall_enabled")


def _env() -> jinja2.Environment:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    env.filters["bool"] = bool
    return env


def _site_plays() -> list[dict]:
    """The plays site.yml imports (preflight's own excepted), in order."""
    plays = []
    for entry in yaml.safe_load((ROOT / "site.yml").read_text()):
        path = ROOT / entry["ansible.builtin.import_playbook"]
        if path.name != "preflight.yml":
            plays += yaml.safe_load(path.read_text())
    return plays


def _roles_run(group: str, switches: dict) -> set[str]:
    """Every role (common excepted) a play of site.yml runs on a host of this group alone, an include's
    `when` evaluated with the switches."""
    roles = set()
    for play in _site_plays():
        if group not in play["hosts"].split(":"):
            continue
        roles |= {entry["role"] for entry in play.get("roles", [])}
        for task in play.get("pre_tasks", []) + play.get("tasks", []):
            include = task.get("ansible.builtin.include_role")
            if include is None or include["name"] == "common":
                continue
            when = task.get("when", "true")
            if _env().compile_expression(when)(**switches, groups={group: ["host"]}):
                roles.add(include["name"])
    return roles


def _preflight_roles(group: str, switches: dict) -> list[str]:
    play = yaml.safe_load((PLAYBOOKS / "preflight.yml").read_text())[0]
    return yaml.safe_load(
        _env().from_string(play["vars"]["lookout_preflight_roles"]).render(group_names=[group], **switches)
    )


CASES = [
    (group, dict(zip(SWITCHES, values, strict=True)))
    for group, values in itertools.product(GROUPS, itertools.product((True, False), repeat=len(SWITCHES)))
]


@pytest.mark.parametrize(
    ("group", "switches"),
    CASES,
    ids=[f"{g}-" + "".join("1" if v else "0" for v in s.values()) for g, s in CASES],
)
def test_a_host_checks_the_roles_its_plays_run(group, switches):
    checked = _preflight_roles(group, switches)
    assert len(checked) == len(set(checked)), checked
    assert set(checked) == _roles_run(group, switches)


def test_every_checked_role_has_a_preflight_entry():
    everything = {name: True for name in SWITCHES}
    for group in GROUPS:
        for role in _preflight_roles(group, everything):
            assert (ROOT / "roles" / role / "tasks" / "preflight.yml").is_file(), role


def test_the_check_is_one_looped_include_over_the_list():
    tasks = yaml.safe_load((PLAYBOOKS / "preflight.yml").read_text())[0]["tasks"]
    includes = [task for task in tasks if "ansible.builtin.include_role" in task]
    # common's renamed-knob check, the one include over the roles (the checks that ask a host held back),
    # then the checks that ask the host, after every other check: the group roles', then the firewall's; last,
    # once everything has passed, the read ahead of the host's roles' state (common's state entry).
    names = [task["ansible.builtin.include_role"]["name"] for task in includes]
    assert names == ["common", "{{ item }}", "{{ item }}", "firewall", "common"]
    assert [task["ansible.builtin.include_role"]["tasks_from"] for task in includes[1:]] == [
        "preflight",
        "preflight_host",
        "preflight_host",
        "state_ahead",
    ]
    assert includes[-1]["vars"] == {"common_state_roles": "{{ lookout_preflight_roles }}"}
    assert includes[1]["loop"] == "{{ lookout_preflight_roles }}"
    assert includes[1]["ansible.builtin.include_role"]["public"] is True
    assert includes[1]["vars"] == {"common_preflight_stage": "controller"}
    assert includes[2]["loop"] == (
        "{{ lookout_preflight_roles | select('in', lookout_preflight_host_roles)"
        " | reject('eq', 'firewall') | list }}"
    )
    assert includes[3]["when"] == "'firewall' in lookout_preflight_roles"
    # After the host's checks: the read ahead, then the record of the checks passed.
    assert tasks.index(includes[2]) == len(tasks) - 4, "the host's checks come after every other check"
    assert tasks.index(includes[3]) == len(tasks) - 3, "the firewall's come after the group roles'"
    assert tasks.index(includes[4]) == len(tasks) - 2, "the read ahead comes after every check"


def test_the_roles_with_checks_that_ask_the_host_are_listed():
    """lookout_preflight_host_roles names exactly the roles with tasks/preflight_host.yml, and each such
    role's preflight.yml imports it last, held back in the preflight play's first pass."""
    (play,) = yaml.safe_load((PLAYBOOKS / "preflight.yml").read_text())
    with_file = sorted(p.parent.parent.name for p in (ROOT / "roles").glob("*/tasks/preflight_host.yml"))
    assert sorted(play["vars"]["lookout_preflight_host_roles"]) == with_file
    for role in with_file:
        last = yaml.safe_load((ROOT / "roles" / role / "tasks" / "preflight.yml").read_text())[-1]
        assert last.get("ansible.builtin.import_tasks") == "preflight_host.yml", role
        assert last.get("when") == "common_preflight_stage | default('all') != 'controller'", role
