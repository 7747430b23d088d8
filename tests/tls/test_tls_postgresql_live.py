"""PostgreSQL's TLS, live on 127.0.0.1 with Debian's server and what the postgresql role writes: common's
`tls` entry signs the server's certificate with a test CA and writes its key as the role does (root-owned,
group postgres, 0640); the role's settings template (lookout.conf.j2, postgresql_tls_enabled) names them.
The server then starts on a throwaway cluster whose pg_hba.conf takes TLS clients only (hostssl, as the
role's):

- a client verifying the server against the CA's copy (libpq sslmode=verify-full, Conduit's setting with TLS)
  connects over TLS 1.2 or later;
- a client trusting another CA fails verification, and one without TLS is refused: the check is real."""

import json
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml
from controller_helpers import ROOT, ansible_playbook, free_port, local_host, self_signed_pem

SERVER_ROOT = Path("/usr/lib/postgresql")
ROLE = ROOT / "roles" / "postgresql"

PLAY = [
    {
        "name": "The postgresql role's certificate and settings",
        "hosts": "db",
        "gather_facts": False,
        "tasks": [
            {
                "name": "The role's defaults and internals",
                "ansible.builtin.include_vars": {"file": "{{ item }}"},
                "loop": [str(ROLE / "defaults" / "main.yml"), str(ROLE / "vars" / "main.yml")],
            },
            {
                "name": "Take the certificate as the role does",
                "ansible.builtin.include_role": {"name": "common", "tasks_from": "tls"},
                "vars": {
                    "common_tls_role": "postgresql",
                    "common_tls_files": "{{ __postgresql_tls_files }}",
                    "common_tls_group": "postgres",
                },
            },
            {
                "name": "Render the settings",
                "ansible.builtin.template": {
                    "src": str(ROLE / "templates" / "lookout.conf.j2"),
                    "dest": "{{ settings_file }}",
                    "mode": "0644",
                },
            },
        ],
    }
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    found = sorted(SERVER_ROOT.glob("*/bin/initdb"), key=lambda initdb: int(initdb.parts[-3]))
    if not found:
        pytest.skip(f"no PostgreSQL server under {SERVER_ROOT}/*/bin; `scripts/setup.sh tools` installs it")
    if os.geteuid() != 0:
        pytest.skip("the server runs as the postgres user, which needs root to switch to")
    bindir = found[-1].parent
    owner = pwd.getpwnam("postgres")
    work = tmp_path_factory.mktemp("pg-tls")
    # The cluster lives where the postgres user can reach it (pytest's temporary root is private to root).
    base = Path(tempfile.mkdtemp(prefix="lookout-pg-tls-"))
    os.chmod(base, 0o755)
    config_dir, data, sockets = base / "etc", base / "data", base / "sockets"
    config_dir.mkdir()
    sockets.mkdir()
    for path in (base, sockets):
        os.chown(path, owner.pw_uid, owner.pw_gid)
    port = free_port()
    settings = config_dir / "lookout.conf"
    # Extra variables, since they win over the role's files read by include_vars: this test's inputs, and
    # the role's directory under this test's.
    inputs = {
        "__postgresql_config_dir": str(config_dir),
        "settings_file": str(settings),
        "common_certificate_packages": [],
        "common_ca_trust_path": "",
        "postgresql_tls_enabled": True,
        "postgresql_tls_names": ["localhost"],
        "postgresql_tls_ca_name": "pg-tls-live",
        "postgresql_tls_ca_dir": str(work / "ca"),
        "postgresql_listen_addresses": ["127.0.0.1"],
        "postgresql_port": port,
    }
    playbook = work / "play.yml"
    playbook.write_text(yaml.safe_dump(PLAY, sort_keys=False))
    run = ansible_playbook(playbook, {"all": {"hosts": {"db": local_host()}}}, work, "-e", json.dumps(inputs))
    assert run.returncode == 0, run.stdout + run.stderr
    tls = config_dir / "tls"
    key = tls / "postgresql.key"
    assert (key.stat().st_mode & 0o777, key.stat().st_uid, key.stat().st_gid) == (0o640, 0, owner.pw_gid)

    def as_postgres(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["runuser", "-u", "postgres", "--", *argv],
            capture_output=True,
            text=True,
            timeout=60,
            check=check,
        )

    initdb = as_postgres(str(bindir / "initdb"), "--no-sync", "--auth=trust", f"--pgdata={data}", check=False)
    assert initdb.returncode == 0, initdb.stdout + initdb.stderr
    (data / "pg_hba.conf").write_text("local all postgres peer\nhostssl all postgres 127.0.0.1/32 trust\n")
    with (data / "postgresql.conf").open("a") as conf:
        conf.write(f"include '{settings}'\nunix_socket_directories = '{sockets}'\nfsync = off\n")
    started = as_postgres(
        str(bindir / "pg_ctl"), "-D", str(data), "-l", str(base / "server.log"), "-w", "start", check=False
    )
    try:
        log = (base / "server.log").read_text() if (base / "server.log").exists() else ""
        assert started.returncode == 0, started.stderr + log
        yield {
            "port": port,
            "ca": tls / "postgresql-ca.crt",
            "work": work,
            "bindir": bindir,
            "log": base / "server.log",
        }
    finally:
        as_postgres(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(base, ignore_errors=True)


def _psql(server, sslmode: str, ca: Path | None = None) -> subprocess.CompletedProcess:
    dsn = f"host=localhost port={server['port']} dbname=postgres user=postgres sslmode={sslmode}"
    if ca:
        dsn += f" sslrootcert={ca}"
    return subprocess.run(
        [str(server["bindir"] / "psql"), "-X", "-A", "-t", dsn, "-c",
         "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


def test_a_client_verifying_against_the_ca_connects_over_tls(server):
    result = _psql(server, "verify-full", server["ca"])
    assert result.returncode == 0, result.stderr + server["log"].read_text()
    encrypted, version = result.stdout.strip().split("|")
    assert encrypted == "t"
    assert version in ("TLSv1.2", "TLSv1.3")


def test_a_client_trusting_another_ca_fails_verification(server):
    other = server["work"] / "other-ca.crt"
    other.write_text(self_signed_pem(-1, 30, "another CA")[0])
    result = _psql(server, "verify-full", other)
    assert result.returncode != 0
    assert "certificate verify failed" in result.stderr


def test_a_client_without_tls_is_refused(server):
    result = _psql(server, "disable")
    assert result.returncode != 0
    assert "no encryption" in result.stderr
