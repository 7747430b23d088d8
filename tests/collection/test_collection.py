"""The roles as the collection lookout.stack (galaxy.yml): `ansible-galaxy collection build` makes the
tarball, `ansible-galaxy collection install --offline` puts it into an empty collections path (its
dependencies come from the PyPI `ansible` package, no Galaxy), and a play that names the roles by their
fully qualified names converges one local host from there alone: no roles path, not this checkout's
ansible.cfg, not its collections/ link.

The play runs the roles' entries that need no system service: the firewall's render (its preflight, its
filters, `common` included by its short name), Prometheus' render with basic auth (`common`'s web_config
with its filters, checked by the controller's promtool) and `common`'s files entry (the module
lookout.stack.common_files, writing with a validate command into a temporary directory). The first run
writes every file, the second changes nothing. The whole roles on a systemd host by their fully qualified
names: molecule's default scenario.
"""

import getpass
import grp
import json
import os
import re
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml
from controller_helpers import ROOT, ansible_playbook, local_host, outcomes, tool

NAME = "lookout.stack"
ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if (p / "tasks" / "main.yml").is_file())
# The repository's parts that stay out of the tarball (galaxy.yml, build_ignore).
LEFT_OUT = {
    "app",
    "bench",
    "collections",
    "docs",
    "group_vars",
    "inventories",
    "molecule",
    "playbooks",
    "tests",
}
PLUGINS = {
    "plugins/filter/preflight.py",
    "plugins/filter/web_config.py",
    "plugins/filter/firewall.py",
    "plugins/filter/loopback.py",
    "plugins/modules/common_files.py",
    "plugins/modules/common_certificate_state.py",
    "plugins/modules/common_state.py",
    "plugins/action/common_state.py",
    "plugins/module_utils/common_state.py",
}

CONVERGE = """
- name: Converge with the roles by their fully qualified names
  hosts: all
  gather_facts: false
  tasks:
    - name: Render the firewall (its preflight and filters, common by its short name)
      ansible.builtin.include_role:
        name: lookout.stack.firewall
        tasks_from: render

    - name: Render Prometheus with basic auth (common's web_config and its filters, promtool)
      ansible.builtin.include_role:
        name: lookout.stack.prometheus
        tasks_from: render

    - name: Write files through common's module, each checked first
      ansible.builtin.include_role:
        name: lookout.stack.common
        tasks_from: files
      vars:
        common_files:
          - path: "{{ converge_dir }}/settings.yml"
            content: "answer: 42\\n"
            owner: "{{ converge_owner }}"
            group: "{{ converge_group }}"
            mode: "0640"
            validate: "{{ converge_python }} -c 'import sys, yaml; yaml.safe_load(open(sys.argv[1]))' %s"
"""


def _run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    run = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False, **kwargs)
    assert run.returncode == 0, run.stdout + run.stderr
    return run


