#!/usr/bin/env python3
"""Benchmark of the front door: GET /api/articles through HAProxy (TLS) and directly on gunicorn, same run.

Not a test: it prints figures (and optionally writes them as JSON). What it does:

1. migrates a fresh SQLite database in a temporary directory and starts ONE gunicorn with the shipped
   config and the exporter on (CONDUIT_METRICS=1, as production runs) on 127.0.0.1, with the production
   inventory's worker count (lookout_conduit_workers), and seeds it with app_bench's 20 articles;
2. renders HAProxy's configuration with the haproxy role itself (ansible-playbook on this machine, as an
   unprivileged user: the role's preflight, common's `certificate` entry with a throwaway internal CA, the
   role's `render` entry), with that gunicorn as the only backend server and haproxy_backend_maxconn =
   the worker count, as group_vars/all/haproxy.yml wires it; checks it with `haproxy -c` and runs
   /usr/sbin/haproxy in the foreground on 127.0.0.1;
3. for each round runs k6 (20 virtual users looping on GET /api/articles, a short warm-up first) against
   gunicorn over http ("direct") and against HAProxy over https with the certificate verified against the
   CA ("frontend"; k6 gets SSL_CERT_FILE=<CA certificate>), alternating the order between rounds;
4. reports per run req/s, median and p95 latency, failed requests, the CPU time per request of gunicorn
   (master + workers) and of haproxy (from /proc) and the 1-minute load average at start and end; then
   the mean per mode and the frontend's overhead: throughput lost and p95 added, against the target.

Usage (from the repository root, with the venv that has the app's dependencies, Ansible and k6):

    python bench/frontend_bench.py [--duration 20s] [--rounds 4] [--vus 20] [--workers N] [--json out.json]

Target: the frontend costs <= 10 % of throughput and adds <= 10 % to p95 at 20 VUs. Missing it is
reported, not an error: the exit status is non-zero only for failed requests or a process that does not
start.
"""

from __future__ import annotations

import argparse
import grp
import json
import os
import pwd
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from app_bench import (
    ARTICLES,
    K6_SCRIPT,
    ROOT,
    Gunicorn,
    Served,
    find_k6,
    free_port,
    metrics_base,
    migrate,
    process_tree_cpu_seconds,
    run_k6,
    seed,
)
from bench_ansible import ansible_environ, find_ansible_playbook

HAPROXY = "/usr/sbin/haproxy"
START_TIMEOUT = 30
OVERHEAD_TARGET_PCT = 10.0
MODES = ("direct", "frontend")
# The names the frontend's certificate carries; k6 reaches HAProxy at the first.
TLS_NAMES = ["127.0.0.1", "localhost"]

# The haproxy role's own entries, run against this machine (connection local): the preflight it runs
# before a host changes, the certificate as its configure step takes it, and the configuration rendered.
PLAYBOOK = """
- name: HAProxy of the frontend benchmark
  hosts: all
  gather_facts: false
  tasks:
    - name: Check the inputs as the haproxy role does
      ansible.builtin.include_role:
        name: haproxy
        tasks_from: preflight

    - name: Take a certificate from the internal CA
      ansible.builtin.include_role:
        name: common
        tasks_from: certificate

    - name: Render haproxy.cfg
      ansible.builtin.include_role:
        name: haproxy
        tasks_from: render
"""


def production_workers() -> int | None:
    """lookout_conduit_workers of the production inventory: gunicorn's workers per web host."""
    knobs = ROOT / "inventories" / "production" / "group_vars" / "all" / "vars.yml"
    try:
        workers = yaml.safe_load(knobs.read_text()).get("lookout_conduit_workers")
    except (OSError, AttributeError, yaml.YAMLError):
        return None
    return workers if isinstance(workers, int) and workers > 0 else None


