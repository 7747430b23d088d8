#!/usr/bin/env python3
"""Runs a command (an ansible-playbook run) and kills it, with everything it started, the moment a watch
command prints an expected line: how an operator's deploy is cut short at a chosen point (Ctrl-C twice, a
lost controller). Prints one JSON line: whether the cut happened, after how many seconds, and the tail of
the command's output. Exits 0 only when the command was cut; 1 when it ended (or the time ran out) first.

    interrupt_run.py --watch 'docker exec web1 readlink /opt/conduit/current' \
        --until /opt/conduit/releases/1.0.0 --timeout 300 -- ansible-playbook -i inv playbooks/deploy.yml
"""

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--watch", required=True, help="command whose output is compared, run every --interval"
    )
    parser.add_argument(
        "--until", required=True, help="cut the run when --watch prints exactly this (stripped)"
    )
    parser.add_argument("--interval", type=float, default=0.2)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command to run after --")

    with tempfile.TemporaryFile() as output:
        started = time.monotonic()
        run = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        cut, seen = False, ""
        while time.monotonic() - started < args.timeout and run.poll() is None:
            watch = subprocess.run(shlex.split(args.watch), capture_output=True, text=True, check=False)
            seen = watch.stdout.strip()
            if seen == args.until:
                os.killpg(run.pid, signal.SIGKILL)
                cut = True
                break
            time.sleep(args.interval)
        if run.poll() is None and not cut:
            os.killpg(run.pid, signal.SIGKILL)
        run.wait()
        output.seek(0)
        tail = output.read().decode(errors="replace")[-2000:]
    print(
        json.dumps(
            {
                "cut": cut,
                "seconds": round(time.monotonic() - started, 2),
                "returncode": run.returncode,
                "last_seen": seen,
                "tail": tail,
            }
        )
    )
    return 0 if cut else 1


if __name__ == "__main__":
    sys.exit(main())