@pytest.fixture(scope="module")
def tarball(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("build")
    _run([tool("ansible-galaxy"), "collection", "build", str(ROOT), "--output-path", str(out)], cwd=out)
    (built,) = out.glob("lookout-stack-*.tar.gz")
    return built


@pytest.fixture(scope="module")
def installed(tarball, tmp_path_factory) -> Path:
    """The collections path holding only the installed tarball."""
    path = tmp_path_factory.mktemp("collections")
    command = [tool("ansible-galaxy"), "collection", "install", "--offline", str(tarball), "-p", str(path)]
    _run(command, env=dict(os.environ, **_isolated(path, tmp_path_factory.mktemp("install"))))
    return path


def _isolated(collections: Path, workdir: Path) -> dict:
    """Ansible's environment seeing the installed collection only: an empty configuration (not this
    checkout's, whose collections_path holds the link to it), that collections path, an empty roles path."""
    (workdir / "ansible.cfg").write_text("[defaults]\n")
    (workdir / "no-roles").mkdir(exist_ok=True)
    return {
        "ANSIBLE_CONFIG": str(workdir / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": str(collections),
        "ANSIBLE_ROLES_PATH": str(workdir / "no-roles"),
    }


def test_the_tarball_holds_the_roles_and_plugins_only(tarball):
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
        manifest = json.load(tar.extractfile("MANIFEST.json"))["collection_info"]
    tops = {name.split("/")[0] for name in names}
    assert tops == {"CHANGELOG.md", "FILES.json", "MANIFEST.json", "README.md", "meta", "plugins", "roles"}
    assert not tops & LEFT_OUT
    roles = {name.split("/")[1] for name in names if name.startswith("roles/") and name.count("/") > 1}
    assert roles == set(ROLES)
    assert set(names) >= PLUGINS
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]
    # Every dependency is a collection the PyPI `ansible` package brings (requirements.yml lists them too).
    wanted = {c["name"] for c in yaml.safe_load((ROOT / "requirements.yml").read_text())["collections"]}
    assert set(manifest["dependencies"]) <= wanted


def test_the_version_is_the_apps(tarball):
    source = (ROOT / "app" / "conduit" / "_version.py").read_text()
    version = re.search(r'^__version__ = "([^"]+)"$', source, re.M).group(1)
    assert tarball.name == f"lookout-stack-{version}.tar.gz"


def _converge(installed: Path, workdir: Path) -> subprocess.CompletedProcess:
    (workdir / "config").mkdir(exist_ok=True)
    play = workdir / "converge.yml"
    play.write_text(CONVERGE)
    host = local_host(
        firewall_ssh_sources=["10.0.0.0/8", "2001:db8::/32"],
        firewall_allow=[{"port": 9100, "sources": ["192.0.2.10"]}],
        firewall_render_dir=str(workdir / "firewall"),
        prometheus_render_dir=str(workdir / "prometheus"),
        prometheus_render_promtool=tool("promtool"),
        prometheus_web_basic_auth_enabled=True,
        prometheus_web_basic_auth_users={"lookout": "a-password-for-the-test"},
        common_web_config_bcrypt_cost=5,
        converge_dir=str(workdir / "config"),
        converge_owner=getpass.getuser(),
        converge_group=grp.getgrgid(os.getgid()).gr_name,
        converge_python=tool("python3"),
    )
    env = _isolated(installed, workdir)
    return ansible_playbook(
        play, {"all": {"hosts": {"host1": host}}}, workdir, json_output=True, extra_env=env
    )


def test_the_installed_collection_alone_is_found(installed, tmp_path):
    command = [tool("ansible-galaxy"), "collection", "list", NAME, "--format", "json"]
    listed = _run(command, env=dict(os.environ, **_isolated(installed, tmp_path)), cwd=tmp_path)
    found = {path: set(collections) for path, collections in json.loads(listed.stdout).items()}
    assert found == {str(installed / "ansible_collections"): {NAME}}


def test_a_host_converges_with_the_roles_by_their_fully_qualified_names(installed, tmp_path):
    first = outcomes(_converge(installed, tmp_path))["host1"]
    assert not first.failures, first.failure
    assert first.changed > 0

    rules = (tmp_path / "firewall" / "rules.nft").read_text()
    assert "10.0.0.0/8" in rules and "2001:db8::/32" in rules and "192.0.2.10" in rules
    assert (tmp_path / "prometheus" / "prometheus.yml").is_file()
    web = yaml.safe_load((tmp_path / "prometheus" / "prometheus-web.yml").read_text())
    assert web["basic_auth_users"]["lookout"].startswith("$2b$05$")
    settings = tmp_path / "config" / "settings.yml"
    assert settings.read_text() == "answer: 42\n"
    assert oct(settings.stat().st_mode & 0o777) == "0o640"

    second = outcomes(_converge(installed, tmp_path))["host1"]
    assert not second.failures, second.failure
    assert second.changed == 0