class Frontend(Served):
    """HAProxy with the haproxy role's configuration, in front of one backend server, on 127.0.0.1; up
    when /health answers 200 through it, the certificate verified against the CA."""

    name = "haproxy"
    stop_timeout = 10

    def __init__(self, workdir: Path, backend_port: int, maxconn: int):
        self.dir = workdir / "haproxy"
        self.ca = workdir / "ca" / "ca.crt"
        self.ports = {"https": free_port(), "http": free_port(), "metrics": free_port()}
        self.url = f"https://{TLS_NAMES[0]}:{self.ports['https']}"
        self.log_path = workdir / "haproxy.log"
        self._render(workdir, backend_port, maxconn)
        check = subprocess.run(
            [HAPROXY, "-c", "-q", "-f", str(self.dir / "haproxy.cfg")],
            capture_output=True,
            text=True,
            check=False,
        )
        if check.returncode != 0:
            raise SystemExit(f"haproxy -c refused the rendered configuration:\n{check.stdout}{check.stderr}")
        self.log = self.log_path.open("ab")
        # Master-worker as Debian's unit runs it (-W), in the foreground (-db).
        self.process = subprocess.Popen(
            [HAPROXY, "-W", "-db", "-f", str(self.dir / "haproxy.cfg")],
            cwd=self.dir,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _render(self, workdir: Path, backend_port: int, maxconn: int) -> None:
        tls = self.dir / "tls"
        tls.mkdir(parents=True)  # the host's directory the package would have created
        inputs = {
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
            # The certificate as an unprivileged user can take it here: files owned by this user, the
            # venv's cryptography instead of Debian's package, the system trust store left alone.
            "common_certificate_path": str(tls / "site.crt"),
            "common_certificate_key_path": str(tls / "site.key"),
            "common_certificate_bundle_path": str(tls / "site.pem"),
            "common_certificate_owner": pwd.getpwuid(os.getuid()).pw_name,
            "common_certificate_group": grp.getgrgid(os.getgid()).gr_name,
            "common_certificate_names": TLS_NAMES,
            "common_certificate_packages": [],
            "common_ca_dir": str(workdir / "ca"),
            "common_ca_name": "bench",
            "common_ca_trust_path": "",
            # The role's inputs: its defaults, but everything in the temporary directory and on loopback.
            "haproxy_render_dir": str(self.dir),
            "haproxy_config_dir": str(self.dir),
            "haproxy_stats_socket_path": str(self.dir / "admin.sock"),
            "haproxy_listen_address": "127.0.0.1",
            "haproxy_https_port": self.ports["https"],
            "haproxy_http_port": self.ports["http"],
            "haproxy_metrics_listen_address": "127.0.0.1",
            "haproxy_metrics_port": self.ports["metrics"],
            "haproxy_tls_names": TLS_NAMES,
            # A log line per request is still sent (UDP syslog), to a port nothing listens on.
            "haproxy_log_target": "127.0.0.1:9",
            # As group_vars/all/haproxy.yml wires a web host: "<address>:<port>", one request per worker.
            "haproxy_backend_servers": [
                {"name": f"127.0.0.1:{backend_port}", "address": "127.0.0.1", "port": backend_port}
            ],
            "haproxy_backend_maxconn": maxconn,
        }
        run_dir = workdir / "ansible"
        run_dir.mkdir()
        (run_dir / "frontend.yml").write_text(PLAYBOOK)
        (run_dir / "inventory.json").write_text(json.dumps({"all": {"hosts": {"frontend": inputs}}}))
        environ = ansible_environ(run_dir, ANSIBLE_CALLBACKS_ENABLED="ansible.builtin.timer")
        command = [find_ansible_playbook(), "-i", "inventory.json", "frontend.yml"]
        run = subprocess.run(
            command, cwd=run_dir, env=environ, capture_output=True, text=True, timeout=300, check=False
        )
        if run.returncode != 0:
            raise SystemExit(f"rendering HAProxy's configuration failed:\n{run.stdout}{run.stderr}")

    def _verify(self) -> str:
        return str(self.ca)

    def _detail(self) -> str:
        return f":\n{self.output()}"

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]


