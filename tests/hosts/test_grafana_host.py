"""Grafana on a converged monitoring host (molecule/grafana: monitor1 `deb`, monitor2 `apt`, monitor3
`archive`), read with pytest-testinfra.

Run by the scenario's verify, one run per host, after the converge, the idempotence run and side_effect.yml's
second run (a new admin password, a dropped datasource, a stale dashboard file), with the host's grafana
inputs in LOOKOUT_HOST_INPUTS (conftest.py): grafana_install_method, grafana_version (the supplied package's,
which names the archive method's release directory), grafana_listen_address (a name or an address, resolved
on the host as the role does; empty: every address), grafana_port and grafana_tls_enabled. Without a real
Grafana package the process under the unit is the scenario's stand-in (molecule/grafana/files/
grafana-standin.py), run by the role's own unit from the role's install: everything below is the role's
doing either way.

The paths, the user, the modes and the dashboards below are the grafana role's defaults and internals
(roles/grafana/defaults/main.yml, vars/main.yml, tasks/), which no inventory sets. What needs the inventory's
secrets or an HTTP client (the files' contents, the admin password as Grafana takes it, the API, the reload
calls) stays in the verify.
"""

import hashlib
import pathlib
import re

import pytest

SERVICE = "grafana-server.service"
# lookout's own unit (common's unit entry), which overrides the one a package ships.
UNIT_FILE = "/etc/systemd/system/grafana-server.service"
PACKAGE = "grafana"
SYSTEM_USER = "grafana"
SYSTEM_GROUP = "grafana"
# The home of each install method (vars/main.yml, __grafana_homepaths; grafana_archive_root /opt/grafana).
HOMEPATHS = {
    "apt": "/usr/share/grafana",
    "deb": "/usr/share/grafana",
    "archive": "/opt/grafana/grafana-{version}",
}
CONFIG_DIR = "/etc/grafana"
CONFIG_FILE = "/etc/grafana/grafana.ini"
PROVISIONING_DIR = "/etc/grafana/provisioning"
DASHBOARDS_DIR = "/etc/grafana/dashboards"
# grafana_dashboards: the role's dashboards (files/dashboards/), the only files of DASHBOARDS_DIR.
DASHBOARDS = ["conduit", "hosts", "loadtest", "probes"]
ROLE_DASHBOARDS = pathlib.Path(__file__).resolve().parents[2] / "roles/grafana/files/dashboards"
# Root owns the configuration; the service's group reads it (vars/main.yml: directories 0750, files 0640).
CONFIG_DIRS = [
    CONFIG_DIR,
    PROVISIONING_DIR,
    DASHBOARDS_DIR,
    *(f"{PROVISIONING_DIR}/{kind}" for kind in ["dashboards", "datasources", "plugins", "alerting"]),
]
# grafana.ini, the two secrets it names with $__file{}, the datasources and the dashboard provider.
PRIVATE_FILES = [
    CONFIG_FILE,
    "/etc/grafana/secret_key",
    "/etc/grafana/admin_password",
    f"{PROVISIONING_DIR}/datasources/lookout.yml",
    f"{PROVISIONING_DIR}/dashboards/lookout.yml",
]
# The service's own: grafana_data_dir, its plugins directory and grafana_logs_dir (tasks/install.yml).
SERVICE_DIRS = ["/var/lib/grafana", "/var/lib/grafana/plugins", "/var/log/grafana"]
TLS_KEY = "/etc/grafana/tls/grafana.key"
TLS_PUBLIC = ["/etc/grafana/tls/grafana.crt", "/etc/grafana/tls/grafana-ca.crt"]
# The apt method's keyring and source (tasks/install_apt.yml).
APT_FILES = ["/etc/apt/keyrings/grafana.asc", "/etc/apt/sources.list.d/grafana.sources"]
# What ss shows for a socket on every address.
WILDCARDS = {"0.0.0.0", "*", "::"}


@pytest.fixture
def homepath(inputs):
    """Grafana's home for this host's install method: the unit's --homepath and the system user's home."""
    return HOMEPATHS[inputs["grafana_install_method"]].format(version=inputs["grafana_version"])


def test_the_service_runs_and_starts_at_boot(running_and_enabled, unit_property):
    running_and_enabled(SERVICE)
    assert unit_property(SERVICE, "ActiveState") == "active"


def test_the_unit_is_lookouts_own_written_by_root_only(unit_property, mode_and_owner):
    assert unit_property(SERVICE, "FragmentPath") == UNIT_FILE
    mode_and_owner(UNIT_FILE, 0o644, "root", "root")


