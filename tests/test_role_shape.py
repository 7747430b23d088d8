"""Every service role has one shape; these tests hold it, so the next role cannot drift (docs/conventions.md,
"Role shape"). tests/test_role_interfaces.py holds the interface (defaults, argument specs, README).

- Phases: tasks/main.yml includes preflight.yml (under every phase's tag), imports install.yml, configure.yml
  and run.yml, each under `<role>_<phase>` (`PHASES_LEFT_OUT` lists a phase a converge leaves out, with why).
- Handlers: `Restart <role>` is defined first and registers `__<role>_restarted`; `Reload <role>` (where
  the role has one) runs only when no restart ran (`__<role>_restarted | default({}) is not changed`);
  neither runs in check mode (`not ansible_check_mode`, the one check-mode idiom of handlers), and neither
  reads a result common registered (it describes whichever service common handled last). Another handler
  acts on something else than the service and says so: `Reload <role> <what>` (PostgreSQL's job units).
  Every handler a role's task notifies exists. Neither handler runs for a service this run has just started:
  the run phase keeps `__<role>_started` through `lookout.stack.service_started`, and both handlers skip on it
  (`STARTED_NOT_SPARED` lists the exceptions, with why).
- Common's registered results (`common_install_result`, `common_files_result`, `common_unit_result`,
  `common_service_result`, ...) are read only by a `set_fact` that directly follows an include of common in
  the same task list: the role keeps what it needs as its own fact (the next entry overwrites the result, and
  a phase run alone by its tag never had it).
- Check mode, one idiom: every call of common's service entry skips it with
  `ansible_check_mode and (__<role>_fresh | default(false) or __<role>_unit_changed | default(false))`, and
  install.yml sets `__<role>_fresh`.
- Common's `unit` entry is included from tasks/configure.yml, or a file it includes, only.
- State, read once: a service role's install.yml starts with common's state entry (`STATE_NOT_YET` lists the
  roles that do not yet, with why); no role task or file reads the report (`__common_host`) itself but those
  `STATE_REPORT_READERS` and `STATE_REPORT_FILES` list, with why.
- Files one way: no role but common writes a file's content with template, copy, lineinfile, blockinfile,
  replace or ini_file; `CONTENT_NOT_THROUGH_COMMON` lists the tasks that do, with why.
- Render from the host's lists: tasks/render.yml gives common's files entry lists from vars/main.yml that a
  host phase gives it too (`RENDER_ONLY` lists a render-only file, with why), and common's web_config entry
  configure.yml's path, users, TLS files and group under configure.yml's `when:`.
- Input names: no `_package_name`, `_archive_local_path` or `_archive_file`; the package a role installs is
  `<role>_package`; the controller-side archive is `<role>_archive_src`; the service's user and group are
  `<role>_system_user` and `<role>_system_group`. A listener's inputs are `<role>_listen_address` and
  `<role>_port` (the main one), `<role>_<what>_listen_address` and `<role>_<what>_port` (a second one); the
  inputs that only look like a listener's, and ports bound to another address input, are listed with why.
"""

import re
from pathlib import Path

import pytest
import yaml
from role_helpers import COMMON, ROLES, ROOT, common_calls, load, tasks
from role_helpers import inputs as role_inputs

RETIRED_SUFFIXES = ("_package_name", "_archive_local_path", "_archive_file")


def _handlers(role: Path) -> list[dict]:
    return load(role / "handlers" / "main.yml") or []


def _common_entry_vars(role: Path, entry: str) -> list[dict]:
    """The vars of each include of one of common's entries."""
    return [task.get("vars") or {} for task in common_calls(role, entry)]


def _module_args(role: Path, *modules: str) -> list[dict]:
    return [task[module] for task in tasks(role) for module in modules if isinstance(task.get(module), dict)]


def _names(value) -> set[str]:
    """The identifiers inside the Jinja expressions of a value (a string or a list of strings)."""
    text = " ".join(value) if isinstance(value, list) else str(value)
    return {
        name for expr in re.findall(r"{{(.*?)}}", text, re.S) for name in re.findall(r"[A-Za-z_]\w*", expr)
    }


def _when(handler: dict) -> str:
    when = handler.get("when", "")
    return " ".join(" and ".join(when).split() if isinstance(when, list) else str(when).split())


