"""The roles' systemd units rendered on the controller as their own tasks render them: a role's tasks that
write its units through common's `unit` entry run in check mode with --diff (common_files shows the content
it would write), each case in a play of its own on a host of its own (common's defaults, then the role's
defaults and internals, then the case's inputs, as vars_files: the later wins), all in one ansible-playbook
run. Next to each, the same unit from the template it came from before conduit's unit joined the shared one
(tests/common/data/before/: common's service.j2 and conduit's own conduit.service.j2 as they were)."""

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from controller_helpers import ROOT, ansible_playbook, local_host

BEFORE = ROOT / "tests" / "common" / "data" / "before"
COMMON = {"common", "lookout.stack.common"}
# The one role whose unit had a template of its own, and the expression naming the unit in its loop.
OWN_TEMPLATES = {"conduit": ("conduit.service.j2", "__conduit_unit.name")}
# The facts a role's unit-writing tasks leave for later tasks (conduit: unit.yml, for run_state.yml), shown
# after the run.
FACTS = {"conduit": ["__conduit_units_changed", "__conduit_units_written"]}


@dataclass
class Units:
    """One case's units by path: `before` from the old template, `after` as the role writes them now."""

    before: dict[str, str] = field(default_factory=dict)
    after: dict[str, str] = field(default_factory=dict)
    facts: dict = field(default_factory=dict)


def _load(path: Path):
    return yaml.safe_load(path.read_text()) if path.is_file() else None


def _walk(tasks):
    for task in tasks or []:
        yield task
        for part in ("block", "rescue", "always"):
            yield from _walk(task.get(part))


def _writes_unit(task: dict) -> bool:
    include = task.get("ansible.builtin.include_role") or {}
    return include.get("name") in COMMON and include.get("tasks_from") == "unit"


def _included_file(task: dict) -> str | None:
    include = task.get("ansible.builtin.include_tasks")
    return include.get("file") if isinstance(include, dict) else include


def unit_tasks(role: str) -> list[dict]:
    """The tasks of a role that write its units: its includes of common's unit entry, except in a file the
    role includes once per unit (conduit's unit.yml): then that include, with its loop."""
    tasks_dir = ROOT / "roles" / role / "tasks"
    files = {path.name: list(_walk(_load(path))) for path in sorted(tasks_dir.glob("*.yml"))}
    writers = {name for name, tasks in files.items() if any(_writes_unit(task) for task in tasks)}
    included = {_included_file(task) for tasks in files.values() for task in tasks} - {None}
    found = []
    for name, tasks in files.items():
        for task in tasks:
            if _writes_unit(task) and name not in included:
                found.append(dict(task))
            elif _included_file(task) in writers:
                include = task["ansible.builtin.include_tasks"]
                include = dict(include) if isinstance(include, dict) else {"file": include}
                include["file"] = str(tasks_dir / include["file"])
                found.append({**task, "ansible.builtin.include_tasks": include})
    return found


def _before_task(role: str, task: dict) -> dict:
    """Renders the unit(s) of one writing task with the template of before, in the task's loop."""
    template, name = OWN_TEMPLATES.get(role, ("service.j2", "common_unit_name"))
    before = {
        "name": "Render with the template of before",
        "ansible.builtin.debug": {
            "msg": (
                f"{{{{ {{'path': '/etc/systemd/system/' ~ {name} ~ '.service', "
                f"'content': lookup('ansible.builtin.template', '{BEFORE / template}')}} }}}}"
            )
        },
    }
    for keyword in ("vars", "loop", "loop_control", "when"):
        if keyword in task and not (keyword == "vars" and role in OWN_TEMPLATES):
            before[keyword] = task[keyword]
    return before


def _play(case: str, role: str, inputs_file: Path) -> dict:
    tasks = []
    for task in unit_tasks(role):
        tasks += [_before_task(role, task), task]
    if role in FACTS:
        tasks.append(
            {
                "name": "Show the facts the tasks left",
                "ansible.builtin.debug": {"msg": {fact: f"{{{{ {fact} }}}}" for fact in FACTS[role]}},
            }
        )
    # The role's handlers, as names only: a changed unit notifies its restart.
    handlers = [
        {"name": handler["name"], "ansible.builtin.debug": {"msg": "notified"}}
        for handler in _load(ROOT / "roles" / role / "handlers" / "main.yml") or []
    ]
    vars_files = [
        ROOT / "roles" / "common" / "defaults" / "main.yml",
        ROOT / "roles" / role / "defaults" / "main.yml",
        ROOT / "roles" / role / "vars" / "main.yml",
        inputs_file,
    ]
    return {
        "name": f"Units of {role} ({case})",
        "hosts": case,
        "gather_facts": False,
        "vars_files": [str(path) for path in vars_files if path.is_file()],
        "tasks": tasks,
        "handlers": handlers,
    }


def render_units(cases: dict[str, tuple[str, dict]], workdir: Path) -> dict[str, Units]:
    """Each case ({name: (role, inputs)}) rendered before and after; one run for all."""
    plays = []
    for case, (role, inputs) in cases.items():
        inputs_file = workdir / f"{case}.inputs.yml"
        inputs_file.write_text(yaml.safe_dump(inputs))
        plays.append(_play(case, role, inputs_file))
    playbook = workdir / "units.yml"
    playbook.write_text(yaml.safe_dump(plays, sort_keys=False, width=1000))
    inventory = {"all": {"hosts": {case: local_host() for case in cases}}}
    run = ansible_playbook(playbook, inventory, workdir, "--check", "--diff", json_output=True)
    return _units(run, cases)


def _units(run: subprocess.CompletedProcess, cases: dict) -> dict[str, Units]:
    try:
        report = json.loads(run.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"no JSON report:\n{run.stdout}\n{run.stderr}")
    found = {case: Units() for case in cases}
    for play in report["plays"]:
        for task in play["tasks"]:
            for host, result in task["hosts"].items():
                assert not result.get("failed"), f"{host}: {task['task']['name']}: {json.dumps(result)}"
                for item in result.get("results", [result]):
                    message = item.get("msg")
                    if task["task"]["name"] == "Render with the template of before":
                        found[host].before[message["path"]] = message["content"]
                    elif task["task"]["name"] == "Show the facts the tasks left":
                        found[host].facts = message
                    for diff in item.get("diff") or []:
                        if diff.get("after_header", "").endswith(".service"):
                            found[host].after[diff["after_header"]] = diff["after"]
    assert report["stats"], run.stdout + run.stderr
    for case, units in found.items():
        assert units.after and units.after.keys() == units.before.keys(), (
            f"{case}: rendered {sorted(units.after)}, before {sorted(units.before)}\n{run.stderr}"
        )
    return found


def directives(unit: str) -> dict[tuple[str, str], list[str]]:
    """A unit's settings as systemd reads them: per (section, key), its values in order (the order of a
    repeated key can matter; that of different keys cannot); comments and continuation lines resolved."""
    settings: dict[tuple[str, str], list[str]] = {}
    section = ""
    for line in (raw.strip() for raw in unit.replace("\\\n", " ").splitlines()):
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        settings.setdefault((section, key.strip()), []).append(" ".join(value.split()))
    return settings
