"""The monitoring core on a converged host (molecule/monitoring: monitor1), read with pytest-testinfra.

Run by the scenario's verify, after the converge, the idempotence run and side_effect.yml's archive-method
run. What needs the inventory's secrets (the web configurations hold a hash, never the password) stays in
verify.yml.
"""

import pytest

SERVERS = ["prometheus", "prometheus-blackbox-exporter", "alertmanager"]
SERVICES = [*SERVERS, "prometheus-node-exporter"]
# Every configuration file and secret of the four services: mode 0640, owned by root, readable by the group
# the service runs as.
PRIVATE_FILES = {
    "/etc/prometheus/prometheus.yml": "prometheus",
    "/etc/prometheus/lookout.rules.yml": "prometheus",
    "/etc/prometheus/blackbox.yml": "prometheus",
    "/etc/prometheus/prometheus-web.yml": "prometheus",
    "/etc/prometheus/blackbox-web.yml": "prometheus",
    "/etc/prometheus/client-self.password": "prometheus",
    "/etc/prometheus/client-blackbox.password": "prometheus",
    "/etc/prometheus/client-alertmanager.password": "prometheus",
    "/etc/prometheus/tls/prometheus.key": "prometheus",
    "/etc/prometheus/tls/blackbox_exporter.key": "prometheus",
    "/etc/alertmanager/alertmanager.yml": "alertmanager",
    "/etc/alertmanager/slack_api_url": "alertmanager",
    "/etc/alertmanager/alertmanager-web.yml": "alertmanager",
    "/etc/alertmanager/tls/alertmanager.key": "alertmanager",
    "/etc/prometheus-node-exporter/tls/node_exporter.key": "prometheus",
}


@pytest.mark.parametrize("service", SERVICES)
def test_the_service_runs_and_starts_at_boot(running_and_enabled, service):
    running_and_enabled(service)


@pytest.mark.parametrize("service", SERVICES)
def test_the_units_exposure_is_at_most_the_limit(exposure_within_limit, service):
    exposure_within_limit(service)


@pytest.mark.parametrize("service", SERVICES)
def test_the_service_runs_as_a_system_user_without_a_login(host, unit_property, service):
    name = unit_property(service, "User")
    user = host.user(name)
    assert name and name != "root"
    assert user.uid < 1000
    assert user.shell in ("/usr/sbin/nologin", "/bin/false")


@pytest.mark.parametrize("path, group", sorted(PRIVATE_FILES.items()))
def test_configuration_and_secrets_are_readable_by_the_service_only(host, mode_and_owner, path, group):
    assert host.file(path).is_file, path
    mode_and_owner(path, 0o640, "root", group)


@pytest.mark.parametrize("service", SERVERS)
def test_each_server_reads_its_web_configuration(unit_property, service):
    command = unit_property(service, "ExecStart")
    assert "--web.config.file=/etc/" in command
