"""PostgreSQL, its backup jobs and its exporter on a converged database host (molecule/stack: db1), read with
pytest-testinfra.

Run by the stack's verify_database.yml once the backup and the restore check have run, with the host's inputs
in LOOKOUT_HOST_INPUTS (conftest.py): postgresql_port, postgresql_listen_addresses (names resolved on the
host), postgresql_tls_enabled, postgresql_backup_databases, postgres_exporter_port and
postgres_exporter_tls_enabled. The cluster's version is the one Debian's package made (pg_lsclusters). The
paths, users and modes below are the postgresql and postgres_exporter roles' defaults and internals
(defaults/main.yml, vars/main.yml, tasks/), which no inventory sets; the backup programs' own modes are in
roles/postgresql/files/. What needs SQL or an HTTP client (TLS of the connections, the kill drill, the
restored rows, the metrics in Prometheus) stays in the verify.
"""

import posixpath

import pytest

# postgresql_cluster and the package that owns the server.
CLUSTER = "main"
SERVER_USER = "postgres"
JOBS = ["lookout-pg-backup", "lookout-pg-restore-check"]
BACKUP_LIB_DIR = "/usr/local/lib/lookout-backup"
BACKUP_PROGRAMS = ["lookout-pg-backup", "lookout-pg-restore-check"]
# postgresql_backup_dir, the restore check's reports and the jobs' metrics: the postgres user's.
BACKUP_DIR = "/var/backups/postgresql"
REPORTS_DIR = "/var/lib/postgresql/lookout-reports"
METRICS_DIR = "/var/lib/postgresql/lookout-metrics"
# node_exporter_textfile_directory (group_vars/all/node_exporter.yml), where the metrics are linked.
TEXTFILE_DIR = "/var/lib/prometheus/node-exporter"
EXPORTER = "prometheus-postgres-exporter.service"
EXPORTER_PACKAGE = "prometheus-postgres-exporter"
EXPORTER_USER = "prometheus"
EXPORTER_GROUP = "prometheus"
EXPORTER_CONFIG_DIR = "/etc/prometheus-postgres-exporter"


@pytest.fixture
def cluster(host):
    """The lookout cluster as pg_lsclusters lists it: version, port, status, owner, data directory."""
    # One line per cluster (Ver Cluster Port Status Owner Data directory Log file), under a header line.
    for line in host.check_output("pg_lsclusters").splitlines():
        version, name, port, status, owner, data_dir = line.split()[:6]
        if name == CLUSTER and version[0].isdigit():
            return {"version": version, "port": int(port), "status": status, "owner": owner, "data": data_dir}
    pytest.fail(f"pg_lsclusters lists no cluster {CLUSTER!r}")


@pytest.fixture
def server_unit(cluster):
    return f"postgresql@{cluster['version']}-{CLUSTER}.service"


@pytest.fixture
def config_dir(cluster):
    return f"/etc/postgresql/{cluster['version']}/{CLUSTER}"


def timers(inputs):
    return [f"{job}@{database}.timer" for job in JOBS for database in inputs["postgresql_backup_databases"]]


def test_the_server_and_the_python_driver_are_installed(host, cluster):
    assert host.package(f"postgresql-{cluster['version']}").is_installed
    assert host.package("python3-psycopg2").is_installed


def test_the_cluster_is_online_on_its_port(inputs, cluster):
    assert cluster["status"] == "online"
    assert cluster["port"] == int(inputs["postgresql_port"])
    assert cluster["owner"] == SERVER_USER


def test_the_server_runs_and_starts_at_boot(running_and_enabled, server_unit):
    running_and_enabled(server_unit)


def test_the_server_unit_runs_as_postgres(unit_property, server_unit):
    assert unit_property(server_unit, "User") == SERVER_USER
    assert unit_property(server_unit, "Group") == SERVER_USER


def test_the_server_units_exposure_is_at_most_the_limit(exposure_within_limit, server_unit):
    exposure_within_limit(server_unit)


def test_the_hardening_drop_in_is_written_by_root_only(server_unit, mode_and_owner):
    mode_and_owner(f"/etc/systemd/system/{server_unit}.d/lookout.conf", 0o644, "root", "root")


def test_the_data_directory_is_closed_to_others(host, cluster):
    data_dir = host.file(cluster["data"])
    assert data_dir.is_directory
    assert data_dir.user == SERVER_USER
    assert data_dir.mode & 0o007 == 0, oct(data_dir.mode)


@pytest.mark.parametrize("name", ["conf.d/lookout.conf", "pg_hba.conf"])
def test_the_settings_and_the_client_rules_are_the_servers_only(config_dir, name, mode_and_owner):
    mode_and_owner(posixpath.join(config_dir, name), 0o640, SERVER_USER, SERVER_USER)


def test_the_tls_key_is_the_servers_only_and_the_certificates_public(config_dir, tls_files):
    tls = f"{config_dir}/tls"
    public = [f"{tls}/postgresql.crt", f"{tls}/postgresql-ca.crt"]
    tls_files("postgresql_tls_enabled", SERVER_USER, [f"{tls}/postgresql.key"], public)


