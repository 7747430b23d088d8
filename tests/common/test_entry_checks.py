"""Calls to common's entries (docs/conventions.md, "Calls to common's entries"): every include of common in
roles/ and playbooks/ checks its arguments against common's argument specs when common_check_entries is
true, as every test run sets it, and skips that check (a task per host and call) in an operator's run."""

import json
from pathlib import Path

import yaml
from controller_helpers import ROOT, ansible_playbook, local_host

SWITCH = "{{ common_check_entries | default(false) }}"
TASK_LISTS = ("block", "rescue", "always")


def _tasks(items):
    for task in items or []:
        if not isinstance(task, dict):
            continue
        yield task
        for key in TASK_LISTS:
            yield from _tasks(task.get(key))


def _calls() -> list[tuple[str, dict]]:
    files = sorted(ROOT.glob("roles/*/tasks/*.yml")) + sorted(ROOT.glob("playbooks/*.yml"))
    found = []
    for path in files:
        data = yaml.safe_load(path.read_text()) or []
        plays = [p for p in data if isinstance(p, dict) and ("tasks" in p or "pre_tasks" in p)]
        lists = [p.get(k) for p in plays for k in ("pre_tasks", "tasks", "post_tasks", "handlers")] or [data]
        for tasks in lists:
            for task in _tasks(tasks):
                args = task.get("ansible.builtin.include_role")
                if isinstance(args, dict) and args.get("name") == "common":
                    found.append((f"{path.relative_to(ROOT)}: {task.get('name')}", args))
    return found


def test_every_call_of_common_carries_the_switch():
    calls = _calls()
    assert len(calls) > 100, f"found only {len(calls)} calls: the walk misses some"
    wrong = [where for where, args in calls if args.get("rolespec_validate") != SWITCH]
    assert not wrong, f"include_role of common without rolespec_validate: {SWITCH!r}: {wrong}"


def test_every_test_run_turns_the_checks_on():
    base = yaml.safe_load((ROOT / ".config" / "molecule" / "config.yml").read_text())
    assert base["provisioner"]["inventory"]["group_vars"]["all"]["common_check_entries"] is True
    for scenario in sorted(ROOT.glob("molecule/*/molecule.yml")):
        own = yaml.safe_load(scenario.read_text()) or {}
        all_vars = (((own.get("provisioner") or {}).get("inventory") or {}).get("group_vars") or {}).get(
            "all"
        )
        assert "common_check_entries" not in (all_vars or {}), f"{scenario}: turns the checks off"


PLAY = [
    {
        "hosts": "all",
        "gather_facts": False,
        "tasks": [
            {
                "name": "Call common's renamed entry with a malformed argument",
                "ansible.builtin.include_role": {
                    "name": "common",
                    "tasks_from": "renamed",
                    "rolespec_validate": SWITCH,
                },
                "vars": {"common_renamed_inputs": "not a mapping"},
            }
        ],
    }
]


def _run(tmp_path: Path, *extra: str) -> dict:
    playbook = tmp_path / "call.yml"
    playbook.write_text(yaml.safe_dump(PLAY, sort_keys=False))
    run = ansible_playbook(
        playbook, {"all": {"hosts": {"h": local_host()}}}, tmp_path, *extra, json_output=True
    )
    report = json.loads(run.stdout)
    return {task["task"]["name"]: task["hosts"]["h"] for play in report["plays"] for task in play["tasks"]}


def test_a_test_run_refuses_a_malformed_call_by_the_spec(tmp_path):
    results = _run(tmp_path)
    validation = [
        result
        for name, result in results.items()
        if "Validating arguments against arg spec 'renamed'" in name
    ]
    assert validation and validation[0].get("failed"), results
    assert "common_renamed_inputs" in validation[0]["msg"]


def test_an_operators_run_spends_no_task_on_it(tmp_path):
    results = _run(tmp_path, "-e", json.dumps({"common_check_entries": False}))
    assert not [name for name in results if "Validating arguments" in name], results
    # The entry itself ran (its own task), without the check before it.
    assert "common : Refuse inputs set under a name they no longer have" in results, results
