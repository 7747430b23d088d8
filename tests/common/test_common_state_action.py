"""lookout.stack.common_state through ansible-playbook: its action pipes the read to the host's Python as a
plain script where Ansible would pipe a module, runs the module through Ansible's wrapper where it would not
(pipelining off, the host's Python still to discover), reports the same either way, and refuses a wrong
argument on the controller, naming it, before anything runs on the host.

Which way a read went shows in how the host's Python was started: each host's Python here is a wrapper that
records its arguments (`-I -S -` for the script, the module's file when Ansible copies it there)."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "shared"))
from controller_helpers import ROOT, ansible_playbook, local_host, one_play


def _play(tmp_path: Path) -> Path:
    (tmp_path / "file.conf").write_text("x\n")
    read = {
        "paths": "{{ read_paths }}",
        "users": ["root"],
        "packages": ["dpkg"],
        "services": "{{ read_services | default([]) }}",
        "names": ["127.0.0.1"],
    }
    show = {"ansible.builtin.debug": {"var": "read"}}
    return one_play(tmp_path, [{"lookout.stack.common_state": read, "register": "read"}, show])


def _reads(run) -> dict:
    """Each host's registered result, from the debug task's JSON report."""
    report = json.loads(run.stdout)
    tasks = report["plays"][0]["tasks"]
    return {host: result["read"] for host, result in tasks[1]["hosts"].items()} | {
        host: result for host, result in tasks[0]["hosts"].items() if result.get("failed")
    }


def _recording_python(tmp_path: Path, name: str) -> Path:
    """A Python for the host that appends the arguments it was started with to `<name>.ran`."""
    wrapper = tmp_path / name
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> {wrapper}.ran\nexec {sys.executable} "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def _started(wrapper: Path) -> list[str]:
    ran = Path(f"{wrapper}.ran")
    return ran.read_text().splitlines() if ran.exists() else []


def test_the_script_and_the_module_report_the_same_and_each_runs_where_ansible_would_pipe(tmp_path: Path):
    paths = [str(tmp_path / "file.conf"), str(tmp_path), str(tmp_path / "none")]
    piped, unpiped = _recording_python(tmp_path, "piped"), _recording_python(tmp_path, "unpiped")
    hosts = {
        # Pipelining on (ansible.cfg) and the interpreter known: the script.
        "piped": local_host(read_paths=paths, ansible_python_interpreter=str(piped)),
        # Pipelining off: Ansible would copy a module to the host, so the module is copied and runs.
        "unpiped": local_host(
            read_paths=paths, ansible_python_interpreter=str(unpiped), ansible_pipelining=False
        ),
        # The host's Python still to discover: the module runs, and Ansible discovers it (among the system's
        # own, not whatever `python3` comes first on this machine's PATH).
        "discover": local_host(
            read_paths=paths,
            ansible_python_interpreter="auto_silent",
            ansible_interpreter_python_fallback=["/usr/bin/python3"],
        ),
    }
    run = ansible_playbook(_play(tmp_path), {"all": {"hosts": hosts}}, tmp_path, json_output=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    reads = _reads(run)
    assert _started(piped) == ["-I -S -"], "the piped host did not run the script, once"
    assert [line.rsplit("/", 1)[-1] for line in _started(unpiped)] == ["AnsiballZ_common_state.py"]
    assert reads["discover"]["ansible_facts"]["discovered_interpreter_python"]
    for read in reads.values():
        assert read["changed"] is False
    script, module = reads["piped"]["host"], reads["unpiped"]["host"]
    assert script == module
    assert script["files"][paths[0]]["type"] == "file"
    assert script["files"][paths[2]] == {"type": "absent"}
    assert script["users"]["root"]["home"] == "/root"
    assert script["addresses"] == {"127.0.0.1": ["127.0.0.1"]}
    discovered = dict(reads["discover"]["host"])
    assert (
        discovered.pop("platform")["executable"]
        == reads["discover"]["ansible_facts"]["discovered_interpreter_python"]
    )
    assert discovered == {key: value for key, value in script.items() if key != "platform"}


def test_a_wrong_argument_fails_on_the_controller_naming_it_and_a_failing_python_is_named(tmp_path: Path):
    refused, accepted = _recording_python(tmp_path, "refused"), _recording_python(tmp_path, "accepted")
    hosts = {
        "relative": local_host(read_paths=["etc/x.conf"]),
        "not_a_list": local_host(read_paths=[], read_services={"x": 1}),
        # A Python that does not exist on the host: the failure names it and the command's answer.
        "no_python": local_host(read_paths=[], ansible_python_interpreter=str(tmp_path / "no" / "python3")),
        # Python that records being started: never for a refused argument, and once for a good one.
        "refused_quietly": local_host(read_paths=["x"], ansible_python_interpreter=str(refused)),
        "accepted": local_host(read_paths=["/"], ansible_python_interpreter=str(accepted)),
    }
    run = ansible_playbook(_play(tmp_path), {"all": {"hosts": hosts}}, tmp_path, json_output=True)
    reads = _reads(run)
    failed = {host: " ".join(read["msg"].split()) for host, read in reads.items() if read.get("failed")}
    assert set(failed) == set(hosts) - {"accepted"}, run.stdout[-3000:]
    assert "paths: 'etc/x.conf' is not an absolute path" in failed["relative"]
    assert "services" in failed["not_a_list"]
    assert (
        f"the state read by {tmp_path / 'no' / 'python3'} on the host failed (rc 127)" in failed["no_python"]
    )
    assert "paths: 'x' is not an absolute path" in failed["refused_quietly"]
    assert reads["accepted"]["host"]["files"]["/"]["type"] == "directory"
    assert _started(accepted) == ["-I -S -"], "the recording Python was not started for a good argument"
    assert _started(refused) == [], "the host's Python was started for a refused argument"


def test_an_ansible_core_without_its_interpreter_choice_runs_the_module(monkeypatch):
    """The script runs with the interpreter ansible-core would give a module (module_common._get_shebang, a
    private function): where an ansible-core has no such function, every read goes to the module."""
    import importlib
    from types import SimpleNamespace

    from ansible.executor import module_common

    sys.path.insert(0, str(ROOT / "collections"))
    from ansible_collections.lookout.stack.plugins.action import common_state

    def interpreter() -> str | None:
        action = common_state.ActionModule.__new__(common_state.ActionModule)
        action._task = SimpleNamespace(async_val=0, delegate_to=None)
        action._is_pipelining_enabled = lambda style: True
        action._templar = None
        action._connection = SimpleNamespace()
        return action._standalone_interpreter({"ansible_python_interpreter": "/usr/bin/python3"})

    try:
        monkeypatch.setattr(common_state, "_get_shebang", lambda *a, **k: ("#!/opt/py", "/opt/py"))
        assert interpreter() == "/opt/py"
        monkeypatch.delattr(module_common, "_get_shebang")
        importlib.reload(common_state)
        assert interpreter() is None
    finally:
        monkeypatch.undo()
        importlib.reload(common_state)