def test_the_server_listens_on_loopback_and_its_address_only(inputs, listeners, address_of):
    found = listeners(inputs["postgresql_port"])
    expected = {address_of(name) for name in inputs["postgresql_listen_addresses"]}
    assert expected <= found, found
    # localhost may also bring ::1.
    assert found - expected <= {"::1"}, found


def test_the_backup_timers_are_active_and_enabled(running_and_enabled, inputs):
    for timer in timers(inputs):
        running_and_enabled(timer)


@pytest.mark.parametrize("job", JOBS)
def test_the_backup_jobs_run_as_postgres(unit_property, inputs, job):
    for database in inputs["postgresql_backup_databases"]:
        assert unit_property(f"{job}@{database}.service", "User") == SERVER_USER


@pytest.mark.parametrize("job", JOBS)
def test_the_backup_jobs_exposure_is_at_most_the_limit(exposure_within_limit, inputs, job):
    for database in inputs["postgresql_backup_databases"]:
        exposure_within_limit(f"{job}@{database}.service")


@pytest.mark.parametrize("job", JOBS)
def test_the_backup_units_and_timers_are_written_by_root_only(job, mode_and_owner):
    for name in (f"{job}@.service", f"{job}@.timer"):
        mode_and_owner(f"/etc/systemd/system/{name}", 0o644, "root", "root")


@pytest.mark.parametrize("path, mode", [(BACKUP_DIR, 0o750), (REPORTS_DIR, 0o750), (METRICS_DIR, 0o755)])
def test_the_backup_directories_belong_to_postgres(host, path, mode, mode_and_owner):
    assert host.file(path).is_directory, path
    mode_and_owner(path, mode, SERVER_USER, SERVER_USER)


def test_the_backup_programs_are_root_owned(mode_and_owner):
    mode_and_owner(BACKUP_LIB_DIR, 0o755, "root", "root")
    for program in BACKUP_PROGRAMS:
        mode_and_owner(f"{BACKUP_LIB_DIR}/{program}", 0o755, "root", "root")
    mode_and_owner(f"{BACKUP_LIB_DIR}/lookout_pg_common.py", 0o644, "root", "root")


def test_every_dump_is_readable_by_postgres_only(host, inputs, mode_and_owner):
    for database in inputs["postgresql_backup_databases"]:
        dumps = host.check_output("find %s -maxdepth 1 -name %s", BACKUP_DIR, f"{database}-*.dump").split()
        assert dumps, f"no dump of {database} in {BACKUP_DIR}"
        for dump in dumps:
            mode_and_owner(dump, 0o640, SERVER_USER, SERVER_USER)


def test_the_restore_check_reports_are_readable_by_postgres_only(inputs, mode_and_owner):
    for database in inputs["postgresql_backup_databases"]:
        mode_and_owner(f"{REPORTS_DIR}/restore-check-{database}.json", 0o640, SERVER_USER, SERVER_USER)


def test_the_jobs_metrics_are_linked_into_the_textfile_directory(host, inputs, mode_and_owner):
    for database in inputs["postgresql_backup_databases"]:
        for name in (f"backup-{database}.prom", f"restore-check-{database}.prom"):
            mode_and_owner(f"{METRICS_DIR}/{name}", 0o644, SERVER_USER, SERVER_USER)
            link = host.file(f"{TEXTFILE_DIR}/lookout_{name}")
            assert link.is_symlink, link.path
            assert link.linked_to == f"{METRICS_DIR}/{name}"


def test_the_exporter_is_installed(host):
    assert host.package(EXPORTER_PACKAGE).is_installed


def test_the_exporter_runs_and_starts_at_boot(running_and_enabled):
    running_and_enabled(EXPORTER)


def test_the_exporters_exposure_is_at_most_the_limit(exposure_within_limit):
    exposure_within_limit(EXPORTER)


def test_the_exporter_runs_as_a_system_user_without_a_login(unit_property, system_user_without_login):
    assert unit_property(EXPORTER, "User") == EXPORTER_USER
    system_user_without_login(EXPORTER_USER)


# postgres_exporter_listen_address: 0.0.0.0 (the firewall and IPAddressAllow= keep the port to the monitoring
# hosts); testinfra counts a dual-stack listener as one on every IPv4 address too.
def test_the_exporter_listens_on_every_address(host, inputs):
    assert host.socket(f"tcp://0.0.0.0:{inputs['postgres_exporter_port']}").is_listening


def test_the_exporters_web_configuration_and_tls_files_modes_and_owners(tls_files):
    tls = f"{EXPORTER_CONFIG_DIR}/tls"
    private = [f"{EXPORTER_CONFIG_DIR}/web.yml", f"{tls}/postgres_exporter.key"]
    public = [f"{tls}/postgres_exporter.crt", f"{tls}/postgres_exporter-ca.crt"]
    tls_files("postgres_exporter_tls_enabled", EXPORTER_GROUP, private, public)


def test_the_exporter_reads_its_web_configuration(inputs, unit_property):
    inputs.require("postgres_exporter_tls_enabled")
    command = unit_property(EXPORTER, "ExecStart")
    assert f"--web.config.file={EXPORTER_CONFIG_DIR}/web.yml" in command
