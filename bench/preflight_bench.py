#!/usr/bin/env python3
"""Benchmark of playbooks/preflight.yml on the controller: how long the checks before anything changes take.

Not a test: it prints figures. The inventory is production's hosts and groups with production's knobs and
demo's plain secrets (the keys of production's vault; the heartbeat URL made https, as production
requires), every host reached with the local connection at its own loopback address, as
tests/preflight does. Each round is one `ansible-playbook --check` run with ansible.posix.profile_tasks;
it reports the wall time, the CPU time of ansible-playbook and its forks (less swayed by other work on
the machine), the time of common's "Check the values by kind" tasks (summed over the includes) and the
1-minute load average at start, then the medians.

Usage (from the repository root, with the venv that has Ansible):

    python bench/preflight_bench.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "shared"))
from controller_helpers import ROOT, ansible_playbook, local_host

PLAYBOOK = ROOT / "playbooks" / "preflight.yml"
VALUE_CHECKS = "common : Check the values by kind"
# Every task's time, not only the 20 longest.
PROFILE = {
    "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks",
    "PROFILE_TASKS_TASK_OUTPUT_LIMIT": "all",
}
PROFILE_LINE = re.compile(r"^(?P<task>.+?) -+ (?P<seconds>[0-9.]+)s$", re.M)


def _inventory_file(*parts: str) -> dict:
    return yaml.safe_load(ROOT.joinpath("inventories", *parts).read_text())


def inventory() -> dict:
    hosts = _inventory_file("production", "hosts.yml")
    knobs = _inventory_file("production", "group_vars", "all", "vars.yml")
    secrets = _inventory_file("demo", "group_vars", "all", "demo_secrets.yml")
    secrets["vault_heartbeat_url"] = "https://heartbeat.example.org/ping"
    children: dict = {}
    addresses: dict[str, str] = {}
    for group, body in hosts["all"]["children"].items():
        children[group] = {"hosts": {}}
        for host in body.get("hosts") or {}:
            addresses.setdefault(host, f"127.0.0.{11 + len(addresses)}")
            children[group]["hosts"][host] = local_host(ansible_host=addresses[host])
    return {"all": {"vars": {**knobs, **secrets}, "children": children}}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def one_run(workdir: Path) -> tuple[float, float, float, float]:
    """(wall seconds, CPU seconds of ansible-playbook and its forks, seconds in the value checks, 1-minute
    load at start) of one run; exits if it fails."""
    load = os.getloadavg()[0]
    start, start_cpu = time.monotonic(), _children_cpu()
    run = ansible_playbook(PLAYBOOK, inventory(), workdir, "--check", extra_env=PROFILE)
    wall, cpu = time.monotonic() - start, _children_cpu() - start_cpu
    if run.returncode != 0:
        sys.exit(f"the preflight failed:\n{run.stdout[-4000:]}\n{run.stderr[-2000:]}")
    checks = sum(
        float(m["seconds"]) for m in PROFILE_LINE.finditer(run.stdout) if m["task"].strip() == VALUE_CHECKS
    )
    return wall, cpu, checks, load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="preflight-bench-") as tmp:
        runs = []
        for number in range(1, args.rounds + 1):
            wall, cpu, checks, load = one_run(Path(tmp))
            runs.append((wall, cpu, checks))
            figures = f"{wall:.1f} s, CPU {cpu:.1f} s, value checks {checks:.2f} s ({checks / wall:.0%})"
            print(f"run {number}: {figures}, load {load:.2f}", flush=True)
    wall, cpu, checks = (statistics.median(figures) for figures in zip(*runs, strict=True))
    print(f"median of {len(runs)}: {wall:.1f} s, CPU {cpu:.1f} s, value checks {checks:.2f} s")


if __name__ == "__main__":
    main()
