#!/usr/bin/env python3
"""Scale benchmark: site.yml's first converge and its unchanged re-run on 3, 6 and 12 hosts.

Not a test: it prints figures (a markdown table), and writes them as JSON and as an SVG plot.

For each size N (default 3 6 12), on local Debian 12 systemd containers:

1. the hosts monitor1, load1 and web1 .. web<N-2> are created by `scripts/demo.sh create --no-ports`
   (molecule/_shared/create.yml with the demo's flags; label lookout.scenario=scale-bench and network
   lookout-scale-bench of their own, so neither a demo nor a test run is touched; no published ports);
2. the inventory is inventories/demo itself (3 hosts) or `-i inventories/demo -i <extra>.yml`, the extra
   file adding web2 .. web<N-2> to the web group: the demo's group_vars (its knobs, its secrets) apply to
   every host, the extra file sets nothing else but, on each web host, conduit_web_hosts to that host
   alone (the demo keeps SQLite, one file per web host, which the conduit role's preflight refuses with
   several web hosts: here every web host is a site of its own, as fast to deploy);
3. `ansible-playbook site.yml` runs the first converge on the fresh hosts, then the unchanged re-run
   --reruns times (default 3), each of which must report changed=0; the size's re-run figure is their
   median. Before each timed run the bench waits for a quiet machine: at most --quiet-cpus CPUs busy
   (default 0.25) over a 5-second window, for at most --settle seconds (default 180). The hosts' own
   work after a converge (services starting, first scrapes) would otherwise land in the first re-run,
   more of it the more hosts there are. Each run: wall clock, the wait and the busy CPUs it ended on,
   the 1-minute load average just before, the PLAY RECAP's changed/failed/unreachable summed over the
   hosts, the log kept;
4. the containers and the network are removed (also on failure, Ctrl-C or SIGTERM).

The whole run holds the molecule lock (/tmp/lookout-molecule.lock, MOLECULE_LOCK; the lock
scripts/molecule-all.sh and scripts/demo.sh take) so it never overlaps a molecule scenario. Before the
first size the controller's wheelhouse cache (build/wheelhouse, the conduit role's builder) is filled for
the hosts' Python, untimed: every first converge then finds it as a second deploy would, and the first
size does not pay a build the others skip.

Forks: --forks, default the larger of ansible.cfg's forks and the largest size, so that every host of a
play has a worker of its own (the target needs it). Strategy: --strategy, default linear (site.yml's
plays do not set one; free ignores run_once: bench/README.md). Web batches: site.yml's web play is
rolling (`serial: lookout_deploy_serial`, one host by default); --serial passes -e lookout_deploy_serial.

Usage (from the repository root, with the venv that has Ansible; make bench-scale):

    python bench/scale_bench.py [--sizes 3 6 12] [--forks 20] [--strategy linear] [--serial 100%]
                                [--reruns 3] [--quiet-cpus 0.25] [--settle 180]
                                [--json artifacts/bench/scale.json] [--svg artifacts/bench/scale.svg]

Exit status 1 when a run failed or a re-run changed something; the figures are printed anyway.
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import fcntl
import json
import math
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml
from bench_ansible import ROOT, ansible_environ, find_ansible_playbook

SCENARIO = "scale-bench"
NETWORK = "lookout-scale-bench"
DEMO = ROOT / "inventories" / "demo"
TARGET = 2.0  # the largest size's run costs at most this many times the smallest's (issue 17)
RECAP = re.compile(
    r"^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
    r"\s+failed=(?P<failed>\d+)",
    re.M,
)
PHASES = (("converge", "first converge"), ("rerun", "re-run"))
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --- CPU accounting ----------------------------------------------------------------------------------------
# Every host is a container on this machine's own CPUs, so a run's wall clock is shared between the hosts'
# work (apt, pip, gunicorn, the modules) and the controller's (Ansible's workers, the docker CLI and daemons).
# Each run reports both: the machine's busy CPU-seconds (/proc/stat) and the containers' (their cgroups).


def busy_cpu_seconds() -> float:
    """CPU-seconds this machine has spent busy (every CPU, all but idle and iowait) since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / CLOCK_TICKS


def busy_cpus(window: float = 5.0) -> float:
    """How many CPUs' worth this machine was busy over the next `window` seconds."""
    before = busy_cpu_seconds()
    time.sleep(window)
    return (busy_cpu_seconds() - before) / window