def haproxy_version() -> str:
    result = subprocess.run([HAPROXY, "-v"], capture_output=True, text=True, check=True)
    return result.stdout.splitlines()[0]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", default="20s", help="k6 duration of each measured run (default 20s)")
    parser.add_argument("--warmup", default="3s", help="k6 duration of the warm-up before each run")
    parser.add_argument("--vus", type=int, default=20, help="concurrent virtual users (default 20)")
    parser.add_argument("--rounds", type=int, default=4, help="measured runs per mode (default 4)")
    parser.add_argument(
        "--workers",
        type=int,
        default=production_workers(),
        help="gunicorn workers, also haproxy_backend_maxconn (default: the production inventory's "
        "lookout_conduit_workers)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results to this file")
    args = parser.parse_args()
    if args.vus < 1 or args.rounds < 1:
        parser.error("--vus and --rounds must be at least 1")
    if not args.workers or args.workers < 1:
        parser.error("--workers must be at least 1 (the production inventory gives no worker count)")
    if not os.access(HAPROXY, os.X_OK):
        raise SystemExit(f"{HAPROXY} not found: run `sudo scripts/setup.sh tools`")
    # A stop by kill or a CI timeout unwinds like Ctrl-C: gunicorn and haproxy stop, the files go.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    k6 = find_k6()
    started = time.time()
    try:
        runs = measure(k6, args)
    except KeyboardInterrupt:
        print("interrupted: gunicorn and haproxy stopped, temporary files removed", file=sys.stderr)
        return 130
    return report(runs, args, started)


def measure(k6: str, args: argparse.Namespace) -> list[dict]:
    runs: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="conduit-frontend-bench-") as tmp:
        workdir = Path(tmp)
        script = workdir / "articles.js"
        script.write_text(K6_SCRIPT)
        prom = tempfile.mkdtemp(prefix="conduit-bench-metrics-", dir=metrics_base())
        (workdir / "prom").symlink_to(prom)
        try:
            migrate(workdir)
            with Gunicorn(workdir, metrics=True, workers=args.workers) as server:
                seed(server.url)
                port = int(server.url.rsplit(":", 1)[1])
                with Frontend(workdir, port, maxconn=args.workers) as frontend:
                    targets = {
                        "direct": (server.url, None),
                        "frontend": (frontend.url, {"SSL_CERT_FILE": str(frontend.ca)}),
                    }
                    pids = {"gunicorn": server.process.pid, "haproxy": frontend.process.pid}
                    # Alternate the modes (direct, frontend, frontend, direct, ...): drift hits both alike.
                    order = [MODES if r % 2 == 0 else MODES[::-1] for r in range(args.rounds)]
                    for round_number, modes in enumerate(order, 1):
                        for mode in modes:
                            url, env = targets[mode]
                            run = measure_once(k6, script, workdir, url=url, env=env, pids=pids, args=args)
                            runs.append({"round": round_number, "mode": mode, **run})
                            print_run(runs[-1])
        except (Exception, SystemExit) as error:
            # Errors only (an exit with a message): not on Ctrl-C or a plain exit status.
            if not isinstance(error, SystemExit) or isinstance(error.code, str):
                print_logs(workdir)
            raise
        finally:
            shutil.rmtree(prom, ignore_errors=True)
    return runs


def print_logs(workdir: Path) -> None:
    """The servers' own words on the way out of a failure (the temporary directory goes with it)."""
    for log in sorted(workdir.glob("*.log")):
        text = log.read_text(errors="replace").strip()
        if text:
            print(f"--- {log.name} (last lines)\n{text[-3000:]}", file=sys.stderr)


def measure_once(
    k6: str,
    script: Path,
    workdir: Path,
    *,
    url: str,
    env: dict[str, str] | None,
    pids: dict[str, int],
    args: argparse.Namespace,
) -> dict[str, float]:
    """Warm-up, then the measured k6 run and the CPU time gunicorn and haproxy spent during it."""
    run_k6(k6, script, url, vus=args.vus, duration=args.warmup, summary=workdir / "warmup.json", env=env)
    load_start = os.getloadavg()[0]
    cpu_before = {name: process_tree_cpu_seconds(pid) for name, pid in pids.items()}
    result = run_k6(
        k6, script, url, vus=args.vus, duration=args.duration, summary=workdir / "summary.json", env=env
    )
    cpu = {name: process_tree_cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}
    requests_done = max(result["requests"], 1)
    for name, seconds in cpu.items():
        result[f"{name}_cpu_ms_per_request"] = 1000.0 * seconds / requests_done
    result["load_1m_start"] = load_start
    result["load_1m_end"] = os.getloadavg()[0]
    return result


