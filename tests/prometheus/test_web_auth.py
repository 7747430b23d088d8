"""Basic auth of the monitoring servers in every environment, rendered by playbooks/render.yml from the
inventory with a generated test vault (tests/inventories/inventory_helpers.py):

- with `lookout_auth_enabled`, each monitoring host gets a web configuration for Prometheus, the blackbox
  exporter and Alertmanager: it parses, names `lookout_monitoring_user`, its bcrypt hash verifies against
  the vault's `vault_monitoring_password` (and not against another password), never holds the password,
  and `promtool check web-config` accepts it; every host and file has its own random salt, and the filter
  keeps a hash while the password matches it (re-runs against hosts: tests/web_config);
- Prometheus authenticates wherever it talks to lookout's servers: the self, blackbox and Alertmanager
  jobs and the alerting section carry basic_auth with a password_file, never an inline password;
- without `lookout_auth_enabled` (the demo) none of this is rendered: prometheus.yml has no basic_auth;
- a vault without `vault_monitoring_password` fails the render, naming the variable.
"""

import subprocess
import sys

import bcrypt
import pytest
import yaml
from controller_helpers import ENVIRONMENTS, ROOT, knobs, tool

sys.path.insert(0, str(ROOT / "tests" / "inventories"))
sys.path.insert(0, str(ROOT / "plugins" / "filter"))
from inventory_helpers import make_test_inventory
from prometheus_helpers import environment_renders, render_command, render_env
from web_config import web_config_bcrypt

# Rendered file (below <host>/) -> the path on the host.
WEB_CONFIGS = {
    "prometheus/prometheus-web.yml": "/etc/prometheus/prometheus-web.yml",
    "blackbox_exporter/blackbox-web.yml": "/etc/prometheus/blackbox-web.yml",
    "alertmanager/alertmanager-web.yml": "/etc/alertmanager/alertmanager-web.yml",
}
PASSWORD_FILES = {
    "self": "/etc/prometheus/client-self.password",
    "blackbox": "/etc/prometheus/client-blackbox.password",
    "alertmanager": "/etc/prometheus/client-alertmanager.password",
}
AUTH_ENVS = [env for env in ENVIRONMENTS if knobs(env)["lookout_auth_enabled"]]


def _vault(inventory, env, password_file) -> dict:
    vault = inventory / "group_vars" / "all" / "vault.yml"
    if password_file is None:
        return yaml.safe_load((inventory / "group_vars" / "all" / "demo_secrets.yml").read_text())
    view = subprocess.run(
        [tool("ansible-vault"), "view", "--vault-id", f"{env}@{password_file}", str(vault)],
        capture_output=True,
        text=True,
        check=True,
    )
    return yaml.safe_load(view.stdout)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, dict]:
    """env -> {'secrets': vault values, 'hosts': {monitoring host: its render directory}}. The renders are
    those test_config.py reads too (environment_renders: once per test run)."""
    results = {}
    for env, render in environment_renders(tmp_path_factory).items():
        assert render.returncode == 0, render.output
        hosts = yaml.safe_load((render.inventory / "hosts.yml").read_text())["all"]["children"]["monitoring"][
            "hosts"
        ]
        results[env] = {
            "secrets": _vault(render.inventory, env, render.password_file),
            "hosts": {host: render.out / host for host in hosts},
        }
        assert all(d.is_dir() for d in results[env]["hosts"].values()), render.output
    return results


def _prometheus_config(directory) -> dict:
    return yaml.safe_load((directory / "prometheus" / "prometheus.yml").read_text())


def _jobs(config: dict) -> dict:
    return {job["job_name"]: job for job in config["scrape_configs"]}


def test_the_environments_cover_both_cases():
    assert AUTH_ENVS, "no environment turns auth on"
    assert set(ENVIRONMENTS) - set(AUTH_ENVS), "no environment leaves auth off"
    assert "demo" not in AUTH_ENVS


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_web_configs_follow_lookout_auth_enabled(rendered, env):
    for directory in rendered[env]["hosts"].values():
        present = sorted(name for name in WEB_CONFIGS if (directory / name).exists())
        assert present == (sorted(WEB_CONFIGS) if env in AUTH_ENVS else []), directory


@pytest.mark.parametrize("env", AUTH_ENVS)
def test_web_config_hashes_verify_against_the_vault_password(rendered, env):
    user = knobs(env)["lookout_monitoring_user"]
    password = rendered[env]["secrets"]["vault_monitoring_password"]
    for directory in rendered[env]["hosts"].values():
        for name in WEB_CONFIGS:
            path = directory / name
            text = path.read_text()
            assert password not in text
            assert oct(path.stat().st_mode & 0o777) == "0o600"
            users = yaml.safe_load(text)
            # With lookout_tls_enabled the same file names the server's certificate (tests/tls, live).
            expected = ["basic_auth_users"] + (
                ["tls_server_config"] if knobs(env)["lookout_tls_enabled"] else []
            )
            assert sorted(users) == expected
            assert list(users["basic_auth_users"]) == [user]
            hashed = users["basic_auth_users"][user].encode()
            assert hashed.startswith(b"$2b$10$")
            assert bcrypt.checkpw(password.encode(), hashed)
            assert not bcrypt.checkpw(b"another-password", hashed)


@pytest.mark.parametrize("env", AUTH_ENVS)
def test_promtool_accepts_the_web_configs(rendered, env):
    for directory in rendered[env]["hosts"].values():
        for name in WEB_CONFIGS:
            # The TLS part names files on the monitoring host: checked as the role does, without it.
            config = yaml.safe_load((directory / name).read_text())
            config.pop("tls_server_config", None)
            check = subprocess.run(
                [tool("promtool"), "check", "web-config", "/dev/stdin"],
                input=yaml.safe_dump(config),
                capture_output=True,
                text=True,
                check=False,
            )
            assert check.returncode == 0, name + check.stdout + check.stderr


