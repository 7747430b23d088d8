"""Mitogen as lookout turns it on (scripts/mitogen-env.sh; README.md, "Mitogen (optional)"): a playbook of the
shapes lookout's roles and scenarios use (command, copy, template, run_once, async + async_status in a loop)
runs under it on two local-connection hosts, converges and re-runs unchanged, and its modules really ran in
Mitogen's interpreter; without the package the script says what to install."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from controller_helpers import ROOT, ansible_playbook, local_host, outcomes

MITOGEN_ENV = ROOT / "scripts" / "mitogen-env.sh"
PIN = next(
    line.split("==", 1)[1].strip()
    for line in (ROOT / "requirements-mitogen.txt").read_text().splitlines()
    if line.startswith("mitogen==")
)

PLAY = """
- name: The shapes lookout's plays use, under Mitogen
  hosts: all
  gather_facts: false
  vars:
    out: "{{ lookup('ansible.builtin.env', 'MITOGEN_TEST_OUT') }}"
  tasks:
    # A module's command is started by the module's process: Ansible's AnsiballZ_command.py, or under
    # Mitogen its persistent interpreter, which names itself `<python>(mitogen:<user>@<host>:<pid>)`.
    - name: Read which process runs the module
      ansible.builtin.shell: tr '\\0' ' ' </proc/$PPID/cmdline
      register: mitogen_parent
      changed_when: false

    - name: Write a file from content
      ansible.builtin.copy:
        content: "{{ inventory_hostname }}\\n"
        dest: "{{ out }}/{{ inventory_hostname }}.txt"
        mode: "0640"

    - name: Write a file from a template
      ansible.builtin.template:
        src: probe.j2
        dest: "{{ out }}/{{ inventory_hostname }}.conf"
        mode: "0600"

    - name: Once for the play
      ansible.builtin.shell: echo {{ inventory_hostname }} >> {{ out }}/once
      run_once: true
      register: mitogen_once
      changed_when: false

    - name: Start two commands in the background
      ansible.builtin.command: sh -c 'sleep 1; echo {{ item }}'
      async: 120
      poll: 0
      loop: [first, second]
      register: mitogen_started
      changed_when: false

    - name: Wait for both
      ansible.builtin.async_status:
        jid: "{{ item.ansible_job_id }}"
      loop: "{{ mitogen_started.results }}"
      loop_control:
        label: "{{ item.item }}"
      register: mitogen_done
      until: mitogen_done.finished
      retries: 120
      delay: 1
      changed_when: false
      failed_when: not mitogen_done.finished or mitogen_done.rc != 0

    - name: Show run_once's result on every host
      ansible.builtin.debug:
        msg: "{{ mitogen_once.rc }}"

    - name: Show the background commands' output
      ansible.builtin.debug:
        msg: "{{ mitogen_done.results | map(attribute='stdout') | list }}"
