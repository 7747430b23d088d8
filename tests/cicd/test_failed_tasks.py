"""scripts/failed-tasks.py and its use in scripts/molecule-all.sh: a failed scenario's output ends with the
tasks that failed, so that the last lines of a CI log say what failed."""

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location("failed_tasks", ROOT / "scripts" / "failed-tasks.py")
failed_tasks = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(failed_tasks)

FRAME = "\x1b[2m\x1b[31m│\x1b[0m "


def framed(*lines: str) -> str:
    """Lines as molecule prints Ansible's output: coloured, in its frame."""
    return "".join(f"  {FRAME}\x1b[31m{line}\x1b[0m\n" for line in lines)


# A verify run with a rescued failure in the first play, an ignored one in the second, and the failure that
# ended the run (its header and result wrapped by the frame) in the third.
VERIFY_FAILED = (
    "INFO     stack ➜ converge: Executing\n"
    + framed("TASK [Converge]", 'fatal: [web1]: FAILED! => {"changed": false, "msg": "converge trouble"}')
    + "INFO     stack ➜ converge: Executed: Successful\n"
    "INFO     stack ➜ verify: Executing\n"
    + framed(
        "PLAY [A bad input is refused] ***",
        "TASK [Write the bad rules] ***",
        'fatal: [monitor1]: FAILED! => {"changed": false, "msg": "failed to validate"}',
        "TASK [Check that promtool refused the rules] ***",
        "ok: [monitor1]",
        "PLAY [Outages reach Slack] ***",
        "TASK [Stop a unit that may be absent] ***",
        'fatal: [web1]: FAILED! => {"changed": false, "msg": "no such unit"}',
        "...ignoring",
        "PLAY [The monitoring",
        "  pair] ***",
        "TASK [Check the message came once, after the receiver",
        "  recovered] ***",
        'fatal: [load1]: FAILED! => {"assertion": "stack_fired | length == 1", "changed": false,',
        '  "evaluated_to": false, "msg": "[\'[FIRING:1] BackendDown in demo\',',
        "  '[FIRING:1] BackendDown in demo']\"}",
        "PLAY RECAP ***",
        "load1 : ok=12 changed=0 unreachable=0 failed=1",
    )
    + "INFO     stack ➜ verify: Executed: Failed (Ansible return code was 2)\n"
)
# What report() prints of that failure.
MESSAGE = (
    "['[FIRING:1] BackendDown in demo', '[FIRING:1] BackendDown in demo']"
    + " (assertion: stack_fired | length == 1)"
)


def test_the_failure_that_ended_the_action_is_named_with_its_play_host_and_message():
    assert failed_tasks.report(VERIFY_FAILED, last=1, width=600) == [
        "failed action: verify",
        "  PLAY [The monitoring pair]",
        "  TASK [Check the message came once, after the receiver recovered] on load1",
        "    " + MESSAGE,
    ]


def test_ignored_failures_and_other_actions_are_left_out():
    report = "\n".join(failed_tasks.report(VERIFY_FAILED, last=5, width=600))
    assert "failed to validate" not in report  # rescued: the play went on on monitor1
    assert "no such unit" not in report
    assert "converge trouble" not in report


def test_a_long_message_is_cut_and_a_passing_log_gives_nothing():
    lines = failed_tasks.report(VERIFY_FAILED, last=1, width=30)
    assert len(lines[-1]) == len("    ") + 30 and lines[-1].endswith("...")
    passed = VERIFY_FAILED.replace("Executed: Failed (Ansible return code was 2)", "Executed: Successful")
    assert failed_tasks.report(passed, last=2, width=600) == []


def test_molecule_all_prints_the_failed_tasks_last(tmp_path):
    """scripts/molecule-all.sh in a copy of the checkout's layout, with molecule and the cleanup stood in."""
    (tmp_path / "scripts").mkdir()
    for name in ("molecule-all.sh", "failed-tasks.py"):
        shutil.copy(ROOT / "scripts" / name, tmp_path / "scripts" / name)
    cleanup = tmp_path / "scripts" / "cleanup.sh"
    cleanup.write_text("#!/bin/sh\necho '[cleanup] stood in'\n")
    log = tmp_path / "stack.out"
    log.write_text(VERIFY_FAILED)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    molecule = bin_dir / "molecule"
    molecule.write_text(f'#!/bin/sh\n[ "$3" = stack ] || exit 0\ncat {log}\nexit 1\n')
    for script in (cleanup, molecule):
        script.chmod(0o755)
    for scenario in ("default", "stack"):
        (tmp_path / "molecule" / scenario).mkdir(parents=True)
        (tmp_path / "molecule" / scenario / "molecule.yml").write_text("---\n")
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "MOLECULE_LOCK": str(tmp_path / "lock")}
    result = subprocess.run(
        ["bash", str(tmp_path / "scripts" / "molecule-all.sh"), "default", "stack"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    tail = result.stdout.splitlines()[-7:]
    assert tail == [
        "molecule: 1 passed, 1 failed",
        "[molecule] stack failed:",
        "  failed action: verify",
        "    PLAY [The monitoring pair]",
        "    TASK [Check the message came once, after the receiver recovered] on load1",
        "      " + MESSAGE,
        "[cleanup] stood in",
    ], result.stdout