def _by_name(role: Path) -> dict[str, dict]:
    return {h["name"]: h for h in _handlers(role)}


def test_roles_exist():
    assert ROLES, "no roles found under roles/"


# --- Phases ------------------------------------------------------------------------------------------------

PHASES = ("preflight", "install", "configure", "run")
# (role, phase) that tasks/main.yml does not import, and why.
PHASES_LEFT_OUT = {
    ("k6", "run"): "a run fires load: playbooks/loadtest.yml includes it (tasks_from: run), a converge never",
}


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_main_imports_the_phases_in_order_each_under_its_tag(role: Path):
    """tasks/main.yml is a table of contents: preflight.yml (included under every phase's tag, skipped where
    playbooks/preflight.yml checked the role this run), install.yml, configure.yml and run.yml, each imported
    under `<role>_<phase>`."""
    r = role.name
    later = [f"{r}_{phase}" for phase in PHASES[1:]]
    expected = [
        (f"{phase}.yml", later if phase == "preflight" else [f"{r}_{phase}"])
        for phase in PHASES
        if (r, phase) not in PHASES_LEFT_OUT
    ]
    main = load(role / "tasks" / "main.yml") or []
    found = [
        (
            task.get("ansible.builtin.import_tasks")
            or task.get("ansible.builtin.include_tasks", {}).get("file"),
            task.get("tags"),
        )
        for task in main
    ]
    assert found == expected, f"{r}: tasks/main.yml imports {found}, not {expected} (docs/conventions.md)"
    # The preflight alone is an include, skipped where playbooks/preflight.yml checked the role this run; its
    # tasks carry the three tags (apply), the later phases are imported.
    first, *later_phases = main
    assert first.get("ansible.builtin.include_tasks") == {
        "file": "preflight.yml",
        "apply": {"tags": later},
    }, f"{r}: tasks/main.yml's first task is not the include of preflight.yml with its tags applied"
    assert first.get("when") == "role_name not in common_preflight_passed | default([])", r
    assert all("ansible.builtin.import_tasks" in task for task in later_phases), r
    missing = [phase for phase in PHASES if not (role / "tasks" / f"{phase}.yml").is_file()]
    assert not missing, f"{r}: no tasks/{missing[0]}.yml"


def test_phases_left_out_are_roles_phases():
    assert {(role.name, phase) for role in ROLES for phase in PHASES} >= set(PHASES_LEFT_OUT)


# --- Handlers ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_handlers_are_restart_and_reload_restart_first(role: Path):
    names = [h.get("name") for h in _handlers(role)]
    if not names:
        return
    restart, reload = f"Restart {role.name}", f"Reload {role.name}"
    assert names[0] == restart, f"{role.name}: the first handler must be '{restart}', not {names[0]!r}"
    assert len(names) == len(set(names)), f"{role.name}: handler names repeat: {names}"
    others = [n for n in names if n not in (restart, reload)]
    wrong = [n for n in others if not (n or "").startswith(f"Reload {role.name} ")]
    assert not wrong, (
        f"{role.name}: handlers are '{restart}', '{reload}' or 'Reload {role.name} <what>': {wrong}"
    )
    if reload in names:
        assert all(names.index(o) > names.index(reload) for o in others), f"{role.name}: {names}"


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_restart_registers_its_result(role: Path):
    restart = _by_name(role).get(f"Restart {role.name}")
    if restart is None:
        return
    assert restart.get("register") == f"__{role.name}_restarted", (
        f"{role.name}: 'Restart {role.name}' registers {restart.get('register')}, not __{role.name}_restarted"
    )


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_reload_runs_only_when_no_restart_ran(role: Path):
    reload = _by_name(role).get(f"Reload {role.name}")
    if reload is None:
        return
    guard = f"__{role.name}_restarted | default({{}}) is not changed"
    assert guard in _when(reload), (
        f"{role.name}: 'Reload {role.name}' needs `when: ... {guard}`: {_when(reload)!r}"
    )


