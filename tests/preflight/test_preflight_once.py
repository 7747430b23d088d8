"""Each role's tasks/main.yml runs its input checks (preflight.yml) unless playbooks/preflight.yml has checked
the role on this host in this run (common_preflight_passed), under every phase's tag.

Every role's real tasks/main.yml runs here on the controller, its phase files replaced by stand-ins that only
say they ran: the role once alone, once after a play that remembers some roles as checked, and once limited
to its run phase's tag.
"""

import json
import shutil

import pytest
from controller_helpers import ansible_playbook, local_host
from role_helpers import ROLES

PHASES = ("preflight", "install", "configure", "run")


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory):
    """A roles directory of every role's tasks/main.yml over stand-in phase files."""
    roles = tmp_path_factory.mktemp("roles")
    for role in ROLES:
        tasks = roles / role.name / "tasks"
        tasks.mkdir(parents=True)
        shutil.copy(role / "tasks" / "main.yml", tasks / "main.yml")
        for phase in PHASES:
            (tasks / f"{phase}.yml").write_text(
                f"- name: Say {phase} ran\n  ansible.builtin.debug:\n    msg: {role.name} {phase}\n"
            )
    return roles


def _play(name: str, checked: list[str] | None) -> str:
    remember = (
        f"  pre_tasks:\n    - name: Remember\n      ansible.builtin.set_fact:\n"
        f"        common_preflight_passed: {json.dumps(checked)}\n"
        if checked is not None
        else ""
    )
    return f"- name: {name}\n  hosts: all\n  gather_facts: false\n{remember}  roles: [{name}]\n"


def _ran(stand_ins, workdir, checked, *extra) -> set[tuple[str, str]]:
    """(role, phase) of every stand-in that ran, every role in a play of its own."""
    playbook = workdir / "main.yml"
    playbook.write_text("".join(_play(role.name, checked) for role in ROLES))
    run = ansible_playbook(
        playbook,
        {"all": {"hosts": {"localhost": local_host()}}},
        workdir,
        *extra,
        json_output=True,
        extra_env={"ANSIBLE_ROLES_PATH": str(stand_ins)},
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    said = [
        result.get("msg", "")
        for play in json.loads(run.stdout)["plays"]
        for task in play["tasks"]
        for result in task["hosts"].values()
    ]
    return {
        tuple(msg.split())
        for msg in said
        if isinstance(msg, str) and msg.split()[-1:] and msg.split()[-1] in PHASES
    }


def _every(phases, roles=ROLES) -> set[tuple[str, str]]:
    return {(role.name, phase) for role in roles for phase in phases if (role.name, phase) != ("k6", "run")}


def test_a_role_alone_checks_its_inputs(stand_ins, tmp_path):
    assert _ran(stand_ins, tmp_path, None) == _every(PHASES)


def test_a_role_checked_this_run_skips_its_checks_and_no_other(stand_ins, tmp_path):
    checked = [role.name for role in ROLES[::2]]
    ran = _ran(stand_ins, tmp_path, checked)
    skipped = [role for role in ROLES if role.name in checked]
    assert ran == _every(PHASES) - _every(["preflight"], skipped)


def test_the_checks_run_under_a_later_phases_tag(stand_ins, tmp_path):
    tags = ",".join(f"{role.name}_run" for role in ROLES)
    ran = _ran(stand_ins, tmp_path, None, "--tags", tags)
    assert ran == _every(["preflight", "run"])
