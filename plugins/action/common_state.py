# Copyright: lookout maintainers
# MIT License
"""lookout.stack.common_state's action: the state read as one plain Python script piped to the host.

A module call through Ansible's wrapper (AnsiballZ) makes the host's Python unpack the module's zip and
import Ansible's module code from it, compiled from source on every call: most of what one state read cost
the host (bench/README.md, "one state read without Ansible's module wrapper": 205 ms a read in the host with
the wrapper, 54 without). The read needs none of it: plugins/module_utils/common_state.py imports the
standard library only. So this action sends that file, followed by a call with the task's arguments, to the
host's Python on its standard input, in the one remote call a pipelined module would make, with the same
command line around it (the task's `environment`, become, the interpreter Ansible would use), and returns
the same report.

Where Ansible would not pipe a module (pipelining off, a become method that cannot take it, async) or does
not know the host's Python yet (interpreter discovery still to run), the module runs as any module does
(plugins/modules/common_state.py, the same code behind Ansible's wrapper), so the result never depends on
which way it was read. The arguments are checked on the controller against the module's own specification
first: a wrong one fails the task, naming it, before anything reaches the host.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from ansible.errors import AnsibleActionFail
from ansible.executor.interpreter_discovery import InterpreterDiscoveryRequiredError
from ansible.plugins.action import ActionBase

try:
    # How ansible-core picks the interpreter of a module (ansible_python_interpreter, interpreter_python, a
    # discovered one): the script is run by the same. Private; an ansible-core without it runs the module.
    from ansible.executor.module_common import _get_shebang
except ImportError:
    _get_shebang = None
from ansible_collections.lookout.stack.plugins.module_utils.common_state import ARGUMENT_SPEC, refused

MODULE = "lookout.stack.common_state"
SOURCE = Path(__file__).resolve().parents[1] / "module_utils" / "common_state.py"
# -I: nothing from the host's environment or user site changes what runs; -S: no site-packages (the script
# imports the standard library only); -: the program is standard input.
STANDALONE_FLAGS = ("-I", "-S", "-")


def standalone_script(args: dict) -> bytes:
    """The program the host's Python runs: the read's code, then its entry with the arguments as JSON."""
    return (SOURCE.read_text() + f"\nmain_standalone({json.dumps(json.dumps(args))})\n").encode()


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        problem = refused(args)
        if problem:
            raise AnsibleActionFail(problem)
        interpreter = self._standalone_interpreter(task_vars or {})
        if interpreter is None:
            result.update(self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars))
            return result
        cmd = self._compute_environment_string().strip()
        cmd = " ".join(filter(None, (cmd, shlex.join([*shlex.split(interpreter), *STANDALONE_FLAGS]))))
        res = self._low_level_execute_command(cmd, sudoable=True, in_data=standalone_script(args))
        result.update(self._report(res, interpreter))
        return result

    def _standalone_interpreter(self, task_vars: dict) -> str | None:
        """The host's Python as Ansible would pipe a module to it; None to run the module instead."""
        if _get_shebang is None or self._task.async_val or not self._is_pipelining_enabled("new"):
            return None
        use_vars = task_vars
        if self._task.delegate_to:
            use_vars = task_vars.get("ansible_delegated_vars", {}).get(self._task.delegate_to, task_vars)
        try:
            _, interpreter = _get_shebang(
                "/usr/bin/python",
                use_vars,
                self._templar,
                remote_is_local=bool(getattr(self._connection, "_remote_is_local", False)),
            )
        except InterpreterDiscoveryRequiredError:
            return None
        return interpreter or None

    @staticmethod
    def _report(res: dict, interpreter: str) -> dict:
        """The script's result, or a failure that says what the host's Python answered."""
        lines = [line for line in (res.get("stdout") or "").splitlines() if line.strip()]
        try:
            report = json.loads(lines[-1]) if lines else None
        except ValueError:
            report = None
        if res.get("rc") == 0 and isinstance(report, dict):
            return report
        stderr = (res.get("stderr") or "").strip()
        return {
            "failed": True,
            "msg": f"the state read by {interpreter} on the host failed (rc {res.get('rc')})"
            + (f": {stderr[-2000:]}" if stderr else ""),
            "rc": res.get("rc"),
            "stdout": res.get("stdout", ""),
            "stderr": res.get("stderr", ""),
        }