# Roles whose handlers may act on a service this run has just started, with why.
STARTED_NOT_SPARED = {
    "postgresql": "Debian's package creates and starts the cluster; the role configures the running server",
    "firewall": "a oneshot unit: a restart loads the rules again, which a start has just done",
}


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_a_service_just_started_is_spared_its_restart_and_reload(role: Path):
    if not any(common_calls(role, "service")) or role.name in STARTED_NOT_SPARED:
        return
    started = f"__{role.name}_started"
    kept = _fact_values(tasks(role), started)
    assert kept == ["{{ common_service_result | lookout.stack.service_started }}"], (
        f"{role.name}: the run phase keeps {started} from common_service_result through "
        f"lookout.stack.service_started (a start, not only an enable), right after the start: {kept}"
    )
    for name in (f"Restart {role.name}", f"Reload {role.name}"):
        handler = _by_name(role).get(name)
        if handler is not None:
            assert f"not {started} | default(false)" in _when(handler), (
                f"{role.name}: '{name}' must skip a service this run has just started: {_when(handler)!r}"
            )


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_handlers_skip_check_mode_one_way(role: Path):
    for handler in _handlers(role):
        when = _when(handler)
        assert "not ansible_check_mode" in when, (
            f"{role.name}: '{handler['name']}' runs in check mode: {when!r}"
        )
        assert when.count("ansible_check_mode") == when.count("not ansible_check_mode"), (
            f"{role.name}: '{handler['name']}' tests check mode not as `not ansible_check_mode`: {when!r}"
        )


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_handlers_read_no_result_common_registered(role: Path):
    for handler in _handlers(role):
        names = _names(yaml.safe_dump(handler)) | set(re.findall(r"[A-Za-z_]\w*", _when(handler)))
        read = sorted(n for n in names if n.startswith("common_"))
        assert not read, (
            f"{role.name}: '{handler['name']}' reads {read}; guard with a fact the role's run phase sets"
        )


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_every_notified_handler_exists(role: Path):
    notified = set()
    for task in tasks(role):
        notify = task.get("notify", [])
        common_notify = (task.get("vars") or {}).get("common_notify", [])
        for value in (notify, common_notify):
            notified |= {n for n in ([value] if isinstance(value, str) else value) if "{{" not in n}
    missing = sorted(notified - set(_by_name(role)))
    assert not missing, f"{role.name}: tasks notify handlers that do not exist: {missing}"


# --- Input names -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_no_retired_input_suffix(role: Path):
    wrong = sorted(n for n in role_inputs(role) if n.endswith(RETIRED_SUFFIXES))
    assert not wrong, f"{role.name}: inputs named the old way ({', '.join(RETIRED_SUFFIXES)}): {wrong}"


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_installed_package_is_role_package(role: Path):
    """The package names a role installs (common's install_package, apt) come from `<role>_package`."""
    names = [v.get("common_packages", []) for v in _common_entry_vars(role, "install_package")]
    names += [
        a["name"]
        for a in _module_args(role, "ansible.builtin.apt", "apt", "ansible.builtin.package")
        if "name" in a
    ]
    if not names:
        return
    inputs, package = role_inputs(role), f"{role.name}_package"
    used = set().union(*(_names(n) for n in names)) & inputs
    assert package in inputs and package in used, (
        f"{role.name}: the package it installs must be the input {package}"
    )
    extra = sorted(used - {package, f"{role.name}_version"})
    assert not extra, f"{role.name}: package names from inputs other than {package}: {extra}"


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_local_archive_is_role_archive_src(role: Path):
    """A role that downloads an archive takes a controller-side one as `<role>_archive_src`, and hands that
    to common's install_archive."""
    inputs, src = role_inputs(role), f"{role.name}_archive_src"
    if f"{role.name}_archive_url" in inputs:
        assert src in inputs, f"{role.name}: has {role.name}_archive_url, so its local archive input is {src}"
    for entry in _common_entry_vars(role, "install_archive"):
        used = _names(entry.get("common_archive_src", "")) & inputs
        assert used == {src}, f"{role.name}: common_archive_src must be {src}, not {sorted(used)}"


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_service_user_is_role_system_user(role: Path):
    """The user and group a service runs as (common's user and unit entries, a unit template's User= and
    Group=): the inputs `<role>_system_user` and `<role>_system_group`, where they are inputs at all."""
    inputs = role_inputs(role)
    expected = {"user": f"{role.name}_system_user", "group": f"{role.name}_system_group"}
    found: dict[str, set[str]] = {"user": set(), "group": set()}
    for entry, prefix in (("user", "common_"), ("unit", "common_unit_")):
        for entry_vars in _common_entry_vars(role, entry):
            for kind in found:
                found[kind] |= _names(entry_vars.get(prefix + kind, ""))
    for template in (role / "templates").glob("*.j2"):
        for kind, line in re.findall(r"(?m)^(User|Group)=(.*)$", template.read_text()):
            found[kind.lower()] |= _names(line)
    for kind, names in found.items():
        wrong = sorted((names & inputs) - {expected[kind]})
        assert not wrong, f"{role.name}: the service's {kind} input is {expected[kind]}, not {wrong}"
        if names & inputs:
            assert expected[kind] in inputs, f"{role.name}: no input {expected[kind]}"


