"""A throwaway PostgreSQL cluster for the postgresql role's backup programs: Debian's server binaries, run
as the postgres OS user (the server refuses root), reachable only through a Unix socket in a private
directory, so it never meets the machine's own cluster."""

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SERVER_ROOT = Path("/usr/lib/postgresql")


def server_bindir() -> Path | None:
    """The newest installed server's bin directory."""
    found = sorted(SERVER_ROOT.glob("*/bin/initdb"), key=lambda initdb: int(initdb.parts[-3]))
    return found[-1].parent if found else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class Cluster:
    bindir: Path
    base: Path
    socket_dir: Path
    port: int

    def run(self, *argv: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        """argv as the postgres user, pointed at this cluster by PGHOST/PGPORT alone, as the timers' units
        point the programs at the host's cluster by libpq's defaults."""
        command = [
            *("runuser", "-u", "postgres", "--", "env", f"PATH={self.bindir}:/usr/bin:/bin"),
            *(f"PGHOST={self.socket_dir}", f"PGPORT={self.port}", "PYTHONDONTWRITEBYTECODE=1", *argv),
        ]
        result = subprocess.run(
            command, input=stdin, capture_output=True, text=True, timeout=60, check=False, cwd=self.base
        )
        if check and result.returncode != 0:
            pytest.fail(f"{' '.join(argv)} exited {result.returncode}:\n{result.stdout}{result.stderr}")
        return result

    def sql(self, database: str, query: str) -> str:
        psql = ("psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", f"--dbname={database}")
        return self.run(*psql, "--file=-", stdin=query).stdout.strip()

    def postgres_dir(self, name: str) -> Path:
        """A directory the programs may write, as the role's directories are the postgres user's."""
        path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.base))
        owner = pwd.getpwnam("postgres")
        os.chown(path, owner.pw_uid, owner.pw_gid)
        return path


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    bindir = server_bindir()
    if bindir is None:
        pytest.skip(f"no PostgreSQL server under {SERVER_ROOT}/*/bin; `scripts/setup.sh tools` installs it")
    if os.geteuid() != 0:
        pytest.skip("the throwaway cluster runs as the postgres user, which needs root to switch to")
    try:
        owner = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("no postgres OS user (Debian's postgresql package creates it)")
    base = Path(tempfile.mkdtemp(prefix="lookout-pg-test-"))
    data, sockets = base / "data", base / "sockets"
    sockets.mkdir()
    for path in (base, sockets):
        os.chown(path, owner.pw_uid, owner.pw_gid)
    server = Cluster(bindir, base, sockets, free_port())
    pg_ctl = str(bindir / "pg_ctl")
    try:
        server.run(str(bindir / "initdb"), "--no-sync", "--auth=trust", "--encoding=UTF8", f"--pgdata={data}")
        options = f"-k {sockets} -c listen_addresses='' -p {server.port} -c fsync=off"
        started = server.run(
            pg_ctl, "-D", str(data), "-l", str(base / "server.log"), "-o", options, "-w", "start", check=False
        )
        if started.returncode != 0:
            log = (base / "server.log").read_text() if (base / "server.log").exists() else ""
            pytest.fail(f"the throwaway cluster did not start:\n{started.stderr}\n{log}")
        yield server
    finally:
        if (data / "postmaster.pid").exists():
            server.run(pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(base, ignore_errors=True)
