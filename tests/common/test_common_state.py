"""lookout.stack.common_state, run directly as Ansible runs a module, and the filters that compare its report
on the controller (plugins/filter/state.py): what the report says of files, directories, links and absent
paths, of users, of packages and units the host has no dpkg or systemd for; and that each filter answers
True only for what the report shows exactly as common's entries would make it."""

import hashlib
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "plugins" / "modules" / "common_state.py"
COLLECTIONS = ROOT / "collections"
sys.path.insert(0, str(COLLECTIONS))
from ansible_collections.lookout.stack.plugins.action.common_state import (  # noqa: E402
    STANDALONE_FLAGS,
    standalone_script,
)

sys.path.insert(0, str(ROOT / "plugins" / "filter"))
import state  # noqa: E402  (plugins/filter/state.py)


def _run_module(tmp_path: Path, env: dict | None, params: dict) -> subprocess.CompletedProcess:
    """The module as Ansible runs it: its file with the arguments' file (the collection on the path)."""
    args = tmp_path / "args.json"
    args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {**params, "_ansible_check_mode": True}}))
    env = {**(os.environ if env is None else env), "PYTHONPATH": str(COLLECTIONS)}
    return subprocess.run(
        [sys.executable, str(MODULE), str(args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def _run_script(tmp_path: Path, env: dict | None, params: dict) -> subprocess.CompletedProcess:
    """The script the action pipes to the host's Python, run as the action runs it (-I -S -)."""
    return subprocess.run(
        [sys.executable, *STANDALONE_FLAGS],
        input=standalone_script(params).decode(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


@pytest.fixture(params=["module", "script"])
def run(request):
    """The read both ways it reaches a host: each test runs twice, and both must report the same."""
    way = {"module": _run_module, "script": _run_script}[request.param]

    def read(tmp_path: Path, env: dict | None = None, **params) -> dict:
        done = way(tmp_path, env, params)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    return read


def test_paths_report_type_mode_owner_and_sha1_and_change_nothing(run, tmp_path: Path):
    work = tmp_path / "work"
    (work / "conf.d").mkdir(parents=True)
    conf = work / "conf.d" / "a.yml"
    conf.write_text("a: 1\n")
    conf.chmod(0o640)
    (work / "link").symlink_to(conf)
    before = sorted((p.name, p.stat().st_mode) for p in work.rglob("*"))
    result = run(tmp_path, paths=[str(conf), str(work / "conf.d"), str(work / "link"), str(work / "none")])
    assert result["changed"] is False, result
    files = result["host"]["files"]
    owner = __import__("pwd").getpwuid(os.geteuid()).pw_name
    assert files[str(conf)] == {
        "type": "file",
        "mode": "0640",
        "owner": owner,
        "group": __import__("grp").getgrgid(os.getegid()).gr_name,
        "sha1": hashlib.sha1(b"a: 1\n").hexdigest(),
    }
    assert files[str(work / "conf.d")]["type"] == "directory"
    assert files[str(work / "link")]["type"] == "link"
    # A link's target as it resolves (stat's lnk_source), through a relative link and a linked directory.
    assert files[str(work / "link")]["target"] == str(conf)
    (work / "dir-link").symlink_to("conf.d")
    (work / "relative").symlink_to("dir-link/a.yml")
    assert run(tmp_path, paths=[str(work / "relative")])["host"]["files"][str(work / "relative")][
        "target"
    ] == str(conf)
    before = sorted((p.name, p.stat().st_mode) for p in work.rglob("*"))
    assert files[str(work / "none")] == {"type": "absent"}
    assert sorted((p.name, p.stat().st_mode) for p in work.rglob("*")) == before


def test_users_packages_and_units_unknown_without_dpkg_or_systemd(run, tmp_path: Path):
    # A PATH with neither dpkg-query nor systemctl: the report says unknown, which no filter takes as in
    # place.
    env = {"PATH": str(tmp_path / "empty"), "HOME": str(tmp_path)}
    result = run(tmp_path, env=env, users=["root", "no-such-user-x"], packages=["dpkg"], services=["ssh"])
    host = result["host"]
    assert host["users"]["root"]["home"] == "/root"
    assert host["users"]["no-such-user-x"] is None
    assert host["packages"] == {"dpkg": "unknown"}
    assert host["services"] == {"ssh": {"enabled": "unknown", "active": "unknown", "reload": True}}
    assert not state.packages_in_place(host, ["dpkg"])
    assert not state.service_in_place(host, "ssh")


def test_units_read_with_one_systemctl_call(run, tmp_path: Path):
    # A stand-in systemctl that answers as systemd does for two units, one of them masked; it logs its calls.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls"
    fake = bin_dir / "systemctl"
    fake.write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> {log}\n'
        "printf 'Id=a.service\\nLoadState=loaded\\nUnitFileState=enabled\\nActiveState=active\\n"
        "NeedDaemonReload=no\\n\\nId=b.service\\nLoadState=masked\\nUnitFileState=masked\\n"
        "ActiveState=inactive\\nNeedDaemonReload=no\\n'\n"
    )
    fake.chmod(0o755)
    result = run(tmp_path, env={"PATH": str(bin_dir), "HOME": str(tmp_path)}, services=["a", "b"])
    services = result["host"]["services"]
    assert services["a"] == {"enabled": "enabled", "active": "active", "reload": False}
    assert services["b"]["enabled"] == "masked"
    assert log.read_text().splitlines() == [
        "show --property=Id,LoadState,UnitFileState,ActiveState,NeedDaemonReload -- a.service b.service"
    ]
    assert state.service_in_place(result["host"], "a")
    assert not state.service_in_place(result["host"], "b")
    assert state.service_masked(result["host"], "b")
    assert not state.service_masked(result["host"], "a")


HOST = {
    "files": {
        "/etc/x/x.yml": {
            "type": "file",
            "mode": "0640",
            "owner": "root",
            "group": "x",
            "sha1": hashlib.sha1(b"a: 1\n").hexdigest(),
        },
        "/etc/x": {"type": "directory", "mode": "0755", "owner": "root", "group": "root"},
        "/etc/x/old.yml": {"type": "absent"},
    },
    "users": {"x": {"group": "x", "home": "/nonexistent", "shell": "/usr/sbin/nologin"}},
    "packages": {"x": "installed", "y": "not-installed"},
    "services": {"x": {"enabled": "enabled", "active": "active", "reload": False}},
}
WANTED = [
    {"path": "/etc/x", "state": "directory"},
    {"path": "/etc/x/x.yml", "content": "a: 1\n", "group": "x", "mode": "0640", "validate": "check %s"},
    {"path": "/etc/x/old.yml", "state": "absent"},
]


def test_files_in_place_only_when_every_entry_matches():
    assert state.files_in_place(WANTED, HOST)
    assert not state.files_in_place([], HOST), "an empty list asks nothing: the entry's own call decides"
    differs = [
        {**WANTED[1], "content": "a: 2\n"},
        {**WANTED[1], "mode": "0644"},
        {**WANTED[1], "group": "root"},
        {**WANTED[1], "owner": "x"},
        {**WANTED[0], "mode": "0750"},
        {**WANTED[2], "path": "/etc/x/x.yml"},
        {"path": "/etc/x/x.yml", "state": "directory"},
        {"path": "/etc/x/unreported.yml", "state": "absent"},
    ]
    for entry in differs:
        assert not state.files_in_place([*WANTED, entry], HOST), entry
    # force=false keeps whatever content is there: only the attributes count.
    assert state.files_in_place([{**WANTED[1], "content": "other", "force": False}], HOST)


def test_users_packages_services_and_forgetting():
    assert state.user_in_place(HOST, "x", "x", "/nonexistent")
    assert not state.user_in_place(HOST, "x", "x", "/var/lib/x")
    assert not state.user_in_place(HOST, "x", "y", "/nonexistent")
    assert not state.user_in_place(HOST, "z", "z", "/nonexistent")
    assert state.packages_in_place(HOST, ["x"])
    assert not state.packages_in_place(HOST, ["x", "y"])
    assert not state.packages_in_place(HOST, ["x", "z"])
    assert state.service_in_place(HOST, "x")
    for found in ({"active": "failed"}, {"enabled": "disabled"}, {"reload": True}):
        changed = {**HOST, "services": {"x": {**HOST["services"]["x"], **found}}}
        assert not state.service_in_place(changed, "x"), found
    forgot = state.state_forget(HOST, ["/etc/x/x.yml"])
    assert not state.files_in_place(WANTED, forgot)
    assert state.files_in_place(WANTED[:1], forgot)
    assert state.state_forget(HOST, True) == {}
    assert not state.files_in_place(WANTED, {})


def test_a_report_that_is_not_a_dict_is_refused():
    with pytest.raises(AnsibleFilterError, match="common_state's report"):
        state.files_in_place(WANTED, "not a report")


def test_a_copied_file_is_compared_by_its_source_on_the_controller(tmp_path: Path):
    binary = tmp_path / "node_exporter"
    binary.write_bytes(b"\x7fELF binary")
    host = {
        "files": {
            "/usr/local/bin/node_exporter": {
                "type": "file",
                "mode": "0755",
                "owner": "root",
                "group": "root",
                "sha1": hashlib.sha1(b"\x7fELF binary").hexdigest(),
            }
        }
    }
    entry = {"path": "/usr/local/bin/node_exporter", "src": str(binary), "mode": "0755"}
    assert state.files_in_place([entry], host)
    binary.write_bytes(b"\x7fELF new release")
    assert not state.files_in_place([entry], host)
    assert not state.files_in_place([{**entry, "src": str(tmp_path / "missing")}], host)


def test_service_started_only_when_the_unit_was_not_active():
    # common's service entry registers systemd_service's result: `status` is systemd's view before the task.
    assert state.service_started({"changed": True, "status": {"ActiveState": "inactive"}})
    assert state.service_started({"changed": True, "status": {"ActiveState": "failed"}})
    # Only enabled (it was running): the handlers must still restart it for a new binary or unit.
    assert not state.service_started({"changed": True, "status": {"ActiveState": "active"}})
    assert not state.service_started({"changed": False, "status": {"ActiveState": "inactive"}})
    assert not state.service_started({"changed": True}), "no word on the state before: no start"
    assert not state.service_started({"skipped": True, "changed": False})
    assert not state.service_started(None)


def test_packages_reported_covers_every_name_whatever_its_status():
    host = {"packages": {"x": "installed", "y": "unknown", "z": "not-installed"}}
    assert state.packages_reported(host, ["x", "y", "z"])
    assert not state.packages_reported(host, ["x", "w"])
    assert not state.packages_reported(host, [])
    assert not state.packages_reported({}, ["x"])


def test_the_state_entry_reads_each_units_file_where_the_unit_entry_writes_it(tmp_path: Path):
    """roles/common/tasks/state.yml: each service's unit file is read beside the paths given, `.service` added
    to a bare name and a name with its own suffix (a socket) taken as it is, so that the unit entry and a
    role's own units find their files in the report."""
    sys.path.insert(0, str(ROOT / "tests" / "shared"))
    from controller_helpers import ansible_playbook, local_host, one_play

    given = tmp_path / "given.conf"
    given.write_text("x\n")
    playbook = one_play(
        tmp_path,
        [
            {
                "ansible.builtin.include_role": {"name": "common", "tasks_from": "state"},
                "vars": {
                    "common_state": {
                        "paths": [str(given)],
                        "services": ["lookout-x", "lookout-y.socket", "lookout-z.timer"],
                    }
                },
            },
            {"ansible.builtin.debug": {"var": "__common_host.files"}},
        ],
    )
    run = ansible_playbook(playbook, {"all": {"hosts": {"h1": local_host()}}}, tmp_path, json_output=True)
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(run.stdout)["plays"][0]["tasks"][-1]["hosts"]["h1"]["__common_host.files"]
    assert sorted(report) == sorted(
        [
            str(given),
            "/etc/systemd/system/lookout-x.service",
            "/etc/systemd/system/lookout-y.socket",
            "/etc/systemd/system/lookout-z.timer",
        ]
    )
    assert report[str(given)]["sha1"] == hashlib.sha1(b"x\n").hexdigest()


def test_names_and_platform(run, tmp_path: Path):
    """Each name's addresses as this host resolves them (IPv4 first, an address resolves to itself, a name
    that does not resolve has none) and the Python that ran the module, its machine and glibc: what conduit
    takes its wheelhouse target from (tests/conduit/test_probe.py runs it there)."""
    names = ["localhost", "127.0.0.1", "::1", "name.invalid"]
    report = run(tmp_path, names=names)["host"]
    assert report["addresses"]["127.0.0.1"] == ["127.0.0.1"]
    assert report["addresses"]["::1"] == ["::1"]
    assert report["addresses"]["name.invalid"] == []
    families = [":" in address for address in report["addresses"]["localhost"]]
    assert families and families == sorted(families), "IPv4 addresses first"
    libc, version = platform.libc_ver()
    assert report["platform"] == {
        "executable": sys.executable,
        "python": f"{sys.version_info[0]}.{sys.version_info[1]}",
        "machine": platform.machine(),
        "glibc": version if libc == "glibc" else "",
    }
    assert run(tmp_path)["host"]["addresses"] == {}


def test_a_read_covers_a_role_when_the_report_answers_all_it_asks():
    read = {"paths": ["/etc/x/x.yml"], "packages": ["x"], "users": ["x"], "services": ["x"], "names": ["h"]}
    host = {**HOST, "addresses": {"h": ["10.0.0.1"]}, "platform": {"python": "3.11"}}
    assert state.state_covers(host, read)
    # Each question the report leaves open, and a report without the read's platform, is not covered.
    for option, name in [
        ("paths", "/etc/unasked"),
        ("packages", "unasked"),
        ("users", "unasked"),
        ("services", "unasked"),
        ("names", "g"),
    ]:
        assert not state.state_covers(host, {**read, option: [*read[option], name]}), option
    assert not state.state_covers({k: v for k, v in host.items() if k != "platform"}, read)
    assert not state.state_covers(state.state_forget(host, ["/etc/x/x.yml"]), read)
    assert not state.state_covers({}, {})
    with pytest.raises(AnsibleFilterError, match="state_covers: the read is a dict"):
        state.state_covers(host, ["/etc/x/x.yml"])


def test_reads_are_joined_in_order_without_repeats():
    first = {"paths": ["/a", "/b"], "services": ["x"], "names": ["h"]}
    second = {"paths": ["/b", "/c"], "packages": ["p"], "users": ["u"], "services": ["x", "y"]}
    assert state.state_union([first, second]) == {
        "paths": ["/a", "/b", "/c"],
        "packages": ["p"],
        "users": ["u"],
        "services": ["x", "y"],
        "names": ["h"],
    }
    assert state.state_union([]) == {"paths": [], "packages": [], "users": [], "services": [], "names": []}
    with pytest.raises(AnsibleFilterError, match="state_union: each read is a dict"):
        state.state_union([first, "x"])


def test_a_read_ahead_answers_each_roles_first_read_until_the_run_changes_what_it_asks(tmp_path: Path):
    """roles/common/tasks/state_ahead.yml and state.yml: the read ahead joins the `__<role>_state` of the
    roles named that have one (three has none) into one read; those roles make no call on their first read
    while the report answers all of it; a role's second read, a role whose paths a write dropped from the
    report, and a role the read ahead left out each ask the host. A later read ahead reads only the roles no
    read ahead stands for any more."""
    sys.path.insert(0, str(ROOT / "tests" / "shared"))
    from controller_helpers import ansible_playbook, local_host, one_play

    paths = {name: tmp_path / f"{name}.conf" for name in ("one", "two", "three")}
    for path in paths.values():
        path.write_text("x\n")
    for name, path in paths.items():
        tasks = tmp_path / "roles" / name / "tasks"
        tasks.mkdir(parents=True)
        read = {
            "ansible.builtin.include_role": {"name": "common", "tasks_from": "state"},
            "vars": {"common_state": {"paths": [str(path)]}},
        }
        asked = {"asked": f"{{{{ asked | default([]) + [['{name}', __common_state_read is not skipped]] }}}}"}
        (tasks / "main.yml").write_text(json.dumps([read, {"ansible.builtin.set_fact": asked}]))
    ahead = {
        "ansible.builtin.include_role": {"name": "common", "tasks_from": "state_ahead"},
        "vars": {"common_state_roles": ["one", "two", "three"]},
    }
    read_ahead = {"read_ahead": "{{ read_ahead | default([]) + [__common_state_ahead_new] }}"}
    # A write through common's entries drops what it changed (files_write.yml does this).
    forget_two = {
        "__common_host": f"{{{{ __common_host | lookout.stack.state_forget(['{paths['two']}']) }}}}"
    }
    play = [
        ahead,
        {"ansible.builtin.set_fact": read_ahead},
        {"ansible.builtin.include_role": {"name": "one"}},
        {"ansible.builtin.include_role": {"name": "one"}},
        {"ansible.builtin.set_fact": forget_two},
        {"ansible.builtin.include_role": {"name": "two"}},
        {"ansible.builtin.include_role": {"name": "three"}},
        ahead,
        {"ansible.builtin.set_fact": read_ahead},
        {"ansible.builtin.include_role": {"name": "two"}},
        ahead,
        {"ansible.builtin.set_fact": read_ahead},
        {"ansible.builtin.debug": {"msg": {"asked": "{{ asked }}", "read_ahead": "{{ read_ahead }}"}}},
    ]
    run = ansible_playbook(
        one_play(tmp_path, play),
        {
            "all": {
                "hosts": {
                    "h1": local_host(
                        __one_state={"paths": [str(paths["one"])]}, __two_state={"paths": [str(paths["two"])]}
                    )
                }
            }
        },
        tmp_path,
        json_output=True,
        extra_env={"ANSIBLE_ROLES_PATH": f"{tmp_path / 'roles'}:{ROOT / 'roles'}"},
    )
    assert run.returncode == 0, run.stdout + run.stderr
    seen = json.loads(run.stdout)["plays"][0]["tasks"][-1]["hosts"]["h1"]["msg"]
    # one: answered ahead, then asked again; two: its path dropped; three: no __three_state, never ahead;
    # two again after the second read ahead (one and two, which no read ahead stood for any more): answered.
    assert seen["asked"] == [["one", False], ["one", True], ["two", True], ["three", True], ["two", False]]
    # The third read ahead finds one still answered by the second: only two is read.
    assert seen["read_ahead"] == [["one", "two"], ["one", "two"], ["two"]]