# --- Listener inputs ---------------------------------------------------------------------------------------

# What makes an input look like a listener's: `listen` in its name, or a name ending in a port or an address.
LISTENER_LIKE = re.compile(r"listen|_port$|_addr$|_address(es)?$")
# A word of the kind of input never names the listener (`alertmanager_web_listen_port`, `grafana_http_addr`).
KIND_WORD = re.compile(r"(^|_)(listen|addr|address|port)(_|$)")

# Inputs that look like a listener's but are not one, and why.
NOT_LISTENERS = {
    "conduit_database_port": "the PostgreSQL port Conduit connects to: a client's target",
    "postgres_exporter_database_port": "the PostgreSQL port the exporter connects to (names its socket file)",
    "prometheus_blackbox_address": "the blackbox exporter Prometheus sends its probes to (host:port)",
    "firewall_ssh_port": "where sshd listens, which the firewall opens; not a listener of the firewall's",
}

# A listener's port whose address input is not `<role>[_<what>]_listen_address`: the address input it binds
# (None: a fixed address, no input), and why.
OTHER_ADDRESS = {
    "haproxy_https_port": (
        "haproxy_listen_address",
        "the public HTTPS port; it and the redirecting HTTP port share the public address, named by protocol",
    ),
    "haproxy_http_port": (
        "haproxy_listen_address",
        "the public HTTP port (redirects), beside haproxy_https_port",
    ),
    "conduit_candidate_port": (
        None,
        "the candidate release, on 127.0.0.1 only: the health gate reaches it there",
    ),
    "postgresql_port": (
        "postgresql_listen_addresses",
        "PostgreSQL's own setting, listen_addresses, a list of addresses, keeps its name",
    ),
}


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_listener_inputs_follow_one_scheme(role: Path):
    """A listener's inputs are `<role>_listen_address` and `<role>_port` (the main one) or
    `<role>_<what>_listen_address` and `<role>_<what>_port` (a second one): each listener has both, and a
    second listener means there is a main one."""
    r = role.name
    names = {n for n in role_inputs(role) if LISTENER_LIKE.search(n)} - set(NOT_LISTENERS)
    other_ports = names & set(OTHER_ADDRESS)
    other_addresses = {OTHER_ADDRESS[port][0] for port in other_ports}
    scheme = re.compile(rf"{r}(?:_(?P<what>[a-z0-9_]+?))?_(?P<kind>listen_address|port)")
    kinds: dict[str, set[str]] = {}  # per listener ("" the main one), the kinds of input it has
    wrong = []
    for name in sorted(names - other_ports):
        found = scheme.fullmatch(name)
        if found and not KIND_WORD.search(found["what"] or ""):
            kinds.setdefault(found["what"] or "", set()).add(found["kind"])
        elif name not in other_addresses:
            wrong.append(name)
    assert not wrong, (
        f"{r}: listener inputs are {r}_listen_address and {r}_port, or {r}_<what>_listen_address and "
        f"{r}_<what>_port (docs/conventions.md, Role shape), not {wrong}"
    )
    for what, found in sorted(kinds.items()):
        listener = f"{r}_{what}" if what else r
        address, port = f"{listener}_listen_address", f"{listener}_port"
        assert "listen_address" in found, f"{r}: {port} has no {address}"
        assert "port" in found or address in other_addresses, f"{r}: {address} has no {port}"
    seconds = sorted(f"{r}_{what}" for what in kinds if what)
    assert not seconds or "" in kinds, f"{r}: second listeners {seconds}, no main one ({r}_listen_address)"


