"""The render entries write what another revision of this repository writes: a refactoring's proof that the
rendered configuration did not change. Run it with the revision to compare against:

    LOOKOUT_RENDER_BASELINE=<git revision> pytest -c pytest.ini tests/stack/test_render_baseline.py

Both trees (the revision, extracted with `git archive`, and this checkout) render every environment of
ENVS, each with the same secrets (plain test values in place of the vault) and with its own roles, wiring
(top-level group_vars/) and plugins: playbooks/render.yml (Prometheus, the blackbox exporter and
Alertmanager on every monitoring host), and the render entries of haproxy (frontend hosts), VictoriaMetrics
(longterm hosts) and the firewall (every host, where it is on). Every file must be byte-identical, with
the same mode. The web configurations are left out: their bcrypt salts are random on every first
rendering. Without the variable the test is skipped.
"""

import os
import shutil
import stat
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from controller_helpers import ROOT, tool

BASELINE = os.environ.get("LOOKOUT_RENDER_BASELINE", "")
ENVS = ("demo", "production")
# Random bcrypt salts: different on every first rendering, whatever the revision.
DEMO_SECRETS = ROOT / "inventories" / "demo" / "group_vars" / "all" / "demo_secrets.yml"
SALTED = ("prometheus-web.yml", "blackbox-web.yml", "alertmanager-web.yml")

ROLE_PLAYS = [
    {
        "name": f"Render the {role} files of every {group} host",
        "hosts": group,
        "gather_facts": False,
        "become": False,
        "tasks": [
            {
                "name": f"Render {role}",
                "ansible.builtin.include_role": {"name": role, "tasks_from": "render"},
                "vars": {f"{role}_render_dir": "{{ lookout_render_dir }}/{{ inventory_hostname }}/" + role},
                "when": when,
            }
        ],
    }
    for role, group, when in (
        ("haproxy", "frontend", "true"),
        ("victoriametrics", "longterm", "true"),
        # Where it is on: its preflight resolves the peers' names (the demo's resolve nowhere but there).
        ("firewall", "all", "lookout_firewall_enabled | bool"),
    )
]

pytestmark = pytest.mark.skipif(
    not BASELINE, reason="set LOOKOUT_RENDER_BASELINE to a git revision to compare with"
)


def _secrets(env: str) -> dict:
    """The same plain values for every vault key, in both trees (demo keeps its published ones)."""
    keys = yaml.safe_load(DEMO_SECRETS.read_text())
    values = {key: f"test-{env}-{key}" for key in keys}
    values["vault_slack_webhook_url"] = f"http://127.0.0.1:9/services/test-{env}"
    values["vault_heartbeat_url"] = f"https://127.0.0.1:9/heartbeat/test-{env}"
    return values


def _inventory(tree: Path, env: str, dest: Path) -> Path:
    inventory = dest / env
    shutil.copytree(tree / "inventories" / env, inventory, symlinks=True)
    vault = inventory / "group_vars" / "all" / "vault.yml"
    if vault.exists():
        vault.write_text(yaml.safe_dump(_secrets(env), sort_keys=True))
    return inventory


def _render(tree: Path, work: Path) -> dict[str, str]:
    """Renders every environment with this tree; returns the output of each run, by name."""
    plays = work / "plays"
    plays.mkdir(parents=True)
    (plays / "group_vars").symlink_to(tree / "group_vars")
    (plays / "roles.yml").write_text(yaml.safe_dump(ROLE_PLAYS, sort_keys=False))
    env_vars = dict(
        os.environ,
        ANSIBLE_CONFIG=str(tree / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_CALLBACKS_ENABLED="ansible.builtin.timer",
        ANSIBLE_LOCAL_TEMP=str(work / ".ansible-tmp"),
    )
    outputs = {}
    for env in ENVS:
        inventory = _inventory(tree, env, work / "inventories")
        for playbook in (tree / "playbooks" / "render.yml", plays / "roles.yml"):
            command = [tool("ansible-playbook"), "-i", str(inventory), str(playbook)]
            # Nothing connects to a host: every render task writes on the controller.
            command += ["-e", f"lookout_render_dir={work / 'out' / env}", "-e", "ansible_connection=local"]
            command += ["-e", "ansible_become=false", "-e", f"ansible_python_interpreter={sys.executable}"]
            run = subprocess.run(
                command, capture_output=True, text=True, timeout=600, check=False, env=env_vars, cwd=tree
            )
            assert run.returncode == 0, f"{tree}: {env} {playbook.name}\n{run.stdout}{run.stderr}"
            outputs[f"{env} {playbook.name}"] = run.stdout
    return outputs


def _files(out: Path) -> dict[str, tuple[int, bytes]]:
    return {
        str(path.relative_to(out)): (stat.S_IMODE(path.stat().st_mode), path.read_bytes())
        for path in sorted(out.rglob("*"))
        if path.is_file() and path.name not in SALTED
    }


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> tuple[dict, dict]:
    work = tmp_path_factory.mktemp("render-baseline")
    baseline = work / "baseline-tree"
    baseline.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", BASELINE], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(baseline)], input=archive.stdout, check=True)
    trees = {"baseline": baseline, "checkout": ROOT}
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = {name: pool.submit(_render, tree, work / name) for name, tree in trees.items()}
        for run in runs.values():
            run.result()
    return _files(work / "baseline" / "out"), _files(work / "checkout" / "out")


def test_every_role_renders(rendered):
    """Each render entry wrote something in some environment (the comparison below is not vacuous)."""
    _, files = rendered
    for part in (
        "prometheus/prometheus.yml",
        "prometheus/lookout.rules.yml",
        "blackbox_exporter/blackbox.yml",
        "alertmanager/alertmanager.yml",
        "haproxy/haproxy.cfg",
        "haproxy/lookout-hardening.conf",
        "victoriametrics/victoriametrics.env",
        "victoriametrics/flags",
        "firewall/rules.nft",
        "firewall/lookout-firewall.service",
    ):
        assert any(name.endswith(part) for name in files), f"nothing rendered {part}: {sorted(files)}"


def test_the_same_files_as_the_baseline(rendered):
    before, after = rendered
    assert sorted(after) == sorted(before)
    changed = [name for name in sorted(before) if before[name] != after[name]]
    described = [
        f"{name} (mode {oct(before[name][0])} -> {oct(after[name][0])})"
        if before[name][1] == after[name][1]
        else name
        for name in changed
    ]
    assert not changed, f"rendered differently from {BASELINE}: {', '.join(described)}"