def settle(quiet_cpus: float, longest: float) -> dict:
    """Waits until the machine is quiet (at most quiet_cpus busy over a 5-second window) or longest seconds
    have passed; says how long it waited, the busy CPUs it ended on, and whether that was quiet."""
    start = time.monotonic()
    while True:
        busy = busy_cpus()
        waited = time.monotonic() - start
        if busy <= quiet_cpus or waited >= longest:
            return {"waited": round(waited, 1), "busy_cpus": round(busy, 2), "quiet": busy <= quiet_cpus}


def container_cpu_seconds(container_id: str) -> float | None:
    """A container's CPU-seconds from its cgroup (v1 cpuacct; v2 under systemd or cgroupfs), or None."""
    for path, scale in (
        (f"/sys/fs/cgroup/cpuacct/docker/{container_id}/cpuacct.usage", 1e-9),
        (f"/sys/fs/cgroup/system.slice/docker-{container_id}.scope/cpu.stat", 1e-6),
        (f"/sys/fs/cgroup/docker/{container_id}/cpu.stat", 1e-6),
    ):
        try:
            text = Path(path).read_text()
        except OSError:
            continue
        if path.endswith("cpu.stat"):
            usage = dict(line.split() for line in text.splitlines() if line.strip())
            return int(usage["usage_usec"]) * scale
        return int(text) * scale
    return None