def test_listener_exceptions_are_inputs():
    """The lists above name inputs the roles have: an exception outlives neither a rename nor a removal."""
    inputs = set().union(*(role_inputs(role) for role in ROLES))
    named = set(NOT_LISTENERS) | set(OTHER_ADDRESS) | {a for a, _ in OTHER_ADDRESS.values() if a}
    assert named <= inputs, sorted(named - inputs)


# --- Common's results, the check-mode idiom, the unit's phase ---------------------------------------------

COMMON_RESULT = re.compile(r"\bcommon_\w+_result\b")
TASK_LISTS = ("block", "rescue", "always")


def _task_lists(items) -> list[list[dict]]:
    """A task file's task list and every block's, rescue's and always' list inside it, each in its order."""
    found = [items or []]
    for task in items or []:
        for part in TASK_LISTS:
            if task.get(part):
                found += _task_lists(task[part])
    return found


def _includes_common(task: dict) -> bool:
    include = task.get("ansible.builtin.include_role") or task.get("ansible.builtin.import_role") or {}
    return include.get("name") in COMMON


def _common_entry(task: dict) -> str | None:
    include = task.get("ansible.builtin.include_role") or task.get("ansible.builtin.import_role") or {}
    return include.get("tasks_from")


def _is_set_fact(task: dict) -> bool:
    return "ansible.builtin.set_fact" in task or "set_fact" in task


def _fact_values(items, name: str) -> list:
    """What each set_fact among the tasks gives the fact `name`, in order."""
    facts = [
        task.get("ansible.builtin.set_fact") or task.get("set_fact") for task in items if _is_set_fact(task)
    ]
    return [fact[name] for fact in facts if isinstance(fact, dict) and name in fact]


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_common_results_read_only_right_after_their_include(role: Path):
    wrong = []
    for path in sorted((role / "tasks").glob("*.yml")):
        for items in _task_lists(load(path)):
            for index, task in enumerate(items):
                own = {k: v for k, v in task.items() if k not in TASK_LISTS}
                read = sorted(set(COMMON_RESULT.findall(yaml.safe_dump(own))))
                if read and not (_is_set_fact(task) and index > 0 and _includes_common(items[index - 1])):
                    wrong.append(f"{path.name}: '{task.get('name')}' reads {read}")
    assert not wrong, (
        f"{role.name}: common's results are read only by a set_fact right after the include of common; "
        f"keep a fact of the role's own there and read that: {wrong}"
    )


def _one_line(value) -> str:
    return " ".join(str(value).split())


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_service_skip_is_the_one_check_mode_idiom(role: Path):
    calls = _common_entry_vars(role, "service")
    if not calls:
        return
    r = role.name
    facts = f"__{r}_fresh | default(false) or __{r}_unit_changed | default(false)"
    idiom = f"{{{{ ansible_check_mode and ({facts}) }}}}"
    for entry_vars in calls:
        skip = _one_line(entry_vars.get("common_service_skip", ""))
        assert skip == idiom, f"{r}: common_service_skip must be {idiom!r}, not {skip!r}"
    fresh = _fact_values(load(role / "tasks" / "install.yml") or [], f"__{r}_fresh")
    assert fresh, f"{r}: tasks/install.yml must set __{r}_fresh (the package or binaries were new this run)"


