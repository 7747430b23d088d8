#!/usr/bin/env python3
"""Holds N slow clients open against a TLS front door while timing /health requests through it.

Each slow client completes the TLS handshake, sends part of a request head and then nothing more (the
half-sent request of a slow or malicious client); they are all held until the timing is done, then
closed. Meanwhile M requests for the health URL are timed one after another, each on a new connection.

    slow_clients.py --host lb1 --port 443 --clients 200 --requests 100 --out /tmp/slow.json

Writes {"held": n, "held_at_end": n, "requests": m, "failed": k, "p50_ms": .., "p95_ms": .., "max_ms": ..,
"errors": [...]} and exits 0; the caller asserts. Bounded: every socket has a timeout and the whole run
stops after --max-seconds.
"""

import argparse
import json
import socket
import ssl
import statistics
import time
import urllib.request


def open_slow_client(host: str, port: int, context: ssl.SSLContext, timeout: float) -> ssl.SSLSocket:
    raw = socket.create_connection((host, port), timeout=timeout)
    tls = context.wrap_socket(raw, server_hostname=host)
    # A request line and one header, never the blank line that ends the head.
    tls.sendall(f"GET /api/articles HTTP/1.1\r\nHost: {host}\r\n".encode())
    return tls


def still_open(client: ssl.SSLSocket) -> bool:
    """True while the server has not closed the connection (nothing to read, no EOF)."""
    client.setblocking(False)
    try:
        return client.recv(1) != b""
    except (ssl.SSLWantReadError, BlockingIOError):
        return True
    except OSError:
        return False


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, default=443)
    parser.add_argument("--path", default="/health")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=5)
    parser.add_argument("--max-seconds", type=float, default=60)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    deadline = time.monotonic() + args.max_seconds
    context = ssl.create_default_context()
    held, errors = [], []
    for _ in range(args.clients):
        if time.monotonic() > deadline:
            break
        try:
            held.append(open_slow_client(args.host, args.port, context, args.timeout))
        except OSError as error:
            errors.append(f"slow client: {type(error).__name__}: {error}")

    url = f"https://{args.host}:{args.port}{args.path}"
    timings, failed = [], 0
    for _ in range(args.requests):
        if time.monotonic() > deadline:
            break
        start = time.monotonic()
        try:
            with urllib.request.urlopen(url, timeout=args.timeout, context=context) as response:
                response.read()
                ok = response.status == 200
        except OSError as error:
            ok = False
            errors.append(f"request: {type(error).__name__}: {error}")
        timings.append((time.monotonic() - start) * 1000)
        failed += not ok

    held_at_end = sum(still_open(client) for client in held)
    for client in held:
        client.close()

    timings.sort()
    result = {
        "held": len(held),
        "held_at_end": held_at_end,
        "requests": len(timings),
        "failed": failed,
        "p50_ms": round(statistics.median(timings), 1) if timings else None,
        "p95_ms": round(timings[max(0, int(len(timings) * 0.95) - 1)], 1) if timings else None,
        "max_ms": round(timings[-1], 1) if timings else None,
        "errors": errors[:5],
    }
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump(result, handle)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
