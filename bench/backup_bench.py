#!/usr/bin/env python3
"""Benchmark of the database backups: lookout-pg-backup, lookout-pg-restore-check and a live restore as
playbooks/restore.yml does it, on a Conduit database of realistic size.

Not a test: it prints figures and writes them as JSON. What it does:

1. starts a throwaway PostgreSQL cluster as tests/postgresql/conftest.py does (the newest server under
   /usr/lib/postgresql, initdb + pg_ctl as the postgres OS user, Unix socket in a private temporary
   directory, listen_addresses='', a free port), but with fsync on: initdb's default settings throughout;
2. creates the database `conduit` and its schema with the app's own migrations (`conduit db upgrade`),
   then loads, in one transaction of SQL (generate_series): 500 users, 50 tags, N articles (title,
   description, a body of 1-3 kB of generated prose, 3 tags each), about 3 favorites and 2 comments per
   article and 10 follows per user; then VACUUM ANALYZE;
3. per round (--repeat, default 3): runs lookout-pg-backup (as the timer's unit does: postgres user,
   keep 7), then lookout-pg-restore-check on that dump (its row counts must equal the live database's),
   then a live restore of that dump into `conduit` as roles/postgresql/tasks/restore.yml does it
   (pg_restore --clean --if-exists --single-transaction --exit-on-error), after which every table's row
   count and content digest must equal what they were before;
4. prints min / median / max of each figure and writes everything, with the load average before and
   after, the CPU count and the server version, to artifacts/bench/backup.json.

Usage (as root, from the repository root):

    .venv/bin/python bench/backup_bench.py [--articles 10000] [--repeat 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import pwd
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP_DIR = ROOT / "app"
FILES = ROOT / "roles" / "postgresql" / "files"
BACKUP = FILES / "lookout-pg-backup"
RESTORE_CHECK = FILES / "lookout-pg-restore-check"
SERVER_ROOT = Path("/usr/lib/postgresql")
DATABASE = "conduit"
USERS = 500
TAGS = 50
KEEP = 7  # postgresql_backup_keep's default
TIMEOUT = 3600

# The same query lookout-pg-restore-check counts with: one JSON line per table, partitions in their parent.
COUNT_ROWS = r"""
SELECT format('SELECT json_build_array(%L, %L, count(*)) FROM %I.%I',
              n.nspname, c.relname, n.nspname, c.relname)
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
ORDER BY n.nspname, c.relname
\gexec
"""
# An order-independent digest of every table's rows, so a restore that loses or changes content is caught
# even when the counts match.
DIGEST_ROWS = r"""
SELECT format('SELECT json_build_array(%L, md5(coalesce(string_agg(d, '','' ORDER BY d), ''''))) '
              'FROM (SELECT md5(t::text) AS d FROM %I.%I AS t) AS rows',
              n.nspname || '.' || c.relname, n.nspname, c.relname)
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
ORDER BY n.nspname, c.relname
\gexec
"""

# Words of the generated prose; picked with a skew towards the first ones, as in real text.
PROSE = """
the of and to a in is that for it as with was on be by this are or not from at which have an but can
all their has one more will been its also they there than into other when some time would only these
what about out them then after two new first many most over such where through back years much before
between under should well same each just those people state while because both during system work
data server request database backup restore article user comment author release version service
deploy monitor metric alert query index table schema column value result error message network config
question answer problem design change update support report process control number point group public
small large early local social young important different following without within however against
written reading building running working looking thinking making taking giving finding keeping moving
simple clear quick steady careful honest useful common modern little rather often never always almost
city river mountain garden market window kitchen morning evening winter summer history science music
language picture letter family friend teacher student village country island forest valley harbour
"""
TAGS_TEXT = """
python flask postgresql ansible docker linux debian networking security testing monitoring prometheus
grafana backups performance javascript react css html api rest design databases sql devops cloud
kubernetes systemd nginx haproxy tls dns email caching queues logging tracing go rust java ruby
programming careers writing opensource tutorials news opinion books travel
"""
WORDS = PROSE.split()
TAG_NAMES = TAGS_TEXT.split()


def load_sql(articles: int) -> str:
    """The data set, generated server-side from a fixed seed (the same rows on every run)."""
    words = "ARRAY[" + ",".join(f"'{word}'" for word in WORDS) + "]::text[]"
    tags = "ARRAY[" + ",".join(f"'{tag}'" for tag in TAG_NAMES[:TAGS]) + "]::text[]"
    return f"""
SELECT setseed(0.4242);
CREATE FUNCTION pg_temp.prose(words int) RETURNS text LANGUAGE sql VOLATILE AS $$
  SELECT string_agg(w[1 + floor(power(random(), 1.6) * array_length(w, 1))::int]
                    || CASE WHEN random() < 0.08 THEN '.' ELSE '' END, ' ')
  FROM generate_series(1, words), (SELECT {words} AS w) AS vocabulary
$$;
-- A body of 1000-3000 characters: enough words, cut at the last space before the target length.
CREATE FUNCTION pg_temp.body(chars int) RETURNS text LANGUAGE sql VOLATILE AS $$
  SELECT initcap(left(p, 1)) || substr(regexp_replace(left(p, chars), ' [^ ]*$', ''), 2) || '.'
  FROM (SELECT pg_temp.prose(chars / 4) AS p) AS text
$$;

INSERT INTO tags (id, name) SELECT g, ({tags})[g] FROM generate_series(1, {TAGS}) AS g;

INSERT INTO users (id, username, email, password_hash, bio, image, created_at, updated_at)
SELECT g, 'user' || g || '_' || substr(md5(g::text), 1, 6), 'user' || g || '@example.org',
       'scrypt:32768:8:1$' || substr(md5(random()::text), 1, 16) || '$'
         || md5(random()::text) || md5(random()::text) || md5(random()::text) || md5(random()::text),
       CASE WHEN random() < 0.6 THEN pg_temp.prose(8 + floor(random() * 25)::int) END,
       CASE WHEN random() < 0.5 THEN 'https://images.example.org/avatars/' || md5(g::text) || '.jpg' END,
       c, c + random() * interval '90 days'
FROM (SELECT g, now()::timestamp - interval '3 years' + random() * interval '1 year' AS c
      FROM generate_series(1, {USERS}) AS g) AS u;

INSERT INTO articles (id, slug, title, description, body, author_id, created_at, updated_at)
SELECT g, trim(BOTH '-' FROM regexp_replace(lower(title), '[^a-z0-9]+', '-', 'g')) || '-' || g,
       title, description, body, author_id, c, c + (random() < 0.3)::int * random() * interval '30 days'
FROM (SELECT g, initcap(pg_temp.prose(3 + floor(random() * 7)::int)) AS title,
             pg_temp.prose(10 + floor(random() * 20)::int) AS description,
             pg_temp.body(1000 + floor(random() * 2001)::int) AS body,
             1 + floor(random() * {USERS})::int AS author_id,
             now()::timestamp - interval '2 years' + random() * interval '2 years' AS c
      FROM generate_series(1, {articles}) AS g) AS a;

-- Three distinct tags per article: offsets 0, 1-24 and 25-48 from a random first one.
INSERT INTO article_tags (article_id, tag_id)
SELECT a.id, 1 + (a.t0 + o.k) % {TAGS}
FROM (SELECT id, floor(random() * {TAGS})::int AS t0, 1 + floor(random() * 24)::int AS k1,
             25 + floor(random() * 24)::int AS k2 FROM articles) AS a
CROSS JOIN LATERAL (VALUES (0), (a.k1), (a.k2)) AS o(k);

-- 0-6 favorites per article (3 on average) by random users.
INSERT INTO favorites (user_id, article_id)
SELECT DISTINCT 1 + floor(random() * {USERS})::int, a.id
FROM (SELECT id, floor(random() * 7)::int AS n FROM articles) AS a
CROSS JOIN LATERAL generate_series(1, a.n) AS f
ON CONFLICT DO NOTHING;

-- 0-4 comments per article (2 on average), 10-80 words, after the article.
INSERT INTO comments (body, article_id, author_id, created_at, updated_at)
SELECT body, article_id, author_id, c, c
FROM (SELECT pg_temp.prose(10 + floor(random() * 71)::int) AS body, a.id AS article_id,
             1 + floor(random() * {USERS})::int AS author_id,
             a.created_at + random() * interval '20 days' AS c
      FROM (SELECT id, created_at, floor(random() * 5)::int AS n FROM articles) AS a
      CROSS JOIN LATERAL generate_series(1, a.n) AS f) AS comment
ORDER BY c;

-- 0-20 follows per user (10 on average).
INSERT INTO follows (follower_id, followed_id)
SELECT DISTINCT u.id, 1 + floor(random() * {USERS})::int
FROM (SELECT id, floor(random() * 21)::int AS n FROM users) AS u
CROSS JOIN LATERAL generate_series(1, u.n) AS f
ON CONFLICT DO NOTHING;
DELETE FROM follows WHERE follower_id = followed_id;

SELECT setval(pg_get_serial_sequence('users', 'id'), {USERS});
SELECT setval(pg_get_serial_sequence('tags', 'id'), {TAGS});
SELECT setval(pg_get_serial_sequence('articles', 'id'), {articles});
SELECT setval(pg_get_serial_sequence('comments', 'id'), (SELECT max(id) FROM comments));
"""


def server_bindir() -> Path:
    found = sorted(SERVER_ROOT.glob("*/bin/initdb"), key=lambda initdb: int(initdb.parts[-3]))
    if not found:
        raise SystemExit(
            f"no PostgreSQL server under {SERVER_ROOT}/*/bin; `scripts/setup.sh tools` installs it"
        )
    return found[-1].parent


def free_port() -> int:
    """A free port from the high, ephemeral range; with listen_addresses='' it only names the socket."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Cluster:
    bindir: Path
    base: Path
    socket_dir: Path
    data: Path
    port: int
    started: bool = False

    def run(self, *argv: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        """argv as the postgres user, pointed at this cluster by PGHOST/PGPORT alone (as the timers' units
        point the programs at the host's cluster by libpq's defaults)."""
        command = [
            *("runuser", "-u", "postgres", "--", "env", f"PATH={self.bindir}:/usr/bin:/bin"),
            *(f"PGHOST={self.socket_dir}", f"PGPORT={self.port}", "PYTHONDONTWRITEBYTECODE=1", *argv),
        ]
        result = subprocess.run(
            command, input=stdin, capture_output=True, text=True, timeout=TIMEOUT, check=False, cwd=self.base
        )
        if check and result.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} exited {result.returncode}:\n{result.stdout}{result.stderr}")
        return result

    def sql(self, query: str, database: str = DATABASE) -> str:
        psql = ("psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", f"--dbname={database}")
        return self.run(*psql, "--file=-", stdin=query).stdout.strip()

    def tool(self, name: str) -> str:
        return str(self.bindir / name)

    def postgres_dir(self, name: str) -> Path:
        path = self.base / name
        path.mkdir()
        owner = pwd.getpwnam("postgres")
        os.chown(path, owner.pw_uid, owner.pw_gid)
        return path

    def start(self) -> None:
        self.run(self.tool("initdb"), "--no-sync", "--auth=trust", "--encoding=UTF8", f"--pgdata={self.data}")
        self.started = True
        options = f"-k {self.socket_dir} -c listen_addresses='' -p {self.port}"
        log = self.base / "server.log"
        started = self.run(
            self.tool("pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(log),
            "-o",
            options,
            "-w",
            "start",
            check=False,
        )
        if started.returncode != 0:
            text = log.read_text() if log.exists() else ""
            raise SystemExit(f"the throwaway cluster did not start:\n{started.stderr}\n{text}")

    def stop(self) -> None:
        if self.started and (self.data / "postmaster.pid").exists():
            self.run(self.tool("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)


def new_cluster() -> Cluster:
    if os.geteuid() != 0:
        raise SystemExit(
            "run as root: the throwaway cluster runs as the postgres user, which root switches to"
        )
    try:
        owner = pwd.getpwnam("postgres")
    except KeyError:
        raise SystemExit("no postgres OS user (Debian's postgresql package creates it)") from None
    base = Path(tempfile.mkdtemp(prefix="lookout-pg-bench-"))
    sockets = base / "sockets"
    sockets.mkdir()
    for path in (base, sockets):
        os.chown(path, owner.pw_uid, owner.pw_gid)
    return Cluster(server_bindir(), base, sockets, base / "data", free_port())


def migrate(cluster: Cluster) -> None:
    """The schema from the app's own Alembic migrations, run as the app runs them."""
    url = f"postgresql://postgres@/{DATABASE}?host={cluster.socket_dir}&port={cluster.port}"
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("CONDUIT_", "PG"))}
    environ.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(APP_DIR), os.environ.get("PYTHONPATH")])),
        CONDUIT_ENV="development",
        DATABASE_URL=url,
    )
    command = [sys.executable, "-m", "conduit", "db", "upgrade"]
    result = subprocess.run(
        command, cwd=APP_DIR, env=environ, capture_output=True, text=True, timeout=600, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"conduit db upgrade exited {result.returncode}:\n{result.stdout}{result.stderr}")


def json_lines(output: str) -> list:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def row_counts(cluster: Cluster, database: str = DATABASE) -> dict[str, int]:
    return {
        f"{schema}.{table}": rows for schema, table, rows in json_lines(cluster.sql(COUNT_ROWS, database))
    }


def row_digests(cluster: Cluster) -> dict[str, str]:
    return dict(json_lines(cluster.sql(DIGEST_ROWS)))


def timed(cluster: Cluster, *argv: str) -> tuple[subprocess.CompletedProcess, float]:
    started = time.perf_counter()
    result = cluster.run(*argv, check=False)
    return result, time.perf_counter() - started


def backup(cluster: Cluster, dumps: Path, metrics: Path) -> dict:
    result, wall = timed(
        cluster,
        "/usr/bin/python3",
        str(BACKUP),
        f"--database={DATABASE}",
        f"--dir={dumps}",
        f"--keep={KEEP}",
        f"--textfile={metrics / f'backup-{DATABASE}.prom'}",
        f"--pg-dump={cluster.tool('pg_dump')}",
    )
    if result.returncode != 0:
        raise SystemExit(f"lookout-pg-backup exited {result.returncode}:\n{result.stdout}{result.stderr}")
    line = result.stdout.strip().splitlines()[-1]
    match = re.fullmatch(r"(\S+) (\d+) bytes sha256 ([0-9a-f]{64}) in ([0-9.]+) s", line)
    if not match:
        raise SystemExit(f"lookout-pg-backup printed an unexpected summary: {line!r}")
    dump = Path(match[1])
    if dump.stat().st_size != int(match[2]):
        raise SystemExit(f"{dump} is {dump.stat().st_size} bytes, lookout-pg-backup said {match[2]}")
    return {"dump": str(dump), "bytes": int(match[2]), "own_s": float(match[4]), "wall_s": wall, "line": line}


def restore_check(cluster: Cluster, dumps: Path, metrics: Path, dump: str, live: dict[str, int]) -> dict:
    report = metrics / f"restore-check-{DATABASE}.json"
    result, wall = timed(
        cluster,
        "/usr/bin/python3",
        str(RESTORE_CHECK),
        f"--database={DATABASE}",
        f"--dir={dumps}",
        f"--textfile={metrics / f'restore-check-{DATABASE}.prom'}",
        f"--report={report}",
        f"--pg-restore={cluster.tool('pg_restore')}",
        f"--psql={cluster.tool('psql')}",
        f"--createdb={cluster.tool('createdb')}",
        f"--dropdb={cluster.tool('dropdb')}",
    )
    if result.returncode != 0:
        raise SystemExit(
            f"lookout-pg-restore-check exited {result.returncode}:\n{result.stdout}{result.stderr}"
        )
    line = result.stdout.strip().splitlines()[-1]
    match = re.fullmatch(r"(\S+) restores: (\d+) tables, (\d+) rows, in ([0-9.]+) s", line)
    if not match:
        raise SystemExit(f"lookout-pg-restore-check printed an unexpected summary: {line!r}")
    document = json.loads(report.read_text())
    if match[1] != dump or not document["success"]:
        raise SystemExit(f"the restore check did not check {dump} successfully: {document}")
    if document["tables"] != live:
        raise SystemExit(f"restore check counted {document['tables']}, the live database holds {live}")
    return {"own_s": float(match[4]), "wall_s": wall, "rows": int(match[3]), "line": line}


def live_restore(cluster: Cluster, dump: str, counts: dict[str, int], digests: dict[str, str]) -> dict:
    """What roles/postgresql/tasks/restore.yml runs, with nothing connected to the database."""
    result, wall = timed(
        cluster,
        cluster.tool("pg_restore"),
        f"--dbname={DATABASE}",
        "--clean",
        "--if-exists",
        "--single-transaction",
        "--exit-on-error",
        dump,
    )
    if result.returncode != 0:
        raise SystemExit(f"pg_restore exited {result.returncode}:\n{result.stdout}{result.stderr}")
    after = row_counts(cluster)
    if after != counts:
        raise SystemExit(f"after the live restore the database holds {after}, before it held {counts}")
    now = row_digests(cluster)
    changed = sorted(table for table in set(now) | set(digests) if now.get(table) != digests.get(table))
    if changed:
        raise SystemExit(f"the live restore changed the content of {changed or 'the table list'}")
    return {"wall_s": wall}


def spread(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def load() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def measure(args: argparse.Namespace) -> dict:
    cluster = new_cluster()
    try:
        cluster.start()
        version = cluster.sql("SHOW server_version", "postgres")
        dumps, metrics = cluster.postgres_dir("dumps"), cluster.postgres_dir("metrics")
        cluster.run("createdb", DATABASE)
        migrate(cluster)
        print(f"PostgreSQL {version}: loading {args.articles} articles ...", flush=True)
        started = time.perf_counter()
        cluster.run(
            "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", f"--dbname={DATABASE}",
            "--file=-", stdin=load_sql(args.articles),
        )  # fmt: skip
        load_s = time.perf_counter() - started
        cluster.sql("VACUUM ANALYZE")
        counts, digests = row_counts(cluster), row_digests(cluster)
        size = int(cluster.sql(f"SELECT pg_database_size('{DATABASE}')"))
        body = float(cluster.sql("SELECT avg(length(body)) FROM articles") or 0)
        print(
            f"loaded in {load_s:.1f} s: database {size / 1e6:.1f} MB, average body {body:.0f} characters, "
            + ", ".join(f"{table.removeprefix('public.')} {rows}" for table, rows in counts.items()),
            flush=True,
        )
        rounds = []
        for number in range(1, args.repeat + 1):
            load_before = load()
            made = backup(cluster, dumps, metrics)
            checked = restore_check(cluster, dumps, metrics, made["dump"], counts)
            restored = live_restore(cluster, made["dump"], counts, digests)
            rounds.append(
                {"backup": made, "restore_check": checked, "live_restore": restored, "load": load_before}
            )
            print(
                f"round {number}: backup {made['own_s']:.2f} s (wall {made['wall_s']:.2f} s), "
                f"dump {made['bytes'] / 1e6:.2f} MB; restore check {checked['own_s']:.2f} s "
                f"(wall {checked['wall_s']:.2f} s, {checked['rows']} rows); "
                f"live restore {restored['wall_s']:.2f} s; load {load_before[0]:.2f}",
                flush=True,
            )
        return {
            "server_version": version,
            "articles": args.articles,
            "load_s": load_s,
            "database_bytes": size,
            "average_body_chars": body,
            "row_counts": counts,
            "total_rows": sum(counts.values()),
            "rounds": rounds,
        }
    finally:
        cluster.stop()
        shutil.rmtree(cluster.base, ignore_errors=True)


def summarise(result: dict) -> dict[str, dict[str, float]]:
    rounds = result["rounds"]
    return {
        "backup_own_s": spread([r["backup"]["own_s"] for r in rounds]),
        "backup_wall_s": spread([r["backup"]["wall_s"] for r in rounds]),
        "dump_mb": spread([r["backup"]["bytes"] / 1e6 for r in rounds]),
        "restore_check_own_s": spread([r["restore_check"]["own_s"] for r in rounds]),
        "restore_check_wall_s": spread([r["restore_check"]["wall_s"] for r in rounds]),
        "live_restore_wall_s": spread([r["live_restore"]["wall_s"] for r in rounds]),
    }


LABELS = {
    "backup_own_s": "lookout-pg-backup, own summary (s)",
    "backup_wall_s": "lookout-pg-backup, wall clock (s)",
    "dump_mb": "dump size (MB)",
    "restore_check_own_s": "lookout-pg-restore-check, own summary (s)",
    "restore_check_wall_s": "lookout-pg-restore-check, wall clock (s)",
    "live_restore_wall_s": "live restore, pg_restore as restore.yml (s)",
}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--articles", type=int, default=10_000, help="articles to load (default 10000)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of backup, check, restore (default 3)")
    parser.add_argument(
        "--json", type=Path, default=ROOT / "artifacts" / "bench" / "backup.json", help="where the JSON goes"
    )
    args = parser.parse_args()
    if args.articles < 1 or args.repeat < 1:
        parser.error("--articles and --repeat must be at least 1")
    # A stop by systemd, kill or a CI timeout unwinds like Ctrl-C: the cluster is stopped and removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    load_before, started = load(), time.time()
    result = measure(args)
    load_after = load()
    summary = summarise(result)
    print()
    print(
        f"{result['articles']} articles, {result['total_rows']} rows, database "
        f"{result['database_bytes'] / 1e6:.1f} MB, PostgreSQL {result['server_version']}, "
        f"{os.cpu_count()} CPUs, {args.repeat} rounds"
    )
    print(f"{'':46} {'min':>8} {'median':>8} {'max':>8}")
    for key, label in LABELS.items():
        figures = summary[key]
        print(f"{label:46} {figures['min']:8.2f} {figures['median']:8.2f} {figures['max']:8.2f}")
    print(f"load average (1, 5, 15 min): before {load_before}, after {load_after}")
    print("row counts equal the live database's after every restore check and live restore")

    document = {
        **result,
        "summary": summary,
        "repeat": args.repeat,
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "nproc": os.cpu_count(),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": time.time() - started,
        "machine": {"kernel": platform.release(), "python": platform.python_version()},
        "server_settings": "initdb defaults (fsync on), Unix socket only",
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(document, indent=2) + "\n")
    print(f"JSON: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
