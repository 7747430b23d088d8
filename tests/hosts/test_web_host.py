"""Conduit on a converged web host (molecule/conduit: web1, web2; molecule/stack: web1, web2), read with
pytest-testinfra.

Run by each scenario's verify, one run per web host, with the host's conduit inputs in LOOKOUT_HOST_INPUTS
(conftest.py): conduit_port, conduit_listen_address (a name or an address, resolved on the host as the role
does), conduit_tls_enabled and conduit_database_engine. The paths, the user and the modes below are the
conduit role's defaults (roles/conduit/defaults/main.yml, vars/main.yml, tasks/configure.yml), which no
inventory sets. What needs the inventory's secrets or an HTTP client (the secret as the service sees it,
/health, the API) stays in the verify.
"""

import posixpath

import pytest

SOCKET = "conduit.socket"
SERVICE = "conduit.service"
CANDIDATE = "conduit-candidate.service"
SYSTEM_USER = "conduit"
SYSTEM_GROUP = "conduit"
CONFIG_DIR = "/etc/conduit"
ENV_FILE = "/etc/conduit/conduit.env"
TLS_KEY = "/etc/conduit/tls/conduit.key"
TLS_PUBLIC = ["/etc/conduit/tls/conduit.crt", "/etc/conduit/tls/conduit-ca.crt"]
INSTALL_DIR = "/opt/conduit"
RELEASES_DIR = "/opt/conduit/releases"
CURRENT_LINK = "/opt/conduit/current"
# conduit_releases_keep: the serving release and the ones before it.
RELEASES_KEEP = 3
STATE_DIR = "/var/lib/conduit"
SQLITE_FILE = "/var/lib/conduit/conduit.db"
# The environment file (the secrets) and the gunicorn configuration: 0640 root:<service group>.
PRIVATE_FILES = [ENV_FILE, "/etc/conduit/gunicorn.conf.py"]


@pytest.mark.parametrize("unit", [SOCKET, SERVICE])
def test_the_socket_and_the_service_are_active_and_enabled(unit_property, unit):
    assert unit_property(unit, "ActiveState") == "active"
    assert unit_property(unit, "UnitFileState") == "enabled"


def test_the_candidate_is_not_running(unit_property):
    assert unit_property(CANDIDATE, "ActiveState") in ("inactive", "failed")


@pytest.mark.parametrize("unit", [SERVICE, CANDIDATE])
def test_the_units_exposure_is_at_most_the_limit(exposure_within_limit, unit):
    exposure_within_limit(unit)


@pytest.mark.parametrize("unit", [SOCKET, SERVICE, CANDIDATE])
def test_the_unit_files_are_written_by_root_only(unit_property, mode_and_owner, unit):
    mode_and_owner(unit_property(unit, "FragmentPath"), 0o644, "root", "root")


@pytest.mark.parametrize("unit", [SERVICE, CANDIDATE])
def test_both_units_run_as_the_system_user(unit_property, unit):
    assert unit_property(unit, "User") == SYSTEM_USER
    assert unit_property(unit, "Group") == SYSTEM_GROUP


@pytest.mark.parametrize("unit", [SERVICE, CANDIDATE])
def test_both_units_read_the_environment_file(unit_property, unit):
    assert unit_property(unit, "EnvironmentFiles").split()[0] == ENV_FILE


def test_the_system_user_has_no_login(host, system_user_without_login):
    system_user_without_login(SYSTEM_USER)
    assert host.user(SYSTEM_USER).group == SYSTEM_GROUP


def test_the_configuration_directory_is_closed_to_others(host, mode_and_owner):
    assert host.file(CONFIG_DIR).is_directory
    mode_and_owner(CONFIG_DIR, 0o750, "root", SYSTEM_GROUP)


@pytest.mark.parametrize("path", PRIVATE_FILES)
def test_configuration_and_secrets_are_readable_by_the_service_only(mode_and_owner, path):
    mode_and_owner(path, 0o640, "root", SYSTEM_GROUP)


def test_the_tls_key_is_the_services_only_and_the_certificates_public(tls_files):
    tls_files("conduit_tls_enabled", SYSTEM_GROUP, [TLS_KEY], TLS_PUBLIC)


def test_the_socket_listens_where_the_inventory_says_only(inputs, listeners, address_of):
    expected = address_of(inputs["conduit_listen_address"])
    assert listeners(inputs["conduit_port"]) == {expected}


def test_current_points_at_an_installed_release(host):
    current = host.file(CURRENT_LINK)
    assert current.is_symlink
    release = current.linked_to
    assert posixpath.dirname(release) == RELEASES_DIR, release
    # The role's mark of a complete release: pip writes the console script last.
    assert host.file(posixpath.join(release, "venv/bin/conduit")).is_file


def test_the_releases_are_writable_by_root_only(host):
    releases = [posixpath.join(RELEASES_DIR, name) for name in host.file(RELEASES_DIR).listdir()]
    for path in [INSTALL_DIR, RELEASES_DIR, *releases]:
        directory = host.file(path)
        assert directory.is_directory, path
        assert directory.user == "root", path
        assert directory.mode & 0o022 == 0, f"{path}: {oct(directory.mode)}"


def test_no_more_releases_are_kept_than_conduit_releases_keep(host):
    releases = host.file(RELEASES_DIR).listdir()
    assert 1 <= len(releases) <= RELEASES_KEEP, releases


def test_the_state_directory_belongs_to_the_service_user(host):
    directory = host.file(STATE_DIR)
    assert directory.is_directory
    assert (directory.user, directory.group) == (SYSTEM_USER, SYSTEM_GROUP)


def test_the_sqlite_database_belongs_to_the_service_user(host, inputs):
    if inputs["conduit_database_engine"] != "sqlite":
        pytest.skip("conduit_database_engine is not sqlite on this host")
    database = host.file(SQLITE_FILE)
    assert database.is_file
    assert database.user == SYSTEM_USER