def _included_files(role: Path, name: str) -> set[str]:
    """The task file and the task files it includes or imports, statically (names without a template)."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        if current in seen or not (role / "tasks" / current).is_file():
            continue
        seen.add(current)
        for items in _task_lists(load(role / "tasks" / current)):
            for task in items:
                for module in ("ansible.builtin.include_tasks", "ansible.builtin.import_tasks"):
                    target = task.get(module)
                    target = target.get("file") if isinstance(target, dict) else target
                    if isinstance(target, str) and "{{" not in target:
                        todo.append(target)
    return seen


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_unit_is_written_in_configure(role: Path):
    writing = {
        path.name
        for path in (role / "tasks").glob("*.yml")
        for items in _task_lists(load(path))
        for task in items
        if _includes_common(task) and _common_entry(task) == "unit"
    }
    outside = sorted(writing - _included_files(role, "configure.yml"))
    assert not outside, f"{role.name}: common's unit entry is included from configure.yml only, not {outside}"


# --- Files, one way ----------------------------------------------------------------------------------------

# Modules that write a file's content on the host; a role writes its files through common's `files` entry.
CONTENT_MODULES = (
    "ansible.builtin.template",
    "ansible.builtin.copy",
    "ansible.builtin.lineinfile",
    "ansible.builtin.blockinfile",
    "ansible.builtin.replace",
    "community.general.ini_file",
)
# (role, task) that write content otherwise, and why (docs/conventions.md).
BACKED_UP = "template with backup: true, put back when the gate refuses a release"
CONTENT_NOT_THROUGH_COMMON = {
    ("conduit", "Write the environment file (secrets)"): BACKED_UP,
    ("conduit", "Write the gunicorn configuration"): BACKED_UP,
    ("conduit", "Write the socket unit"): "run_state.yml reads its result with the two above",
    ("conduit", "Restore the previous configuration files"): "puts the two backups back",
    ("conduit", "Record the state verified serving"): "the run's record, written last, not configuration",
    ("grafana", "Copy the grafana package to the host"): "a package file, copied as it is",
    ("k6", "Install the k6 binary supplied on the controller"): "a binary, copied as it is",
    ("postgresql", "Copy the dump aside for the restore"): "a dump, copied on the host as it is",
}


def test_files_are_written_through_common_files():
    found = {
        (role.name, task.get("name")): module
        for role in ROLES
        if role.name not in COMMON
        for task in tasks(role)
        for module in CONTENT_MODULES
        if module in task
    }
    outside = sorted(set(found) - set(CONTENT_NOT_THROUGH_COMMON))
    assert not outside, f"write these through common's files entry (with its validation): {outside}"
    stale = sorted(set(CONTENT_NOT_THROUGH_COMMON) - set(found))
    assert not stale, f"CONTENT_NOT_THROUGH_COMMON names tasks that no longer exist: {stale}"


# --- Render, from the host's lists ------------------------------------------------------------------------

RENDERING = [role for role in ROLES if (role / "tasks" / "render.yml").is_file()]
# (role, task) of a render.yml writing a file the host never gets, and why.
RENDER_ONLY = {
    ("victoriametrics", "Render the command line"): (
        "the flags file is the render's own: the host gets __victoriametrics_command as the unit's ExecStart"
    ),
}
# What a render's web configuration shares with the host's (__<role>_web_config).
WEB_CONFIG_SHARED = (
    "common_web_config_path",
    "common_web_config_users",
    "common_web_config_tls",
    "common_web_config_group",
)


def _entry_calls(role: Path, entry: str) -> list[tuple[str, dict]]:
    """(task file, task) of each include of one of common's entries, those inside blocks included."""
    return [
        (path.name, task)
        for path in sorted((role / "tasks").glob("*.yml"))
        for items in _task_lists(load(path))
        for task in items
        if _includes_common(task) and _common_entry(task) == entry
    ]


@pytest.mark.parametrize("role", RENDERING, ids=lambda p: p.name)
def test_render_writes_the_hosts_lists(role: Path):
    """tasks/render.yml passes common's files entry the lists from vars/main.yml that a host phase passes it,
    and common's web_config entry the host's __<role>_web_config under the host's `when:`."""
    r = role.name
    own = re.compile(rf"__{r}_\w+")
    files = _entry_calls(role, "files")
    on_host = set().union(
        *(
            _names(yaml.safe_dump((t.get("vars") or {}).get("common_files")))
            for f, t in files
            if f != "render.yml"
        )
    )
    rendered = [t for f, t in files if f == "render.yml" and (r, t.get("name")) not in RENDER_ONLY]
    assert rendered, f"{r}: tasks/render.yml writes no file through common's files entry"
    for task in rendered:
        given = (task.get("vars") or {}).get("common_files")
        assert isinstance(given, str), (
            f"{r}: '{task.get('name')}' writes a list of its own, not vars/main.yml's"
        )
        lists = {name for name in _names(given) if own.fullmatch(name)}
        assert lists and lists <= on_host, (
            f"{r}: '{task.get('name')}' renders {sorted(lists)}, of which a host phase writes "
            f"{sorted(on_host & lists)} (one list in vars/main.yml for both, docs/conventions.md)"
        )
    web = _entry_calls(role, "web_config")
    writing = [
        t
        for f, t in web
        if f == "configure.yml" and not (t.get("vars") or {}).get("common_web_config_check_only")
    ]
    for task in (t for f, t in web if f == "render.yml"):
        shared = {key: (task.get("vars") or {}).get(key) for key in WEB_CONFIG_SHARED}
        assert any(
            shared == {key: (host.get("vars") or {}).get(key) for key in WEB_CONFIG_SHARED}
            and _when(task) == _when(host)
            for host in writing
        ), f"{r}: '{task.get('name')}' passes configure.yml's web configuration and `when:`, not {shared}"