def print_run(run: dict) -> None:
    print(
        f"round {run['round']} {run['mode']:8}: {run['rps']:7.1f} req/s  median {run['median_ms']:6.1f} ms  "
        f"p95 {run['p95_ms']:6.1f} ms  failed {int(run['failed_checks'])}  CPU/req gunicorn "
        f"{run['gunicorn_cpu_ms_per_request']:.2f} ms haproxy {run['haproxy_cpu_ms_per_request']:.2f} ms  "
        f"load {run['load_1m_start']:.2f} -> {run['load_1m_end']:.2f}  ({int(run['requests'])} requests)",
        flush=True,
    )


def overhead(direct: dict[str, float], frontend: dict[str, float]) -> dict[str, float]:
    """What the frontend costs against direct: throughput lost and p95 added (positive = worse)."""
    return {
        "throughput_lost_pct": 100.0 * (direct["rps"] - frontend["rps"]) / direct["rps"],
        "p95_added_pct": 100.0 * (frontend["p95_ms"] - direct["p95_ms"]) / direct["p95_ms"],
        "p95_added_ms": frontend["p95_ms"] - direct["p95_ms"],
    }


def report(runs: list[dict], args: argparse.Namespace, started: float) -> int:
    keys = [key for key in runs[0] if key not in ("round", "mode")]
    mean = {
        mode: {key: statistics.mean(run[key] for run in runs if run["mode"] == mode) for key in keys}
        for mode in MODES
    }
    total = overhead(mean["direct"], mean["frontend"])
    per_round = []
    for round_number in range(1, args.rounds + 1):
        pair = {run["mode"]: run for run in runs if run["round"] == round_number}
        per_round.append({"round": round_number, **overhead(pair["direct"], pair["frontend"])})
    met = {
        "throughput": total["throughput_lost_pct"] <= OVERHEAD_TARGET_PCT,
        "p95": total["p95_added_pct"] <= OVERHEAD_TARGET_PCT,
    }

    print()
    print(
        f"GET /api/articles ({ARTICLES} articles), {args.vus} VUs, {args.duration} x {args.rounds} per mode, "
        f"{args.workers} gunicorn workers = haproxy_backend_maxconn, {os.cpu_count()} CPUs shared by all:"
    )
    for mode in MODES:
        m = mean[mode]
        print(
            f"  {mode:8} mean: {m['rps']:7.1f} req/s  median {m['median_ms']:6.1f} ms  "
            f"p95 {m['p95_ms']:6.1f} ms  "
            f"CPU/req gunicorn {m['gunicorn_cpu_ms_per_request']:.2f} ms haproxy "
            f"{m['haproxy_cpu_ms_per_request']:.2f} ms"
        )
    for one in per_round:
        print(
            f"  round {one['round']}: throughput lost {one['throughput_lost_pct']:+.1f} %, "
            f"p95 added {one['p95_added_pct']:+.1f} % ({one['p95_added_ms']:+.1f} ms)"
        )
    verdict = {True: "met", False: "MISSED"}
    print(
        f"  frontend overhead: throughput lost {total['throughput_lost_pct']:+.1f} % "
        f"(target <= {OVERHEAD_TARGET_PCT:.0f} %: {verdict[met['throughput']]}), "
        f"p95 added {total['p95_added_pct']:+.1f} % / {total['p95_added_ms']:+.1f} ms "
        f"(target <= {OVERHEAD_TARGET_PCT:.0f} %: {verdict[met['p95']]})"
    )
    failed = sum(int(run["failed_checks"]) for run in runs)
    if failed:
        print(f"  {failed} requests failed (status other than 200)", file=sys.stderr)
    if args.json:
        document = {
            "parameters": {
                "vus": args.vus,
                "duration": args.duration,
                "warmup": args.warmup,
                "rounds": args.rounds,
                "workers": args.workers,
                "haproxy_backend_maxconn": args.workers,
                "articles": ARTICLES,
                "cpus": os.cpu_count(),
                "haproxy": haproxy_version(),
                "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
                "seconds": time.time() - started,
            },
            "runs": runs,
            "mean": mean,
            "overhead": total,
            "overhead_per_round": per_round,
            "target_pct": OVERHEAD_TARGET_PCT,
            "target_met": met,
            "failed_requests": failed,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