def test_the_units_exposure_is_at_most_the_limit(exposure_within_limit):
    exposure_within_limit(SERVICE)


def test_the_whole_service_runs_as_the_system_user(unit_property):
    assert unit_property(SERVICE, "User") == SYSTEM_USER
    assert unit_property(SERVICE, "Group") == SYSTEM_GROUP


def test_the_unit_runs_the_install_methods_binary_with_lookouts_configuration(unit_property, homepath):
    command = unit_property(SERVICE, "ExecStart")
    argv = re.search(r"argv\[\]=(.*?) ;", command)
    assert argv, command
    assert argv.group(1).split() == [
        f"{homepath}/bin/grafana",
        "server",
        f"--homepath={homepath}",
        f"--config={CONFIG_FILE}",
    ]


def test_grafanas_home_and_binary_are_writable_by_root_only(host, homepath):
    for path in [homepath, f"{homepath}/bin/grafana"]:
        found = host.file(path)
        assert found.exists, path
        assert found.user == "root", path
        assert found.mode & 0o022 == 0, f"{path}: {oct(found.mode)}"
    assert host.file(homepath).is_directory


def test_the_system_user_has_no_login(host, system_user_without_login, homepath):
    system_user_without_login(SYSTEM_USER)
    user = host.user(SYSTEM_USER)
    assert user.group == SYSTEM_GROUP
    # The Debian package records its home as the user's; the role keeps it for every method.
    assert user.home == homepath
    group = host.group(SYSTEM_GROUP)
    assert group.exists
    assert group.gid < 1000, f"{SYSTEM_GROUP}: gid {group.gid}"


def test_the_package_methods_hold_the_package_and_the_archive_installs_none(host, inputs):
    selection = host.run("dpkg-query --showformat=%s --show %s", "${Package} ${Status}", PACKAGE)
    if inputs["grafana_install_method"] in ("deb", "apt"):
        assert selection.rc == 0, selection.stderr
        assert selection.stdout.strip() == f"{PACKAGE} hold ok installed"
    else:
        assert selection.rc != 0, selection.stdout


@pytest.mark.parametrize("path", APT_FILES)
def test_the_apt_keyring_and_source_are_public_and_root_owned(host, inputs, path, mode_and_owner):
    if inputs["grafana_install_method"] != "apt":
        pytest.skip("grafana_install_method is not apt on this host")
    assert host.file(path).is_file, path
    mode_and_owner(path, 0o644, "root", "root")


def test_grafana_listens_where_the_inventory_says_only(inputs, listeners, address_of):
    found = listeners(inputs["grafana_port"])
    if inputs["grafana_listen_address"]:
        assert found == {address_of(inputs["grafana_listen_address"])}
    else:
        assert found, "nothing listens"
        assert found <= WILDCARDS, found


@pytest.mark.parametrize("path", CONFIG_DIRS)
def test_the_configuration_directories_are_closed_to_others(host, path, mode_and_owner):
    assert host.file(path).is_directory, path
    mode_and_owner(path, 0o750, "root", SYSTEM_GROUP)


@pytest.mark.parametrize("path", PRIVATE_FILES)
def test_configuration_secrets_and_provisioning_are_readable_by_the_service_only(host, path, mode_and_owner):
    assert host.file(path).is_file, path
    mode_and_owner(path, 0o640, "root", SYSTEM_GROUP)


# side_effect.yml leaves a stale dashboard file there before the role's second run, which removes it.
def test_the_dashboard_directory_holds_the_roles_dashboards_only(host):
    assert sorted(host.file(DASHBOARDS_DIR).listdir()) == [f"{name}.json" for name in DASHBOARDS]


@pytest.mark.parametrize("name", DASHBOARDS)
def test_each_dashboard_is_the_roles_file_readable_by_the_service_only(host, name, mode_and_owner):
    path = f"{DASHBOARDS_DIR}/{name}.json"
    assert host.file(path).is_file, path
    mode_and_owner(path, 0o640, "root", SYSTEM_GROUP)
    expected = hashlib.sha256((ROLE_DASHBOARDS / f"{name}.json").read_bytes()).hexdigest()
    assert host.file(path).sha256sum == expected, path


@pytest.mark.parametrize("path", SERVICE_DIRS)
def test_the_data_plugins_and_logs_directories_are_the_services_only(host, path, mode_and_owner):
    assert host.file(path).is_directory, path
    mode_and_owner(path, 0o750, SYSTEM_USER, SYSTEM_GROUP)


def test_the_tls_key_is_the_services_only_and_the_certificates_public(tls_files):
    tls_files("grafana_tls_enabled", SYSTEM_GROUP, [TLS_KEY], TLS_PUBLIC)