def test_render_only_tasks_exist():
    named = {
        (role.name, t.get("name"))
        for role in RENDERING
        for f, t in _entry_calls(role, "files")
        if f == "render.yml"
    }
    assert set(RENDER_ONLY) <= named, sorted(set(RENDER_ONLY) - named)


# --- State, read once -------------------------------------------------------------------------------------

# Service roles that do not read their state yet, and why: their entries make their calls as before.
STATE_NOT_YET = {
    "grafana": "most of a no-op run is its own API and APT tasks, outside common's entries",
    "postgresql": "clusters, roles and databases, outside common's entries",
}


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_state_is_read_first_in_install(role: Path):
    r = role.name
    if not any(common_calls(role, "service", "unit")) or r in STATE_NOT_YET:
        return
    first = (load(role / "tasks" / "install.yml") or [{}])[0]
    assert _common_entry(first) == "state" and _includes_common(first), (
        f"{r}: tasks/install.yml starts with common's state entry (docs/conventions.md, State, read once)"
    )
    assert _one_line((first.get("vars") or {}).get("common_state")) == f"{{{{ __{r}_state }}}}", (
        f"{r}: the state entry is given common_state: '{{{{ __{r}_state }}}}'"
    )
    # Read as text: some vars files carry tags (!unsafe) the safe loader refuses.
    text = (role / "vars" / "main.yml").read_text()
    state = re.search(rf"^__{r}_state:\n((?:  .*\n)+)", text, re.M)
    assert state and re.search(r"^  services: ", state.group(1), re.M), (
        f"{r}: vars/main.yml defines __{r}_state with the services the role starts"
    )


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_no_fact_takes_the_state_reads_name(role: Path):
    """`__<role>_state` is what install.yml gives common's state entry (vars/main.yml). A set_fact of that
    name would win over it for the rest of the run, and the role's next run on the host would hand common
    that fact instead."""
    name = f"__{role.name}_state"
    setting = [
        path.name
        for path in sorted((role / "tasks").glob("*.yml"))
        for items in _task_lists(load(path))
        if _fact_values(items, name)
    ]
    assert not setting, f"{role.name}: a set_fact sets {name}, the state read's input, in {setting}"


# Facts an earlier phase sets (docs/conventions.md, "Common's results, read once"): a later phase reads them
# with `| default(false)`, since `--tags <role>_configure` or `<role>_run` leaves the setting phase out.
LATER_PHASES = {"_fresh": ["configure.yml", "run*.yml"], "_unit_changed": ["run*.yml"]}


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_a_later_phase_reads_an_earlier_phases_fact_with_a_default(role: Path):
    bare = []
    for suffix, patterns in LATER_PHASES.items():
        read = re.compile(rf"__{role.name}{suffix}\b(?!\s*\|\s*default\(false\))")
        for pattern in patterns:
            for path in sorted((role / "tasks").glob(pattern)):
                lines = path.read_text().splitlines()
                bare += [
                    f"{path.name}:{n}" for n, line in enumerate(lines, 1) if read.search(line.split("#")[0])
                ]
    assert not bare, f"{role.name}: an earlier phase's fact read without | default(false) at {bare}"


def test_roles_not_reading_state_are_service_roles():
    service_roles = {role.name for role in ROLES if any(common_calls(role, "service", "unit"))}
    assert set(STATE_NOT_YET) <= service_roles, set(STATE_NOT_YET) - service_roles


