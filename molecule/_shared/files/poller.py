#!/usr/bin/env python3
"""Polls URLs back to back until a stop file appears (or a time limit), counting answers other than 200
and noting when the version a URL reports changes (Conduit's /health answers {"version": ...}).

    poller.py --url http://web1:5566/health --url http://web2:5566/health \\
        --ready /tmp/p.ready --stop /tmp/p.stop --out /tmp/p.json --max-seconds 300

Writes {url: {"ok": n, "failed": n, "errors": [first few failures], "versions": [[seconds, version], ...]}}
to --out when it stops; seconds count from the start, on the same clock for every URL, and "versions"
holds the first version seen and then each change.
"""

import argparse
import json
import time
import urllib.error
import urllib.request
from pathlib import Path

KEPT_ERRORS = 5


def probe(url: str, timeout: float) -> tuple[str | None, str | None]:
    """(None, version) when the URL answers 200, else (what went wrong, None)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = response.read()
            if response.status != 200:
                return f"HTTP {response.status}", None
            try:
                version = json.loads(body).get("version")
            except (ValueError, AttributeError):
                version = None
            return None, version
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code}: {error.read()[:200]!r}", None
    except OSError as error:
        return f"{type(error).__name__}: {error}", None


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", action="append", required=True)
    parser.add_argument("--ready", required=True)
    parser.add_argument("--stop", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--max-seconds", type=float, default=300)
    parser.add_argument("--interval", type=float, default=0.05)
    parser.add_argument("--timeout", type=float, default=10)
    args = parser.parse_args()
    counts = {url: {"ok": 0, "failed": 0, "errors": [], "versions": []} for url in args.url}
    start = time.monotonic()
    stop = Path(args.stop)
    while not stop.exists() and time.monotonic() - start < args.max_seconds:
        for url in args.url:
            error, version = probe(url, args.timeout)
            if error is None:
                counts[url]["ok"] += 1
                seen = counts[url]["versions"]
                if version is not None and (not seen or seen[-1][1] != version):
                    seen.append([round(time.monotonic() - start, 2), version])
            else:
                counts[url]["failed"] += 1
                if len(counts[url]["errors"]) < KEPT_ERRORS:
                    counts[url]["errors"].append(f"{time.monotonic() - start:.1f}s {error}")
        Path(args.ready).touch()
        time.sleep(args.interval)
    Path(args.out).write_text(json.dumps(counts), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
