#!/usr/bin/env python3
"""Service drill, run on a host. With --kill: for each `UNIT=URL` argument, in turn, kill the unit's main
process with SIGKILL (what the OOM killer or a crash does), then measure how long until systemd runs the
unit again under a new main process and URL answers HTTP 200. Without --kill (after a host restart): how
long until each unit is active and its URL answers HTTP 200. Prints one JSON list, one entry per unit:
seconds (null when not serving within --timeout), PIDs, the last error seen and, with --kill, the unit's
restart policy (Restart=, RestartSec=, the start limit window)."""

import argparse
import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request


def unit_properties(unit: str, *names: str) -> dict[str, str]:
    command = ["systemctl", "show", f"--property={','.join(names)}", unit]
    shown = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return dict(line.split("=", 1) for line in shown.splitlines() if "=" in line)


def unit_state(unit: str) -> tuple[str, int]:
    fields = unit_properties(unit, "ActiveState", "MainPID")
    return fields.get("ActiveState", ""), int(fields.get("MainPID", "0") or 0)


def answers(url: str) -> str:
    """'' when URL answers 200, else what it answered."""
    # Liveness only: the drill asks whether the server answers, not whether its certificate verifies.
    context = ssl._create_unverified_context()
    try:
        with urllib.request.urlopen(url, timeout=3, context=context) as response:
            return "" if response.status == 200 else f"HTTP {response.status}"
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code}"
    except OSError as error:
        return str(error)


def restart_policy(unit: str) -> dict:
    """Restart= and the start limit window: 0 means systemd never gives up restarting the unit."""
    return unit_properties(unit, "Restart", "RestartUSec", "StartLimitIntervalUSec")


def drill(unit: str, url: str, timeout: float) -> dict:
    return {**drill_once(unit, url, timeout), "policy": restart_policy(unit)}


def wait_serving(unit: str, url: str, timeout: float) -> dict:
    started, problem = time.monotonic(), "not active"
    while time.monotonic() - started < timeout:
        state, pid = unit_state(unit)
        problem = answers(url) if state == "active" else f"unit {state}"
        if not problem:
            return {"unit": unit, "url": url, "seconds": round(time.monotonic() - started, 2), "pid": pid}
        time.sleep(0.1)
    return {"unit": unit, "url": url, "seconds": None, "error": problem}


def drill_once(unit: str, url: str, timeout: float) -> dict:
    state, old_pid = unit_state(unit)
    problem = answers(url)
    if state != "active" or old_pid == 0 or problem:
        return {
            "unit": unit,
            "url": url,
            "seconds": None,
            "error": f"not serving before the kill: {state} {problem}",
        }
    os.kill(old_pid, signal.SIGKILL)
    killed = time.monotonic()
    new_pid, problem = 0, "not restarted"
    while time.monotonic() - killed < timeout:
        state, new_pid = unit_state(unit)
        if state == "active" and new_pid not in (0, old_pid):
            problem = answers(url)
            if not problem:
                seconds = round(time.monotonic() - killed, 2)
                return {"unit": unit, "url": url, "seconds": seconds, "old_pid": old_pid, "new_pid": new_pid}
        time.sleep(0.1)
    return {
        "unit": unit,
        "url": url,
        "seconds": None,
        "old_pid": old_pid,
        "new_pid": new_pid,
        "error": problem,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for each unit")
    parser.add_argument("--kill", action="store_true", help="kill each unit's main process first")
    parser.add_argument("drills", nargs="+", metavar="UNIT=URL")
    args = parser.parse_args()
    results = []
    for item in args.drills:
        unit, _, url = item.partition("=")
        results.append(drill(unit, url, args.timeout) if args.kill else wait_serving(unit, url, args.timeout))
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
