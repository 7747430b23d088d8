"""The environments' inventories and the top-level wiring stay consistent.

- every environment has the three host groups and defines the same knob set (lookout_* in vars.yml,
  vault_* secrets), its secrets vault-encrypted (demo: plain, declared non-secret);
- every knob the top-level wiring reads is defined in every environment, and the wiring reads none with a
  default; each port is set once, in group_vars/all/ports.yml (group_vars/README.md);
- top-level group_vars/ never sets a key an inventory sets: playbook group_vars beat inventory
  group_vars, so a collision would silently override the environment;
- every knob an inventory defines is consumed somewhere, and roles never read knobs directly;
- playbooks/*.yml see the top-level group_vars/ (playbooks/group_vars links to it);
- in every environment (with a generated test vault) every top-level wiring variable resolves;
- k6 presents the monitoring credentials to Prometheus' remote-write receiver exactly when auth and remote
  write are both on;
- every environment passes playbooks/preflight.yml (every role's checks and the port check, each host played
  by this machine) without a change.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from inventory_helpers import (
    ENVS,
    INVENTORIES,
    ROOT,
    VAULTED_ENVS,
    inventory_keys,
    is_vault_encrypted,
    load_yaml,
    make_test_inventory,
    secret_keys,
)

ANSIBLE = str(Path(sys.executable).with_name("ansible"))
ANSIBLE_PLAYBOOK = str(Path(sys.executable).with_name("ansible-playbook"))
ROOT_GROUP_VARS = ROOT / "group_vars"
CONTRACT_SECRETS = {
    "vault_slack_webhook_url",
    "vault_conduit_secret_key",
    "vault_conduit_database_password",
    "vault_grafana_admin_password",
    "vault_monitoring_password",
    "vault_heartbeat_url",
}
KNOB = re.compile(r"\b(?:lookout|vault)_[a-z0-9_]+\b")
# A knob read with a fallback, e.g. "lookout_conduit_port | default(5566)".
DEFAULTED_KNOB = re.compile(r"\b((?:lookout|vault)_[a-z0-9_]+)\s*\|\s*default\b")
PORTS = ROOT_GROUP_VARS / "all" / "ports.yml"


def _knobs(env: str) -> dict:
    return load_yaml(INVENTORIES / env / "group_vars" / "all" / "vars.yml")


def _root_keys() -> dict[str, Path]:
    keys = {}
    for path in sorted(ROOT_GROUP_VARS.rglob("*.yml")):
        for key in load_yaml(path):
            keys[key] = path
    return keys


def _consumers() -> list[Path]:
    """Files that may read knobs: the wiring, the playbooks and the stack scenario."""
    files = [ROOT / "site.yml", *ROOT_GROUP_VARS.rglob("*.yml")]
    files += [p for p in (ROOT / "playbooks").glob("*.yml") if p.is_file()]
    files += [
        p for p in (ROOT / "molecule" / "stack").rglob("*") if p.is_file() and p.suffix in (".yml", ".j2")
    ]
    return [p for p in files if p.exists()]


def _ansible_env() -> dict:
    return {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}


@pytest.mark.parametrize("env", ENVS)
def test_every_env_has_the_host_groups(env):
    groups = load_yaml(INVENTORIES / env / "hosts.yml")["all"]["children"]
    assert set(groups) >= {"web", "monitoring", "loadgen"}
    assert groups["web"]["hosts"], f"{env}: no web host"
    assert groups["monitoring"]["hosts"], f"{env}: no monitoring host"


@pytest.mark.parametrize("env", ENVS)
def test_every_env_defines_the_same_knobs(env):
    reference = set(_knobs("demo"))
    knobs = set(_knobs(env))
    assert knobs == reference, (
        f"{env} differs from demo: missing {sorted(reference - knobs)}, extra {sorted(knobs - reference)}"
    )
    assert _knobs(env)["lookout_env"] == env
    assert all(k.startswith("lookout_") for k in knobs), "vars.yml holds only lookout_* knobs"


def _wiring_reads() -> dict[str, list[str]]:
    """Every knob the top-level wiring reads -> the files that read it."""
    reads: dict[str, list[str]] = {}
    for path in sorted(ROOT_GROUP_VARS.rglob("*.yml")):
        for name in sorted(set(KNOB.findall(path.read_text()))):
            reads.setdefault(name, []).append(str(path.relative_to(ROOT)))
    return reads


@pytest.mark.parametrize("env", ENVS)
def test_every_knob_the_wiring_reads_is_defined_in_every_env(env):
    """Each environment's group_vars/all (and its vault) defines every knob group_vars/ reads: a knob missing
    from one environment would fail that environment's run at the first task that needs it."""
    inventory = INVENTORIES / env
    defined = set(secret_keys()) if env in VAULTED_ENVS else set()
    for path in sorted((inventory / "group_vars" / "all").iterdir()):
        if path.suffix in (".yml", ".yaml") and not is_vault_encrypted(path):
            defined |= set(load_yaml(path))
    missing = {name: files for name, files in _wiring_reads().items() if name not in defined}
    assert not missing, (
        f"inventories/{env}/group_vars/all does not define {sorted(missing)}, read by {missing}"
    )


