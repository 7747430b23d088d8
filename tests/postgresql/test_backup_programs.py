"""lookout-pg-backup and lookout-pg-restore-check against a real throwaway cluster: dumps that restore,
checksums, file modes, retention, failures that leave nothing behind, metrics that node_exporter and
promtool accept, and restore checks that count what the database holds."""

import hashlib
import json
import os
import re
import stat
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from controller_helpers import ROOT, tool
from prometheus_client.parser import text_string_to_metric_families

FILES = ROOT / "roles" / "postgresql" / "files"
BACKUP = FILES / "lookout-pg-backup"
RESTORE_CHECK = FILES / "lookout-pg-restore-check"
DUMP_NAME = re.compile(r"(?P<db>.+)-(?P<stamp>\d{8}T\d{6}Z)(?:-(?P<seq>\d+))?\.dump")

SHOP_SCHEMA = '''
CREATE TABLE items (id int PRIMARY KEY, name text);
INSERT INTO items SELECT i, 'item ' || i FROM generate_series(1, 3) AS i;
CREATE TABLE empty (id int);
CREATE TABLE events (at date NOT NULL, what text) PARTITION BY RANGE (at);
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
INSERT INTO events VALUES ('2025-03-01', 'a'), ('2025-04-01', 'b'), ('2026-05-01', 'c'), ('2026-06-01', 'd');
CREATE VIEW item_names AS SELECT name FROM items;
CREATE SCHEMA sales;
CREATE TABLE sales."Odd ""Name""" (n int);
INSERT INTO sales."Odd ""Name""" SELECT generate_series(1, 5);
'''
# Partitions count in their parent; views hold no rows of their own.
SHOP_TABLES = {"public.empty": 0, "public.events": 4, "public.items": 3, 'sales.Odd "Name"': 5}


@dataclass(frozen=True)
class Work:
    """One test's backup directory, textfile directory and report, all the postgres user's."""

    dumps: Path
    textfiles: Path

    @property
    def backup_prom(self) -> Path:
        return self.textfiles / "lookout_pg_backup.prom"

    @property
    def check_prom(self) -> Path:
        return self.textfiles / "lookout_pg_restore_check.prom"

    @property
    def report(self) -> Path:
        return self.textfiles.parent / "restore-check.json"


@pytest.fixture
def work(cluster) -> Work:
    root = cluster.postgres_dir("work")
    dumps, textfiles = root / "dumps", root / "textfiles"
    cluster.run("mkdir", str(dumps), str(textfiles))
    return Work(dumps, textfiles)


@pytest.fixture(scope="session")
def shop(cluster) -> str:
    cluster.sql("postgres", "CREATE DATABASE shop")
    cluster.sql("shop", SHOP_SCHEMA)
    return "shop"


def backup(
    cluster, work: Work, database: str, keep: int = 3, check: bool = False
) -> subprocess.CompletedProcess:
    return cluster.run(
        *(str(BACKUP), "--database", database, "--dir", str(work.dumps), "--keep", str(keep)),
        *("--textfile", str(work.backup_prom)),
        check=check,
    )


def restore_check(cluster, work: Work, database: str, *extra: str) -> subprocess.CompletedProcess:
    return cluster.run(
        *(str(RESTORE_CHECK), "--database", database, "--dir", str(work.dumps)),
        *("--textfile", str(work.check_prom), "--report", str(work.report), *extra),
        check=False,
    )