"""


def mitogen_exports() -> dict[str, str]:
    """What `eval "$(scripts/mitogen-env.sh)"` sets, for the Python that runs these tests."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_STRATEGY")}
    shell = 'eval "$("$0")" && printf "%s\\0%s" "$ANSIBLE_STRATEGY_PLUGINS" "$ANSIBLE_STRATEGY"'
    run = subprocess.run(
        ["bash", "-c", shell, str(MITOGEN_ENV)],
        env={**env, "LOOKOUT_PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    plugins, strategy = run.stdout.split("\0")
    return {"ANSIBLE_STRATEGY_PLUGINS": plugins, "ANSIBLE_STRATEGY": strategy}


def task_results(run: subprocess.CompletedProcess) -> dict[str, dict[str, dict]]:
    """Task name -> host -> result, from a run's JSON report (which may list a task once per host)."""
    results: dict[str, dict[str, dict]] = {}
    for play in json.loads(run.stdout)["plays"]:
        for task in play["tasks"]:
            results.setdefault(task["task"]["name"], {}).update(task["hosts"])
    return results


def test_playbook_runs_under_mitogen(tmp_path):
    if importlib.util.find_spec("ansible_mitogen") is None:
        pytest.skip(f"mitogen is not installed in {sys.executable}: pip install -r requirements-mitogen.txt")
    exports = mitogen_exports()
    assert exports["ANSIBLE_STRATEGY"] == "mitogen_linear"
    assert (Path(exports["ANSIBLE_STRATEGY_PLUGINS"]) / "mitogen_linear.py").is_file()

    out = tmp_path / "out"
    out.mkdir()
    play = tmp_path / "play.yml"
    play.write_text(PLAY)
    (tmp_path / "probe.j2").write_text("host = {{ inventory_hostname }}\n")
    inventory = {"all": {"hosts": {"h1": local_host(), "h2": local_host()}}}
    env = {
        **exports,
        "MITOGEN_TEST_OUT": str(out),
        "ANSIBLE_REMOTE_TEMP": str(tmp_path / ".remote-tmp"),
        "ANSIBLE_ASYNC_DIR": str(tmp_path / ".async"),
    }

    converge = ansible_playbook(play, inventory, tmp_path, json_output=True, extra_env=env)
    first = outcomes(converge)
    assert set(first) == {"h1", "h2"}, converge.stderr
    for host, outcome in first.items():
        assert not outcome.failures, (host, outcome.failure, converge.stderr)
        assert outcome.changed == 2, (host, outcome)  # the two files

    results = task_results(converge)
    for host in ("h1", "h2"):
        parent = results["Read which process runs the module"][host]["stdout"]
        assert "(mitogen:" in parent, f"{host}'s module did not run under Mitogen but under: {parent}"
        assert results["Show run_once's result on every host"][host]["msg"] == 0, host
        assert results["Show the background commands' output"][host]["msg"] == ["first", "second"], host
        assert (out / f"{host}.txt").read_text() == f"{host}\n"
        assert (out / f"{host}.conf").read_text() == f"host = {host}\n"
        assert oct((out / f"{host}.conf").stat().st_mode & 0o777) == "0o600"
    # ansible-core's word on third-party strategies, quoted in the README's caveat.
    assert "strategy plugins not included in ansible.builtin are deprecated" in " ".join(
        converge.stderr.split()
    ), converge.stderr

    rerun = ansible_playbook(play, inventory, tmp_path, json_output=True, extra_env=env)
    for host, outcome in outcomes(rerun).items():
        assert (outcome.changed, outcome.failures) == (0, ()), (host, outcome, rerun.stderr)
    assert (out / "once").read_text() == "h1\nh1\n"  # once per run, on the play's first host


def test_missing_package_is_named(tmp_path):
    """The venv's own Python started without its site-packages (-I -S): a real interpreter that lacks the
    package. The script fails and says what to install."""
    python = tmp_path / "python-without-site-packages"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" -I -S "$@"\n')
    python.chmod(0o755)
    lacks = subprocess.run([python, "-c", "import ansible_mitogen"], capture_output=True, check=False)
    assert lacks.returncode != 0, "the stand-in Python imports ansible_mitogen"
    run = subprocess.run(
        [MITOGEN_ENV],
        env={**os.environ, "LOOKOUT_PYTHON": str(python)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 2, run
    assert run.stdout == ""  # nothing for `eval` to pick up
    assert f"mitogen=={PIN}" in run.stderr, run.stderr
    assert "ansible_mitogen" in run.stderr, run.stderr
    assert str(python) in run.stderr, run.stderr


def test_runs_one_command_with_the_exports():
    if importlib.util.find_spec("ansible_mitogen") is None:
        pytest.skip(f"mitogen is not installed in {sys.executable}: pip install -r requirements-mitogen.txt")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_STRATEGY")}
    run = subprocess.run(
        [MITOGEN_ENV, "env"],
        env={**env, "LOOKOUT_PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "ANSIBLE_STRATEGY=mitogen_linear" in run.stdout.splitlines()
    assert mitogen_exports()["ANSIBLE_STRATEGY_PLUGINS"] in run.stdout
