"""HAProxy on a converged frontend host (molecule/stack: lb1), read with pytest-testinfra.

Run by the stack's verify_frontend.yml, with the host's haproxy inputs in LOOKOUT_HOST_INPUTS (conftest.py):
haproxy_listen_address and haproxy_metrics_listen_address (names resolved on the host), haproxy_https_port,
haproxy_http_port, haproxy_metrics_port, haproxy_stats_socket_path and haproxy_metrics_tls_enabled. The
paths, the user and the modes below are the haproxy role's defaults and internals (defaults/main.yml,
vars/main.yml, tasks/), which no inventory sets. What needs a client (TLS, HSTS, the redirect, the body
limit, the slow clients, the backend servers' state) stays in the verify.
"""

import pytest

SERVICE = "haproxy.service"
PACKAGE = "haproxy"
SYSTEM_USER = "haproxy"
SYSTEM_GROUP = "haproxy"
CONFIG_FILE = "/etc/haproxy/haproxy.cfg"
DROP_IN = "/etc/systemd/system/haproxy.service.d/lookout-hardening.conf"
TLS_DIR = "/etc/haproxy/tls"
# The public certificate: its key and the bundle HAProxy reads (certificate and key) are private.
SITE_PRIVATE = ["/etc/haproxy/tls/site.key", "/etc/haproxy/tls/site.pem"]
SITE_PUBLIC = ["/etc/haproxy/tls/site.crt"]
# The metrics endpoint's own certificate (haproxy_metrics_tls_enabled), with the CA's copy.
METRICS_PRIVATE = ["/etc/haproxy/metrics-tls/metrics.key", "/etc/haproxy/metrics-tls/metrics.pem"]
METRICS_PUBLIC = ["/etc/haproxy/metrics-tls/metrics.crt", "/etc/haproxy/metrics-tls/metrics-ca.crt"]


def test_haproxy_is_installed(host):
    assert host.package(PACKAGE).is_installed


def test_the_service_runs_and_starts_at_boot(running_and_enabled):
    running_and_enabled(SERVICE)


def test_the_units_exposure_is_at_most_the_limit(exposure_within_limit):
    exposure_within_limit(SERVICE)


def test_the_whole_service_runs_as_the_system_user(unit_property):
    assert unit_property(SERVICE, "User") == SYSTEM_USER
    assert unit_property(SERVICE, "Group") == SYSTEM_GROUP


def test_the_system_user_has_no_login(system_user_without_login):
    system_user_without_login(SYSTEM_USER)


def test_the_hardening_drop_in_is_written_by_root_only(mode_and_owner):
    mode_and_owner(DROP_IN, 0o644, "root", "root")


def test_the_configuration_is_readable_by_the_service_only(mode_and_owner):
    mode_and_owner(CONFIG_FILE, 0o640, "root", SYSTEM_GROUP)


def test_the_tls_directory_is_closed_to_others(host, mode_and_owner):
    assert host.file(TLS_DIR).is_directory
    mode_and_owner(TLS_DIR, 0o750, "root", SYSTEM_GROUP)


def test_the_sites_key_and_bundle_are_the_services_only_and_its_certificate_public(tls_files):
    tls_files(None, SYSTEM_GROUP, SITE_PRIVATE, SITE_PUBLIC)


def test_the_metrics_key_and_bundle_are_the_services_only_and_the_certificates_public(tls_files):
    tls_files("haproxy_metrics_tls_enabled", SYSTEM_GROUP, METRICS_PRIVATE, METRICS_PUBLIC)


@pytest.mark.parametrize("port", ["haproxy_https_port", "haproxy_http_port"])
def test_the_public_ports_listen_where_the_inventory_says_only(inputs, listeners, address_of, port):
    expected = address_of(inputs["haproxy_listen_address"])
    assert listeners(inputs[port]) == {expected}


def test_the_metrics_endpoint_listens_on_the_hosts_address_only(inputs, listeners, address_of):
    expected = address_of(inputs["haproxy_metrics_listen_address"])
    assert listeners(inputs["haproxy_metrics_port"]) == {expected}


def test_the_runtime_api_socket_is_the_services_only(host, inputs, mode_and_owner):
    path = inputs["haproxy_stats_socket_path"]
    # A Unix socket (testinfra's socket listing reads only TCP/UDP through ss in these containers).
    assert host.file(path).is_socket
    mode_and_owner(path, 0o660, SYSTEM_USER, SYSTEM_GROUP)