# (role, task) that compare with common's report (__common_host) themselves, and why. Every other comparison
# with it, and the forgetting of what a write changed, happens inside common's entries.
MASK = "masks Debian's own unit before the package: no entry of common masks a unit"
SKIPPED_IN_PLACE = (
    "a template kept out of common's files entry (CONTENT_NOT_THROUGH_COMMON), skipped as it would be"
)
STATE_REPORT_READERS = {
    ("alertmanager", "Mask Debian's own alertmanager unit"): MASK,
    ("victoriametrics", "Mask Debian's own victoria-metrics unit"): MASK,
    ("k6", "Install the k6 binary supplied on the controller"): (
        "copies a controller file (copy's src); common's files entry writes content only"
    ),
    ("conduit", "Write the environment file (secrets)"): SKIPPED_IN_PLACE,
    ("conduit", "Write the gunicorn configuration"): SKIPPED_IN_PLACE,
    ("conduit", "Write the socket unit"): SKIPPED_IN_PLACE,
    ("conduit", "Enable and start the socket and the service"): (
        "starts the socket and the service after the switch, outside common's service entry"
    ),
}
# Files other than task files (role-relative) that read the report, and why.
STATE_REPORT_FILES = {
    ("conduit", "vars/main.yml"): (
        "__conduit_reported: the run phase takes the current link, the verified record and the checksums of "
        "files no step wrote from the report (run_state.yml); __conduit_reported_host: the install phase "
        "takes the wheelhouse target and the names' addresses from it (install.yml)"
    ),
}


def test_only_common_reads_its_state_report():
    found = {
        (role.name, task.get("name"))
        for role in ROLES
        for task in tasks(role)
        if "__common_host" in yaml.safe_dump({k: v for k, v in task.items() if k not in TASK_LISTS})
    }
    outside = sorted(found - set(STATE_REPORT_READERS))
    assert not outside, (
        f"tasks reading __common_host outside common: {outside}; compare through common's entries, or list "
        "the task in STATE_REPORT_READERS with why"
    )
    stale = sorted(set(STATE_REPORT_READERS) - found)
    assert not stale, f"STATE_REPORT_READERS names tasks that no longer read __common_host: {stale}"
    files = {
        (role.name, str(path.relative_to(role)))
        for role in ROLES
        for part in ("defaults", "vars", "handlers", "templates")
        for path in (role / part).rglob("*")
        if path.is_file() and "__common_host" in path.read_text()
    }
    assert files == set(STATE_REPORT_FILES), (
        f"role files reading __common_host: {sorted(files)}; listed: {sorted(STATE_REPORT_FILES)}"
    )


# --- Packages, one transaction per play -------------------------------------------------------------------

PLAYBOOKS = sorted(
    [
        ROOT / "site.yml",
        *(ROOT / "playbooks").glob("*.yml"),
        *(ROOT / "bench").glob("*.yml"),
        *(ROOT / "molecule").glob("*/*.yml"),
    ]
)


def _plays_installing_ahead() -> list[tuple[str, dict, list[str]]]:
    """(file, play, roles) of every play whose pre_tasks include common's install_play_packages."""
    found = []
    for path in PLAYBOOKS:
        for play in load(path) or []:
            if not isinstance(play, dict):
                continue
            ahead = [
                task
                for task in play.get("pre_tasks") or []
                if _includes_common(task) and _common_entry(task) == "install_play_packages"
            ]
            if not ahead:
                continue
            listed = [r["role"] if isinstance(r, dict) else r for r in play.get("roles") or []]
            given = (ahead[0].get("vars") or {}).get("common_play_roles")
            names = given if isinstance(given, list) else listed
            found.append((str(path.relative_to(ROOT)), play, [n.split(".")[-1] for n in names]))
    return found


def test_packages_installed_ahead_start_no_service_their_role_would_not():
    """A play installs its roles' packages together, with no service started, only when every one of those
    roles starts its own service in its run phase (its install step passes common_packages_start: false)."""
    plays = _plays_installing_ahead()
    assert {path for path, _, _ in plays} >= {"playbooks/monitoring.yml", "bench/monitoring_bench.yml"}
    for path, play, names in plays:
        assert names, f"{path}: {play.get('name')} installs ahead but lists no roles"
        for name in names:
            calls = list(_common_entry_vars(ROOT / "roles" / name, "install_package"))
            assert calls, f"{path}: {name} installs no package through common's install_package"
            starting = [v for v in calls if v.get("common_packages_start", True) is not False]
            assert not starting, (
                f"{path}: {name}'s package would start its service (no common_packages_start: false); "
                "leave it out of the play's install_play_packages"
            )