@pytest.mark.parametrize("env", AUTH_ENVS)
def test_hashes_are_the_hosts_own_and_kept(rendered, env):
    """Each host and file has its own salt; handed back to the filter with the same password, the rendered
    hash is kept (what a re-run does with the host's file)."""
    user = knobs(env)["lookout_monitoring_user"]
    password = rendered[env]["secrets"]["vault_monitoring_password"]
    seen = set()
    for host, directory in rendered[env]["hosts"].items():
        for name, host_path in WEB_CONFIGS.items():
            hashed = yaml.safe_load((directory / name).read_text())["basic_auth_users"][user]
            assert web_config_bcrypt(password, hashed, legacy_seed=f"{host}:{host_path}:{user}") == hashed
            seen.add(hashed[7:29])
    assert len(seen) == len(rendered[env]["hosts"]) * len(WEB_CONFIGS)


def test_the_filter_salts_at_random_and_keeps_a_matching_hash():
    first = web_config_bcrypt("secret-one")
    assert bcrypt.checkpw(b"secret-one", first.encode())
    assert web_config_bcrypt("secret-one") != first
    assert web_config_bcrypt("secret-one", first) == first
    # Another password, another cost or something that is no bcrypt hash: a new hash.
    second = web_config_bcrypt("secret-two", first)
    assert second != first and bcrypt.checkpw(b"secret-two", second.encode())
    assert web_config_bcrypt("secret-one", first, 11).startswith("$2b$11$")
    assert bcrypt.checkpw(b"secret-one", web_config_bcrypt("secret-one", "$2b$10$broken").encode())
    with pytest.raises(Exception, match="72 bytes"):
        web_config_bcrypt("p" * 73)


def test_the_filter_replaces_the_salts_earlier_releases_derived():
    """Those salts were an HMAC of the password: a guess could be checked without bcrypt."""
    from web_config import legacy_salt

    seed = "mon1:/etc/x-web.yml:lookout"
    derived = bcrypt.hashpw(b"secret-one", legacy_salt(b"secret-one", seed, 10)).decode()
    assert web_config_bcrypt("secret-one", derived) == derived  # without the seed it cannot tell
    replaced = web_config_bcrypt("secret-one", derived, legacy_seed=seed)
    assert replaced != derived and bcrypt.checkpw(b"secret-one", replaced.encode())


def test_promtool_refuses_a_plain_password(tmp_path):
    """The check the roles run before a web configuration reaches a host has teeth."""
    plain = tmp_path / "web.yml"
    plain.write_text(yaml.safe_dump({"basic_auth_users": {"lookout": "not-a-hash"}}))
    check = subprocess.run(
        [tool("promtool"), "check", "web-config", str(plain)], capture_output=True, text=True, check=False
    )
    assert check.returncode != 0


@pytest.mark.parametrize("env", AUTH_ENVS)
def test_prometheus_authenticates_to_lookouts_servers(rendered, env):
    user = knobs(env)["lookout_monitoring_user"]
    for directory in rendered[env]["hosts"].values():
        config = _prometheus_config(directory)
        jobs = _jobs(config)
        expected = {
            "prometheus": "self",
            "blackbox-http": "blackbox",
            "blackbox": "blackbox",
            "alertmanager": "alertmanager",
        }
        for job, target in expected.items():
            assert jobs[job]["basic_auth"] == {"username": user, "password_file": PASSWORD_FILES[target]}, job
        # Web hosts and node_exporters are not lookout's basic-auth servers.
        assert "basic_auth" not in jobs[f"{env}-web"]
        assert "basic_auth" not in jobs["node"]
        for alertmanagers in config["alerting"]["alertmanagers"]:
            assert alertmanagers["basic_auth"] == {
                "username": user,
                "password_file": PASSWORD_FILES["alertmanager"],
            }
        assert (
            rendered[env]["secrets"]["vault_monitoring_password"]
            not in (directory / "prometheus" / "prometheus.yml").read_text()
        )


@pytest.mark.parametrize("env", [e for e in ENVIRONMENTS if e not in AUTH_ENVS])
def test_without_auth_prometheus_sends_no_credentials(rendered, env):
    for directory in rendered[env]["hosts"].values():
        text = (directory / "prometheus" / "prometheus.yml").read_text()
        assert "basic_auth" not in text
        assert "password" not in text


def test_a_vault_without_the_monitoring_password_fails_naming_it(tmp_path):
    env = AUTH_ENVS[0]
    inventory, password_file = make_test_inventory(env, tmp_path)
    vault = inventory / "group_vars" / "all" / "vault.yml"
    secrets = _vault(inventory, env, password_file)
    del secrets["vault_monitoring_password"]
    vault.write_text(yaml.safe_dump(secrets))
    subprocess.run(
        [tool("ansible-vault"), "encrypt", "--vault-id", f"{env}@{password_file}", str(vault)],
        capture_output=True,
        check=True,
    )
    run = subprocess.run(
        render_command(env, inventory, password_file, tmp_path / "out"),
        capture_output=True,
        text=True,
        env=render_env(),
        timeout=300,
        check=False,
    )
    assert run.returncode != 0, run.stdout
    assert "'vault_monitoring_password' is undefined" in run.stdout + run.stderr
    assert not list((tmp_path / "out").rglob("*-web.yml"))