def hosts_cpu_seconds() -> float | None:
    """The bench's containers' CPU-seconds, summed; None when any cannot be read."""
    ids = subprocess.run(
        ["docker", "ps", "-q", "--no-trunc", "--filter", f"label=lookout.scenario={SCENARIO}"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    found = [container_cpu_seconds(i) for i in ids]
    return None if not ids or None in found else sum(found)


def hosts_for(size: int) -> list[str]:
    """The hosts of a size: the demo's three, then web2 .. web<size-2>."""
    return ["web1", "monitor1", "load1"] + [f"web{number}" for number in range(2, size - 1)]


def web_hosts(hosts: list[str]) -> list[str]:
    return [host for host in hosts if host.startswith("web")]


def configured_forks() -> int:
    """forks in ansible.cfg's [defaults] (Ansible's default 5 when unset)."""
    config = configparser.ConfigParser(inline_comment_prefixes=("#", ";"))
    config.read(ROOT / "ansible.cfg")
    return config.getint("defaults", "forks", fallback=5)


def demo_sh(*args: str) -> None:
    """scripts/demo.sh with this bench's label and network: `create` and `down` touch only its hosts."""
    env = dict(os.environ, LOOKOUT_DEMO_SCENARIO=SCENARIO, LOOKOUT_DEMO_NETWORK=NETWORK)
    subprocess.run([str(ROOT / "scripts" / "demo.sh"), *args], check=True, env=env, cwd=ROOT)


def inventory_args(hosts: list[str], work: Path) -> list[str]:
    """-i arguments: the demo inventory, plus the extra web hosts when there are any."""
    if hosts == hosts_for(3):
        return ["-i", str(DEMO)]
    path = work / f"scale-{len(hosts)}.yml"
    lines = [
        f"# bench/scale_bench.py: the web hosts of the {len(hosts)}-host run, beside inventories/demo.",
        "# One site per web host (SQLite each): the conduit preflight's one-web-host rule for SQLite holds.",
        "all:",
        "  children:",
        "    web:",
        "      hosts:",
    ]
    lines += [f"        {host}: {{conduit_web_hosts: [{host}]}}" for host in web_hosts(hosts)]
    path.write_text("\n".join(lines) + "\n")
    return ["-i", str(DEMO), "-i", str(path)]


def warm_wheelhouse(host: str) -> dict:
    """Fills the controller's wheelhouse cache for the demo's Conduit version and this host's Python with
    the conduit role's own builder (what the role's run_once task does on a first converge); untimed."""
    probe = (
        "import platform, sys; libc = platform.libc_ver(); "
        "print('%d.%d' % sys.version_info[:2], platform.machine(), libc[1] if libc[0] == 'glibc' else '')"
    )
    found = subprocess.run(
        ["docker", "exec", host, "python3", "-c", probe], capture_output=True, text=True, check=True
    )
    python, machine, glibc = found.stdout.split()
    knobs = yaml.safe_load((DEMO / "group_vars" / "all" / "vars.yml").read_text())
    start = time.monotonic()
    built = subprocess.run(
        [
            sys.executable,
            str(ROOT / "roles" / "conduit" / "files" / "build_wheelhouse.py"),
            "--source",
            str(ROOT / "app"),
            "--version",
            str(knobs["lookout_conduit_version"]),
            "--python",
            python,
            "--machine",
            machine,
            "--glibc",
            glibc,
            "--cache",
            str(ROOT / "build" / "wheelhouse"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    state = "built" if "built: " in built.stdout else "cached"
    return {
        "target": f"Python {python}, {machine}, glibc {glibc}",
        "state": state,
        "seconds": round(time.monotonic() - start, 1),
    }


class Runner:
    """ansible-playbook site.yml runs; the one running is stopped if the bench is."""

    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.command = [find_ansible_playbook(), "--forks", str(args.forks)]
        if args.serial:
            self.command += ["-e", f"lookout_deploy_serial={args.serial}"]
        self.env = ansible_environ(work, ANSIBLE_STRATEGY=args.strategy)
        self.env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{self.env.get('PATH', '')}"
        self.logs = args.logs
        self.quiet_cpus, self.settle = args.quiet_cpus, args.settle
        self.running: subprocess.Popen | None = None

    def site(self, inventory: list[str], name: str) -> dict:
        log = self.logs / f"{name}.log"
        before = settle(self.quiet_cpus, self.settle)
        load = os.getloadavg()[0]
        busy, hosts = busy_cpu_seconds(), hosts_cpu_seconds()
        start = time.monotonic()
        with log.open("w") as out:
            self.running = subprocess.Popen(
                [*self.command, *inventory, str(ROOT / "site.yml")],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=ROOT,
            )
            returncode = self.running.wait()
            self.running = None
        seconds = time.monotonic() - start
        busy, hosts_after = busy_cpu_seconds() - busy, hosts_cpu_seconds()
        hosts = None if hosts is None or hosts_after is None else hosts_after - hosts
        recap = list(RECAP.finditer(log.read_text(errors="replace")))
        totals = {key: sum(int(m[key]) for m in recap) for key in ("changed", "failed", "unreachable")}
        return {
            "seconds": round(seconds, 1),
            "load": round(load, 2),
            "settle": before,
            "returncode": returncode,
            "ok": returncode == 0 and bool(recap),
            # CPU-seconds over the run: the whole machine's, and the hosts' (containers) within them.
            "cpu_busy": round(busy, 1),
            "cpu_hosts": None if hosts is None else round(hosts, 1),
            **totals,
            "log": str(log),
        }

    def stop(self) -> None:
        if self.running and self.running.poll() is None:
            self.running.terminate()
            try:
                self.running.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.running.kill()
                self.running.wait()


@contextlib.contextmanager
def molecule_lock():
    """Holds the molecule lock (flock, as scripts/molecule-all.sh and scripts/demo.sh take it)."""
    path = os.environ.get("MOLECULE_LOCK", "/tmp/lookout-molecule.lock")
    with open(path, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"[scale] waiting for a molecule run on this machine to finish ({path})", flush=True)
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def remove_hosts() -> None:
    """This bench's containers and network, whatever interrupts the run (signals ignored meanwhile)."""
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        demo_sh("down")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def measure(args: argparse.Namespace, work: Path, results: list[dict]) -> dict | None:
    """Appends each size's row to results as it completes; returns what warming the wheelhouse found."""
    runner = Runner(args, work)
    wheelhouse = None
    try:
        for size in args.sizes:
            hosts = hosts_for(size)
            remove_hosts()  # nothing of an interrupted earlier run: fresh hosts
            demo_sh("create", "--no-ports", *hosts)
            if wheelhouse is None:
                wheelhouse = warm_wheelhouse(hosts[0])
                print(
                    f"[scale] wheelhouse for {wheelhouse['target']}: {wheelhouse['state']} "
                    f"({wheelhouse['seconds']} s, untimed)",
                    flush=True,
                )
            inventory = inventory_args(hosts, work)
            row: dict = {"size": size, "hosts": hosts, "web_hosts": len(web_hosts(hosts))}
            for phase, label in PHASES:
                if phase == "rerun" and not row["converge"]["ok"]:
                    row[phase] = None
                    continue
                runs = []
                for number in range(1, (args.reruns if phase == "rerun" else 1) + 1):
                    name = f"{size}-hosts-{phase}" + (f"-{number}" if phase == "rerun" else "")
                    print(f"[scale] {size} hosts: {label} {name} (waiting for a quiet machine)", flush=True)
                    run = runner.site(inventory, name)
                    runs.append(run)
                    print(
                        f"[scale] {size} hosts: {name} {run['seconds']} s, changed={run['changed']}, "
                        f"{'ok' if run['ok'] else 'FAILED, see ' + run['log']}; waited "
                        f"{run['settle']['waited']} s for {run['settle']['busy_cpus']} CPUs busy"
                        f"{'' if run['settle']['quiet'] else ' (NOT quiet)'}, load {run['load']}",
                        flush=True,
                    )
                    if not run["ok"]:
                        break
                row[phase] = median_run(runs)
            results.append(row)
            remove_hosts()
    finally:
        runner.stop()
        remove_hosts()
    return wheelhouse


# --- Report ------------------------------------------------------------------------------------------------


def median_run(runs: list[dict]) -> dict:
    """The run of median wall clock (the lower middle one of an even count), carrying every run's seconds;
    a failed run or a re-run that changed something is the figure instead, so it is never hidden."""
    bad = [run for run in runs if not run["ok"] or run["changed"]]
    middle = statistics.median_low(run["seconds"] for run in runs)
    chosen = dict(bad[0] if bad else next(run for run in runs if run["seconds"] == middle))
    chosen["runs"] = [run["seconds"] for run in runs]
    chosen["all_quiet"] = all(run["settle"]["quiet"] for run in runs)
    return chosen


def ratios(results: list[dict]) -> None:
    """Adds each size's ratio to the smallest size's run, per phase (when both succeeded)."""
    base = min(results, key=lambda row: row["size"])
    for row in results:
        for phase, _ in PHASES:
            run, first = row[phase], base[phase]
            if run and first and run["ok"] and first["ok"]:
                run["ratio"] = round(run["seconds"] / first["seconds"], 2)


def host_names(row: dict) -> str:
    web = "web1" if row["web_hosts"] == 1 else f"web1..web{row['web_hosts']}"
    return f"{web}, monitor1, load1"


def cell(run: dict | None, key: str) -> str:
    if run is None:
        return "—"
    if not run["ok"]:
        return f"FAILED ({run['seconds']} s)" if key == "seconds" else "—"
    if key == "seconds" and len(run["runs"]) > 1:
        return f"{run['seconds']:.1f} (of {', '.join(f'{s:.1f}' for s in run['runs'])})"
    if key == "changed":
        return str(run["changed"]) if run["changed"] == 0 else f"**{run['changed']}** (not idempotent)"
    if key == "ratio":
        return f"{run['ratio']:.2f}x" if "ratio" in run else "—"
    return f"{run[key]:.1f}" if key == "seconds" else f"{run[key]:.2f}"


def verdicts(results: list[dict]) -> dict:
    """Largest vs smallest size against the target, per phase: True, False, or None (no figure)."""
    largest = max(results, key=lambda row: row["size"])
    out = {}
    for phase, _ in PHASES:
        run = largest[phase]
        out[phase] = None if not run or "ratio" not in run else run["ratio"] <= TARGET
    return out


def table(results: list[dict], settings: dict) -> str:
    base = min(row["size"] for row in results)
    lines = [
        f"forks {settings['forks']} (ansible.cfg: {settings['forks_in_ansible_cfg']}), strategy "
        f"{settings['strategy']}, web batches {settings['serial'] or '1 (playbooks/web.yml default)'}; "
        f"wall clock of ansible-playbook site.yml, each run after a wait for at most "
        f"{settings['quiet_cpus']:g} CPUs busy (up to {settings['settle']:g} s); re-run: the median of "
        f"{settings['reruns']}; 1-minute load average before the run shown",
        "",
        f"| size | hosts | first converge (s) | re-run (s) | re-run changed | converge / {base} hosts "
        f"| re-run / {base} hosts | load before converge | load before re-run |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in results:
        converge, rerun = row["converge"], row["rerun"]
        lines.append(
            f"| {row['size']} | {host_names(row)} | {cell(converge, 'seconds')} | {cell(rerun, 'seconds')} "
            f"| {cell(rerun, 'changed')} | {cell(converge, 'ratio')} | {cell(rerun, 'ratio')} "
            f"| {cell(converge, 'load')} | {cell(rerun, 'load')} |"
        )
    lines += [
        "",
        "CPU-seconds over each run (N CPUs give at most N per second): the machine's busy time, of which "
        "in the hosts (the containers' cgroups) and the rest (the controller: Ansible, the docker CLI and "
        "daemons; and anything else running)",
        "",
        "| size | converge: busy | in the hosts | the rest | re-run: busy | in the hosts | the rest |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in results:
        cells = []
        for phase, _ in PHASES:
            run = row[phase] or {}
            busy, hosts = run.get("cpu_busy"), run.get("cpu_hosts")
            rest = None if busy is None or hosts is None else busy - hosts
            cells += ["—" if v is None else f"{v:.0f}" for v in (busy, hosts, rest)]
        lines.append(f"| {row['size']} | " + " | ".join(cells) + " |")
    if len(results) > 1:
        largest = max(row["size"] for row in results)
        found = verdicts(results)
        said = {True: "met", False: "missed", None: "no figure"}
        lines += [
            "",
            f"Target {largest} hosts ≤ {TARGET:g}x {base} hosts: first converge "
            f"{said[found['converge']]}, re-run {said[found['rerun']]}",
        ]
    return "\n".join(lines)


def nice_step(top: float) -> float:
    """A round tick step (1, 2, 2.5 or 5 times a power of ten) giving at most about five ticks up to top."""
    raw = max(top, 1e-9) / 5
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(factor * magnitude for factor in (1, 2, 2.5, 5, 10) if raw <= factor * magnitude)


def svg_plot(results: list[dict], settings: dict) -> str:
    """Seconds against hosts, one line per phase, with the target (TARGET x the smallest size) dashed."""
    width, height, left, right, top, bottom = 760, 420, 70, 240, 40, 60
    base = min(results, key=lambda row: row["size"])
    colours = {"converge": "#1f77b4", "rerun": "#d62728"}
    series = {
        phase: [(row["size"], row[phase]["seconds"]) for row in results if row[phase] and row[phase]["ok"]]
        for phase, _ in PHASES
    }
    limits = {
        phase: TARGET * base[phase]["seconds"] for phase, _ in PHASES if base[phase] and base[phase]["ok"]
    }
    values = [seconds for points in series.values() for _, seconds in points] + list(limits.values())
    step = nice_step(max(values, default=1) * 1.05)
    y_max = step * (int(max(values, default=1) * 1.05 / step) + 1)
    x_max = max(row["size"] for row in results)

    def x(hosts: float) -> float:
        return left + (width - left - right) * hosts / x_max

    def y(seconds: float) -> float:
        return height - bottom - (height - top - bottom) * seconds / y_max

    title = (
        f"site.yml on N hosts: forks {settings['forks']}, {settings['strategy']}, "
        f"web batches {settings['serial'] or 1}"
    )
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="22" text-anchor="middle" font-size="14">{title}</text>',
        f'<line x1="{left}" y1="{y(0)}" x2="{x(x_max)}" y2="{y(0)}" stroke="black"/>',
        f'<line x1="{left}" y1="{y(0)}" x2="{left}" y2="{y(y_max)}" stroke="black"/>',
        f'<text x="{x(x_max / 2)}" y="{height - 18}" text-anchor="middle">hosts</text>',
        f'<text x="18" y="{y(y_max / 2)}" text-anchor="middle" '
        f'transform="rotate(-90 18 {y(y_max / 2)})">seconds (wall clock)</text>',
    ]
    tick = 0.0
    while tick <= y_max + 1e-9:
        out.append(f'<line x1="{left}" y1="{y(tick):.1f}" x2="{x(x_max)}" y2="{y(tick):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:g}</text>')
        tick += step
    for row in results:
        out.append(
            f'<text x="{x(row["size"]):.1f}" y="{y(0) + 18}" text-anchor="middle">{row["size"]}</text>'
        )
    legend_y = top + 10
    for phase, label in PHASES:
        colour, points = colours[phase], series[phase]
        if points:
            path = " ".join(f"{x(h):.1f},{y(s):.1f}" for h, s in points)
            out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
            for hosts, seconds in points:
                out.append(f'<circle cx="{x(hosts):.1f}" cy="{y(seconds):.1f}" r="4" fill="{colour}"/>')
                out.append(
                    f'<text x="{x(hosts) + 6:.1f}" y="{y(seconds) - 6:.1f}" fill="{colour}">'
                    f"{seconds:.0f} s</text>"
                )
        if phase in limits:
            out.append(
                f'<line x1="{left}" y1="{y(limits[phase]):.1f}" x2="{x(x_max)}" '
                f'y2="{y(limits[phase]):.1f}" stroke="{colour}" stroke-dasharray="6 4"/>'
            )
        legend_x = width - right + 60
        out.append(
            f'<line x1="{legend_x}" y1="{legend_y}" x2="{legend_x + 24}" y2="{legend_y}" '
            f'stroke="{colour}" stroke-width="2"/>'
        )
        out.append(f'<text x="{legend_x + 30}" y="{legend_y + 4}">{label}</text>')
        out.append(
            f'<line x1="{legend_x}" y1="{legend_y + 18}" x2="{legend_x + 24}" y2="{legend_y + 18}" '
            f'stroke="{colour}" stroke-dasharray="6 4"/>'
        )
        out.append(f'<text x="{legend_x + 30}" y="{legend_y + 22}">{TARGET:g}x {base["size"]} hosts</text>')
        legend_y += 44
    out.append("</svg>")
    return "\n".join(out) + "\n"


# --- Main -----------------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[3, 6, 12], help="host counts (default 3 6 12)"
    )
    parser.add_argument(
        "--forks",
        type=int,
        default=None,
        help="ansible-playbook --forks (default: the larger of ansible.cfg's and the largest size)",
    )
    parser.add_argument(
        "--strategy",
        choices=("linear", "free"),
        default="linear",
        help="ANSIBLE_STRATEGY for site.yml's plays (default linear)",
    )
    parser.add_argument(
        "--serial",
        default=None,
        help="lookout_deploy_serial, web hosts per batch (a number or a percentage such as "
        "100%%); default: the web play's own, 1",
    )
    parser.add_argument(
        "--reruns", type=int, default=3, help="unchanged re-runs per size; the figure is their median (3)"
    )
    parser.add_argument(
        "--quiet-cpus",
        type=float,
        default=0.25,
        help="a quiet machine has at most this many CPUs busy over 5 s; each timed run waits for it (0.25)",
    )
    parser.add_argument(
        "--settle", type=float, default=180, help="longest wait for a quiet machine, seconds (180)"
    )
    parser.add_argument("--json", type=Path, default=ROOT / "artifacts" / "bench" / "scale.json")
    parser.add_argument("--svg", type=Path, default=ROOT / "artifacts" / "bench" / "scale.svg")
    parser.add_argument(
        "--logs",
        type=Path,
        default=ROOT / "artifacts" / "bench" / "scale-logs",
        help="directory for each run's ansible-playbook output",
    )
    args = parser.parse_args()
    if any(size < 3 for size in args.sizes):
        parser.error("--sizes: every size is at least 3 (web1, monitor1, load1)")
    args.sizes = sorted(set(args.sizes))
    args.forks_in_ansible_cfg = configured_forks()
    if args.forks is None:
        args.forks = max(args.forks_in_ansible_cfg, *args.sizes)
    if args.forks < 1:
        parser.error("--forks must be positive")
    if args.reruns < 1:
        parser.error("--reruns must be at least 1")
    if args.quiet_cpus <= 0 or args.settle < 0:
        parser.error("--quiet-cpus must be positive and --settle not negative")
    return args


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args.logs.mkdir(parents=True, exist_ok=True)
    settings = {
        "forks": args.forks,
        "forks_in_ansible_cfg": args.forks_in_ansible_cfg,
        "strategy": args.strategy,
        "serial": args.serial,
        "reruns": args.reruns,
        "quiet_cpus": args.quiet_cpus,
        "settle": args.settle,
        "cpus": os.cpu_count(),
    }
    started = datetime.now(UTC).isoformat(timespec="seconds")
    results: list[dict] = []
    try:
        with molecule_lock(), tempfile.TemporaryDirectory(prefix="lookout-scale-bench-") as tmp:
            wheelhouse = measure(args, Path(tmp), results)
    except BaseException as error:
        if results:  # what was measured before the interruption or the error
            ratios(results)
            print("\n" + table(results, settings), flush=True)
        if isinstance(error, KeyboardInterrupt):
            return 130
        if isinstance(error, subprocess.CalledProcessError):
            print(
                f"[scale] {' '.join(map(str, error.cmd))} failed (exit {error.returncode})", file=sys.stderr
            )
            return 2
        raise
    ratios(results)
    report = {
        "started": started,
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": settings,
        "wheelhouse": wheelhouse,
        "target_ratio": TARGET,
        "target_met": verdicts(results) if len(results) > 1 else None,
        "sizes": results,
    }
    print()
    print(table(results, settings))
    for path, text in (
        (args.json, json.dumps(report, indent=2) + "\n"),
        (args.svg, svg_plot(results, settings)),
    ):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"[scale] wrote {path}")
    bad = [
        row
        for row in results
        for phase, _ in PHASES
        if row[phase] is None or not row[phase]["ok"] or (phase == "rerun" and row[phase]["changed"])
    ]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