def test_the_wiring_reads_no_knob_with_a_default():
    """Every environment defines every knob (above): a default in the wiring would only hide a missing one."""
    defaulted = {
        str(path.relative_to(ROOT)): found
        for path in sorted(ROOT_GROUP_VARS.rglob("*.yml"))
        if (found := sorted(set(DEFAULTED_KNOB.findall(path.read_text()))))
    }
    assert not defaulted, (
        f"knobs read with | default(...): {defaulted}; define them in every inventory instead"
    )


# A port written into a string (':9094', 'host:9093/'): a colon, not after a word or a digit, then digits.
PORT_LITERAL = re.compile(r"(?<![0-9A-Za-z_]):[0-9]{2,5}\b")
# A port variable read with a numeric fallback (`haproxy_https_port | default(443)`).
DEFAULTED_PORT = re.compile(r"\b[a-z0-9_]*_port\b[\s)]*\|\s*default\(\s*[0-9]+\s*\)")


def _without_comments(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def test_each_port_is_set_once_in_ports_yml():
    """A port is a number in ports.yml only; elsewhere the wiring reads a variable (another host's through
    hostvars): no `*_port` input set outside ports.yml but to another variable, no `default(<number>)`, no
    port written into a string (`':9094'`); the molecule scenarios' playbooks read the ports the wiring sets,
    never a port variable with a numeric `default(...)`."""
    ports = load_yaml(PORTS)
    assert ports and all(name.endswith("_port") for name in ports), ports
    reference = re.compile(r"\{\{ *[a-z_]+ *\}\}")
    elsewhere = {}
    numbers = {}
    literals = {}
    for path in sorted(ROOT_GROUP_VARS.rglob("*.yml")):
        where = str(path.relative_to(ROOT))
        if path != PORTS:
            for key, value in load_yaml(path).items():
                if key.endswith("_port") and not reference.fullmatch(str(value)):
                    elsewhere[key] = where
            if found := PORT_LITERAL.findall(_without_comments(path.read_text())):
                literals[where] = found
        if found := re.findall(r"default\(\s*[0-9]+\s*\)", path.read_text()):
            numbers[where] = found
    for path in sorted((ROOT / "molecule").rglob("*.yml")):
        if not path.is_symlink() and (found := DEFAULTED_PORT.findall(_without_comments(path.read_text()))):
            numbers[str(path.relative_to(ROOT))] = found
    assert not elsewhere, f"ports set outside group_vars/all/ports.yml: {elsewhere}"
    assert not literals, f"ports written into the wiring's strings: {literals}; read the ports.yml variable"
    assert not numbers, f"ports defaulted again: {numbers}"


def test_secret_keys_cover_the_contract():
    keys = set(secret_keys())
    assert keys >= CONTRACT_SECRETS, f"missing secrets: {sorted(CONTRACT_SECRETS - keys)}"
    assert all(k.startswith("vault_") for k in keys)


@pytest.mark.parametrize("env", VAULTED_ENVS)
def test_secrets_are_vault_encrypted(env):
    secrets_dir = INVENTORIES / env / "group_vars" / "all"
    vault = secrets_dir / "vault.yml"
    assert vault.is_file(), f"{env}: no vault.yml"
    # The vault id names the environment, so each environment has its own password.
    assert vault.read_text().splitlines()[0] == f"$ANSIBLE_VAULT;1.2;AES256;{env}"
    for path in secrets_dir.iterdir():
        if path != vault:
            assert not KNOB.search(path.read_text()) or not any(
                k.startswith("vault_") for k in load_yaml(path)
            ), f"{path}: vault_* values outside the vault"


def test_demo_secrets_are_declared_non_secret():
    demo = INVENTORIES / "demo" / "group_vars" / "all"
    assert not (demo / "vault.yml").exists()
    text = (demo / "demo_secrets.yml").read_text()
    assert text.startswith("# NOT SECRET.")
    assert not is_vault_encrypted(demo / "demo_secrets.yml")


def test_each_top_level_key_is_set_in_one_file():
    seen: dict[str, list[str]] = {}
    for path in sorted(ROOT_GROUP_VARS.rglob("*.yml")):
        for key in load_yaml(path):
            seen.setdefault(key, []).append(str(path.relative_to(ROOT)))
    twice = {k: v for k, v in seen.items() if len(v) > 1}
    assert not twice, f"the later file silently wins: {twice}"


def test_top_level_group_vars_never_define_knobs():
    wrong = sorted(k for k in _root_keys() if k.startswith(("lookout_", "vault_")))
    assert not wrong, f"knobs belong in inventories/<env>/group_vars, not group_vars/: {wrong}"


@pytest.mark.parametrize("env", ENVS)
def test_top_level_group_vars_never_collide_with_the_inventory(env):
    root = _root_keys()
    collisions = sorted(set(root) & inventory_keys(INVENTORIES / env))
    where = {k: str(root[k].relative_to(ROOT)) for k in collisions}
    assert not collisions, f"top-level group_vars would override inventories/{env}: {where}"


def test_every_knob_is_used():
    used: set[str] = set()
    for path in _consumers():
        used |= set(KNOB.findall(path.read_text()))
    defined = {k for env in ENVS for k in _knobs(env)} | set(secret_keys())
    unused = sorted(defined - used)
    assert not unused, f"knobs no wiring, playbook or the stack scenario reads: {unused}"


def test_roles_never_read_knobs():
    # The knobs the environments define; other lookout_* words in roles (metric names such as
    # lookout_backup_last_run_success, file names) are not knobs.
    knobs = {k for env in ENVS for k in _knobs(env)} | set(secret_keys())
    offenders = {}
    for path in sorted((ROOT / "roles").rglob("*")):
        if path.is_file() and path.suffix in (".yml", ".yaml", ".j2", ".py", ".js"):
            found = sorted(set(KNOB.findall(path.read_text())) & knobs)
            if found:
                offenders[str(path.relative_to(ROOT))] = found
    assert not offenders, f"roles take <role>_* inputs only; wire knobs in group_vars/: {offenders}"


def test_playbooks_dir_links_the_top_level_group_vars():
    link = ROOT / "playbooks" / "group_vars"
    assert link.is_symlink(), "playbooks/group_vars must link to ../group_vars"
    assert link.resolve() == ROOT_GROUP_VARS.resolve()


def test_playbooks_see_the_top_level_group_vars():
    """Ansible loads playbook group_vars from the playbook's own directory, also for imported playbooks."""
    key = next(iter(_root_keys()), None)
    if key is None:
        pytest.skip("no top-level group_vars yet")
    run = subprocess.run(
        [
            ANSIBLE,
            "-i",
            str(INVENTORIES / "demo"),
            "web1",
            "--playbook-dir",
            str(ROOT / "playbooks"),
            "-m",
            "ansible.builtin.debug",
            "-a",
            f"var={key}",
            "-o",
        ],
        capture_output=True,
        text=True,
        env=_ansible_env(),
        check=False,
        cwd="/",
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "VARIABLE IS NOT DEFINED" not in run.stdout, run.stdout


@pytest.mark.parametrize("env", ENVS)
def test_wiring_resolves_in_every_env(env, tmp_path):
    keys = sorted(_root_keys())
    if not keys:
        pytest.skip("no top-level group_vars yet")
    inventory, password_file = make_test_inventory(env, tmp_path)
    expression = "{{ {" + ", ".join(f"'{k}': {k}" for k in keys) + "} | to_json }}"
    command = [
        ANSIBLE,
        "-i",
        str(inventory),
        "all",
        "--playbook-dir",
        str(ROOT / "playbooks"),
        "-m",
        "ansible.builtin.debug",
        "-a",
        f"msg={expression}",
        "-o",
    ]
    if password_file:
        command += ["--vault-id", f"{env}@{password_file}"]
    run = subprocess.run(command, capture_output=True, text=True, env=_ansible_env(), check=False, cwd="/")
    assert run.returncode == 0, run.stdout + run.stderr
    for line in run.stdout.splitlines():
        resolved = json.loads(line.split(" => ", 1)[1])["msg"]
        assert set(json.loads(resolved) if isinstance(resolved, str) else resolved) == set(keys)


@pytest.mark.parametrize("env", ENVS)
def test_k6_remote_write_authenticates_when_auth_is_on(env, tmp_path):
    inventory, password_file = make_test_inventory(env, tmp_path)
    expression = (
        "{{ {'url': k6_prometheus_rw_url, 'user': k6_prometheus_rw_username,"
        " 'password': k6_prometheus_rw_password, 'vault': vault_monitoring_password} | to_json }}"
    )
    command = [ANSIBLE, "-i", str(inventory), "monitoring[0]", "--playbook-dir", str(ROOT / "playbooks")]
    command += ["-m", "ansible.builtin.debug", "-a", f"msg={expression}", "-o"]
    if password_file:
        command += ["--vault-id", f"{env}@{password_file}"]
    run = subprocess.run(command, capture_output=True, text=True, env=_ansible_env(), check=False, cwd="/")
    assert run.returncode == 0, run.stdout + run.stderr
    message = json.loads(run.stdout.split(" => ", 1)[1])["msg"]
    wired = json.loads(message) if isinstance(message, str) else message
    knobs = _knobs(env)
    if knobs["lookout_auth_enabled"] and knobs["lookout_loadtest_remote_write"]:
        assert wired["url"].endswith("/api/v1/write")
        assert (wired["user"], wired["password"]) == (knobs["lookout_monitoring_user"], wired["vault"])
    else:
        assert (wired["user"], wired["password"]) == ("", "")


def _local_preflight_command(inventory) -> list[str]:
    """playbooks/preflight.yml on the inventory's hosts, each played by this machine (local connection, no
    privilege)."""
    local = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "ansible_become": False,
    }
    playbook = ROOT / "playbooks" / "preflight.yml"
    return [ANSIBLE_PLAYBOOK, "-i", str(inventory), str(playbook), "-e", json.dumps(local)]


@pytest.mark.parametrize("env", ENVS)
def test_preflight_passes_in_every_env(env, tmp_path):
    """The environment's own hosts, each played by this machine (local connection, no privilege): the names
    the checks resolve are the inventory's addresses, which resolve to themselves."""
    inventory, password_file = make_test_inventory(env, tmp_path)
    command = _local_preflight_command(inventory)
    if password_file:
        command += ["--vault-id", f"{env}@{password_file}"]
    env_vars = _ansible_env() | dict.fromkeys(
        ("ANSIBLE_STDOUT_CALLBACK", "ANSIBLE_CALLBACKS_ENABLED"), "ansible.posix.json"
    )
    env_vars["ANSIBLE_LOCAL_TEMP"] = str(tmp_path / ".ansible-tmp")
    run = subprocess.run(command, capture_output=True, text=True, env=env_vars, check=False, cwd="/")
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr
    report = json.loads(run.stdout)
    hosts = {
        h
        for group in load_yaml(inventory / "hosts.yml")["all"]["children"].values()
        for h in group["hosts"] or {}
    }
    assert {host: stats["changed"] for host, stats in report["stats"].items()} == dict.fromkeys(hosts, 0)
    (port_check,) = [
        t for p in report["plays"] for t in p["tasks"] if t["task"]["name"].startswith("Check that no two")
    ]
    assert set(port_check["hosts"]) == hosts, "every host reaches the last check"


# Environment knobs a release renamed ({old: new}); playbooks/preflight.yml refuses the old names first.
RENAMED_KNOBS = {"lookout_grafana_archive_file": "lookout_grafana_archive_src"}


@pytest.mark.parametrize("old", sorted(RENAMED_KNOBS))
def test_a_knob_under_its_old_name_stops_preflight_naming_both(old, tmp_path):
    """An environment of an earlier release still setting a renamed knob: playbooks/preflight.yml (site.yml's
    first play) stops before any host changes, naming the old and the new name (the wiring reads only the
    new one)."""
    inventory, _ = make_test_inventory("demo", tmp_path)
    vars_file = inventory / "group_vars" / "all" / "vars.yml"
    text = vars_file.read_text()
    assert f"{RENAMED_KNOBS[old]}:" in text
    vars_file.unlink()
    vars_file.write_text(text.replace(f"{RENAMED_KNOBS[old]}:", f"{old}:"))
    command = _local_preflight_command(inventory)
    env_vars = _ansible_env() | {"ANSIBLE_LOCAL_TEMP": str(tmp_path / ".ansible-tmp")}
    run = subprocess.run(command, capture_output=True, text=True, env=env_vars, check=False, cwd="/")
    assert run.returncode != 0, run.stdout[-3000:]
    assert f"{old} was renamed to {RENAMED_KNOBS[old]}" in run.stdout, run.stdout[-3000:] + run.stderr
    assert "changed=0" in run.stdout and "changed=1" not in run.stdout, run.stdout[-3000:]