def metrics(path: Path, database: str) -> dict[str, float]:
    """Metric name -> value of a textfile that promtool lints clean, every family a documented gauge and
    every sample labelled with the database; the checksum info's extra labels under name:label."""
    text = path.read_text()
    lint = subprocess.run(
        [tool("promtool"), "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        assert family.type == "gauge" and family.documentation, family
        for sample in family.samples:
            assert sample.labels.pop("database") == database, sample
            assert sample.name not in values, f"{sample.name} twice"
            values[sample.name] = sample.value
            values.update({f"{sample.name}:{label}": value for label, value in sample.labels.items()})
    return values


def dumps_in(work: Work) -> list[Path]:
    """Oldest first, by stamp and then collision suffix ('-1.dump' sorts before '.dump' as text)."""

    def age(path: Path) -> tuple[str, int]:
        name = DUMP_NAME.fullmatch(path.name)
        return name["stamp"], int(name["seq"] or 0)

    return sorted(work.dumps.glob("*.dump"), key=age)


def read_only(directory: Path) -> None:
    """As the restore check's unit leaves the backup directory: the check must not need to write there."""
    directory.chmod(0o555)


def scratch_databases(cluster) -> str:
    return cluster.sql(
        "postgres", "SELECT string_agg(datname, ',') FROM pg_database WHERE datname LIKE '%restore%'"
    )


def test_backup_writes_a_restorable_dump_with_its_checksum_and_metrics(cluster, work, shop):
    before = time.time()
    result = backup(cluster, work, shop, check=True)
    after = time.time()

    [dump] = dumps_in(work)
    name = DUMP_NAME.fullmatch(dump.name)
    assert name and name["db"] == shop and name["seq"] is None, dump.name
    stamped = datetime.strptime(name["stamp"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
    assert int(before) <= stamped <= after
    assert "TABLE public items " in cluster.run("pg_restore", "--list", str(dump)).stdout

    digest = hashlib.sha256(dump.read_bytes()).hexdigest()
    sidecar = dump.with_name(f"{dump.name}.sha256")
    assert sidecar.read_text() == f"{digest}  {dump.name}\n"
    verified = subprocess.run(["sha256sum", "--check", "--strict", sidecar.name], cwd=work.dumps, check=False)
    assert verified.returncode == 0

    for path, mode in ((dump, 0o640), (sidecar, 0o640), (work.backup_prom, 0o644)):
        assert stat.S_IMODE(path.stat().st_mode) == mode, path
    assert dump.owner() == "postgres"
    hidden = {f".backup-state-{shop}.json", f".backup-{shop}.lock"}
    assert {path.name for path in work.dumps.iterdir()} == {dump.name, sidecar.name, *hidden}
    assert [path.name for path in work.textfiles.iterdir()] == [work.backup_prom.name]

    values = metrics(work.backup_prom, shop)
    assert values["lookout_backup_last_run_success"] == 1
    assert before <= values["lookout_backup_last_run_timestamp_seconds"] <= after
    assert (
        values["lookout_backup_last_success_timestamp_seconds"]
        == values["lookout_backup_last_run_timestamp_seconds"]
    )
    assert values["lookout_backup_last_size_bytes"] == dump.stat().st_size
    assert 0 < values["lookout_backup_last_duration_seconds"] <= after - before
    assert values["lookout_backup_last_checksum_info"] == 1
    assert values["lookout_backup_last_checksum_info:file"] == dump.name
    assert values["lookout_backup_last_checksum_info:sha256"] == digest
    assert values["lookout_backup_dumps_kept"] == 1

    [summary] = result.stdout.splitlines()
    assert dump.name in summary and digest in summary and f" {dump.stat().st_size} bytes" in summary


def seed(work: Work, *names: str, mtime: float | None = None) -> None:
    for name in names:
        path = work.dumps / name
        path.write_text(f"seeded {name}\n")
        if mtime is not None:
            os.utime(path, (mtime, mtime))


def test_keep_removes_the_oldest_dumps_with_their_sidecars_and_stale_partials(cluster, work, shop):
    old_dumps = ["shop-20200101T000000Z.dump", "shop-20200102T000000Z.dump"]
    newer_dumps = ["shop-20200103T000000Z.dump", "shop-20200103T000000Z-1.dump"]
    others = [
        "shop-x-20200101T000000Z.dump",
        "shopx-20200101T000000Z.dump",
        ".shop-x-20200101T000000Z-k2j4h5g6.dump.partial",
        "notes.txt",
    ]
    seed(work, *old_dumps, *newer_dumps, *others)
    seed(work, *(f"{name}.sha256" for name in old_dumps + newer_dumps))
    seed(work, ".shop-20200101T000000Z-a1b2c3d4.dump.partial", mtime=time.time() - 3600)

    backup(cluster, work, shop, keep=3, check=True)

    [written] = set(path.name for path in dumps_in(work)) - set(newer_dumps + others)
    kept = [*newer_dumps, written]
    assert sorted(
        path.name for path in work.dumps.iterdir() if not path.name.startswith(".backup")
    ) == sorted([*kept, *(f"{name}.sha256" for name in kept), *others])
    assert metrics(work.backup_prom, shop)["lookout_backup_dumps_kept"] == 3


def test_the_dump_just_written_survives_dumps_stamped_later(cluster, work, shop):
    """A clock stepped back must not make the run delete its own dump."""
    seed(work, "shop-29991231T235959Z.dump")
    backup(cluster, work, shop, keep=1, check=True)
    names = [path.name for path in dumps_in(work)]
    assert len(names) == 2 and "shop-29991231T235959Z.dump" in names, names
    assert metrics(work.backup_prom, shop)["lookout_backup_dumps_kept"] == 2


def test_a_dump_never_replaces_one_with_the_same_stamp(cluster, work, shop):
    now = int(time.time())
    taken = [f"shop-{datetime.fromtimestamp(now + s, UTC):%Y%m%dT%H%M%SZ}.dump" for s in range(-1, 30)]
    seed(work, *taken)
    backup(cluster, work, shop, keep=100, check=True)
    for name in taken:
        assert (work.dumps / name).read_text() == f"seeded {name}\n"
    [written] = set(path.name for path in dumps_in(work)) - set(taken)
    assert DUMP_NAME.fullmatch(written)["seq"] == "1", written
    assert (work.dumps / f"{written}.sha256").read_text().endswith(f"  {written}\n")


def test_a_failed_dump_leaves_no_file_and_keeps_the_last_success(cluster, work):
    cluster.sql("postgres", "CREATE DATABASE doomed")
    cluster.sql("doomed", "CREATE TABLE t (n int); INSERT INTO t VALUES (1);")
    backup(cluster, work, "doomed", check=True)
    succeeded = metrics(work.backup_prom, "doomed")
    files = sorted(path.name for path in work.dumps.iterdir())
    cluster.sql("postgres", "DROP DATABASE doomed")
    time.sleep(0.01)

    failed = backup(cluster, work, "doomed")

    assert failed.returncode != 0
    assert 'database "doomed" does not exist' in failed.stderr
    assert sorted(path.name for path in work.dumps.iterdir()) == files
    values = metrics(work.backup_prom, "doomed")
    assert values["lookout_backup_last_run_success"] == 0
    assert (
        values["lookout_backup_last_run_timestamp_seconds"]
        > succeeded["lookout_backup_last_run_timestamp_seconds"]
    )
    kept_figures = [name for name in succeeded if not name.startswith("lookout_backup_last_run_")]
    assert len(kept_figures) == 7
    assert {name: values[name] for name in kept_figures} == {name: succeeded[name] for name in kept_figures}


def test_restore_check_counts_the_rows_of_every_table(cluster, work, shop):
    backup(cluster, work, shop, check=True)
    [dump] = dumps_in(work)
    read_only(work.dumps)
    before = time.time()

    result = restore_check(cluster, work, shop)

    assert result.returncode == 0, result.stderr
    report = json.loads(work.report.read_text())
    assert report["tables"] == SHOP_TABLES
    assert report["success"] is True and report["error"] is None
    assert report["dump"] == dump.name
    assert report["sha256"] == hashlib.sha256(dump.read_bytes()).hexdigest()
    checked_at = datetime.strptime(report["checked_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert int(before) <= checked_at.timestamp() <= time.time()
    assert 0 < report["seconds"] < 30
    values = metrics(work.check_prom, shop)
    assert values["lookout_restore_check_success"] == 1
    assert values["lookout_restore_check_tables"] == 4
    assert values["lookout_restore_check_rows"] == 12
    assert values["lookout_restore_check_dump_timestamp_seconds"] == pytest.approx(
        dump.stat().st_mtime, abs=1e-3
    )
    run_at = values["lookout_restore_check_last_run_timestamp_seconds"]
    assert values["lookout_restore_check_last_success_timestamp_seconds"] == run_at
    assert 0 < values["lookout_restore_check_duration_seconds"] <= time.time() - before
    assert scratch_databases(cluster) == ""
    assert f"{len(SHOP_TABLES)} tables, 12 rows" in result.stdout


def test_a_corrupt_dump_or_a_checksum_mismatch_fails_and_keeps_the_last_success(cluster, work, shop):
    backup(cluster, work, shop, check=True)
    [dump] = dumps_in(work)
    read_only(work.dumps)
    assert restore_check(cluster, work, shop).returncode == 0
    succeeded_at = metrics(work.check_prom, shop)["lookout_restore_check_last_success_timestamp_seconds"]
    sidecar = dump.with_name(f"{dump.name}.sha256")
    data = bytearray(dump.read_bytes())

    data[len(data) // 2] ^= 0xFF
    dump.write_bytes(data)
    mismatch = restore_check(cluster, work, shop)
    mismatch_report = json.loads(work.report.read_text())

    # The sidecar is made to match: pg_restore is what must refuse the bytes.
    data[:5] = b"XXXXX"
    dump.write_bytes(data)
    sidecar.write_text(f"{hashlib.sha256(data).hexdigest()}  {dump.name}\n")
    corrupt = restore_check(cluster, work, shop)
    corrupt_report = json.loads(work.report.read_text())

    assert mismatch.returncode != 0 and "sha256 mismatch" in mismatch.stderr
    assert mismatch_report["success"] is False and "sha256 mismatch" in mismatch_report["error"]
    assert corrupt.returncode != 0 and "pg_restore" in corrupt.stderr
    assert corrupt_report["success"] is False and corrupt_report["dump"] == dump.name
    assert "pg_restore" in corrupt_report["error"] and corrupt_report["tables"] == {}
    values = metrics(work.check_prom, shop)
    assert values["lookout_restore_check_success"] == 0
    assert values["lookout_restore_check_last_success_timestamp_seconds"] == succeeded_at
    assert values["lookout_restore_check_last_run_timestamp_seconds"] > succeeded_at
    assert values["lookout_restore_check_rows"] == 0
    assert scratch_databases(cluster) == ""


def test_restore_check_without_a_dump_fails_and_says_so(cluster, work, shop):
    result = restore_check(cluster, work, shop)

    assert result.returncode != 0
    assert f"no dump of shop in {work.dumps}" in result.stderr
    report = json.loads(work.report.read_text())
    assert report["success"] is False and report["dump"] is None
    assert report["error"] == f"no dump of shop in {work.dumps}"
    values = metrics(work.check_prom, shop)
    assert values["lookout_restore_check_success"] == 0
    assert values["lookout_restore_check_last_success_timestamp_seconds"] == 0
    assert "lookout_restore_check_dump_timestamp_seconds" not in values


def test_dump_option_checks_that_dump_instead_of_the_newest(cluster, work):
    cluster.sql("postgres", "CREATE DATABASE ledger")
    cluster.sql("ledger", "CREATE TABLE entries (n int); INSERT INTO entries SELECT generate_series(1, 2);")
    backup(cluster, work, "ledger", check=True)
    cluster.sql("ledger", "INSERT INTO entries SELECT generate_series(3, 5);")
    backup(cluster, work, "ledger", check=True)
    older, newer = dumps_in(work)

    newest = restore_check(cluster, work, "ledger")
    newest_report = json.loads(work.report.read_text())
    picked = restore_check(cluster, work, "ledger", "--dump", older.name)
    picked_report = json.loads(work.report.read_text())

    assert newest.returncode == 0 and picked.returncode == 0, newest.stderr + picked.stderr
    assert (newest_report["dump"], newest_report["tables"]) == (newer.name, {"public.entries": 5})
    assert (picked_report["dump"], picked_report["tables"]) == (older.name, {"public.entries": 2})


def test_arguments_that_would_lose_data_are_refused(cluster, work, shop):
    same = restore_check(cluster, work, shop, "--scratch-database", shop)
    assert same.returncode == 2 and "must differ" in same.stderr
    assert cluster.sql("postgres", "SELECT count(*) FROM pg_database WHERE datname = 'shop'") == "1"
    assert backup(cluster, work, shop, keep=0).returncode == 2
    assert backup(cluster, work, "dbname=shop host=elsewhere").returncode == 2
    assert not work.report.exists() and list(work.dumps.iterdir()) == []


def test_programs_find_their_module_through_a_symlink_without_the_script_directory_on_the_path(cluster):
    """The role may call them through links elsewhere; under `python3 -I` (or PYTHONSAFEPATH) Python adds
    no script directory of its own, so only the programs' own lookup of their real directory finds the
    shared module."""
    links = cluster.postgres_dir("bin")
    for program in (BACKUP, RESTORE_CHECK):
        (links / program.name).symlink_to(program)
        result = cluster.run("/usr/bin/python3", "-I", str(links / program.name), "--help", check=False)
        assert result.returncode == 0, result.stderr
