#!/usr/bin/env python3
"""A local stand-in for Slack's incoming webhooks: records every message Alertmanager posts.

Tests and the demo point `vault_slack_webhook_url` at it instead of hooks.slack.com. It answers every
POST with 200 "ok" like Slack, and keeps the messages (newest last, at most --keep) in memory and in a
JSON-lines file, so a restart loses nothing. It also stands in for a heartbeat service (the dead-man's
switch: `vault_heartbeat_url` points at /heartbeat/<name>) and can be told to fail like an unavailable
Slack for a while.

    slack-receiver.py --listen 0.0.0.0:5001 --store /var/lib/slack-receiver/messages.jsonl \
        --heartbeat-timeout 180 --expect-heartbeat demo

    GET /             the messages as text, newest first (for people)
    GET /messages     the messages as JSON; ?channel=%23demo-alerts and ?since=<unix time> filter
    GET /health       200 "ok"
    POST /<any path>  a Slack message (JSON); recorded with its path, channel, title, status and time
                      (while failing: refused with the failure's status, counted, not recorded)

    POST /heartbeat/<name>  a heartbeat (Alertmanager's webhook post of the Watchdog alert); 200 "ok",
                            never a Slack message, accepted while failing
    GET /heartbeats         per name: first and last arrival (unix time), count, seconds since the last
                            and `missing` (nothing for longer than --heartbeat-timeout seconds; a name of
                            --expect-heartbeat that never arrived is missing that long after the start)
    POST /control/fail      {"status": 500 or 429, "seconds": N}: Slack message posts answer that status
                            for N seconds (429 with Retry-After); {"seconds": 0} ends it now
    GET /control/fail       the failure mode: failing, status, until, seconds left, the posts refused in
                            the current (or last) failure window and in all of them

Only the Python standard library: it runs on a bare Debian host.
"""

from __future__ import annotations

import argparse
import json
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

MAX_BODY = 1024 * 1024
HEARTBEAT_PREFIX = "/heartbeat/"
CONTROL_FAIL = "/control/fail"
FAILURE_STATUSES = (429, 500)


class Store:
    """Messages in arrival order, mirrored to a JSON-lines file."""

    def __init__(self, path: Path | None, keep: int) -> None:
        self.path, self.keep = path, keep
        self.lock = threading.Lock()
        self.messages: list[dict] = []
        if path and path.exists():
            for line in path.read_text().splitlines():
                if line.strip():
                    self.messages.append(json.loads(line))
            self.messages = self.messages[-keep:]

    def add(self, path: str, body: object) -> dict:
        with self.lock:
            message = {
                "id": (self.messages[-1]["id"] + 1) if self.messages else 1,
                "received_at": round(time.time(), 3),
                "path": path,
                **summarise(body),
                "body": body,
            }
            self.messages = [*self.messages[-(self.keep - 1) :], message]
            if self.path:
                with self.path.open("a") as out:
                    out.write(json.dumps(message, sort_keys=True) + "\n")
            return message

    def select(self, channel: str | None = None, since: float | None = None) -> list[dict]:
        with self.lock:
            return [
                m
                for m in self.messages
                if channel in (None, m["channel"]) and (since is None or m["received_at"] >= since)
            ]


class Heartbeats:
    """Arrivals per heartbeat name; a name is missing when its last arrival (or the start, for an expected
    name never seen) is older than the timeout."""

    def __init__(self, timeout: float, expected: list[str], clock=time.time) -> None:
        self.timeout, self.clock = timeout, clock
        self.lock = threading.Lock()
        self.started = clock()
        self.seen: dict[str, dict] = {}
        self.expected = list(dict.fromkeys(expected))

    def beat(self, name: str) -> dict:
        with self.lock:
            now = round(self.clock(), 3)
            entry = self.seen.setdefault(name, {"first": now, "last": now, "count": 0})
            entry["last"], entry["count"] = now, entry["count"] + 1
            return dict(entry)

    def report(self) -> dict:
        with self.lock:
            now = self.clock()
            names = {**dict.fromkeys(self.expected), **self.seen}
            report = {}
            for name in sorted(names):
                entry = self.seen.get(name)
                since = now - (entry["last"] if entry else self.started)
                report[name] = {
                    "first": entry["first"] if entry else None,
                    "last": entry["last"] if entry else None,
                    "count": entry["count"] if entry else 0,
                    "seconds_since_last": round(since, 3) if entry else None,
                    "missing": since > self.timeout,
                }
            return {"now": round(now, 3), "timeout": self.timeout, "heartbeats": report}


class Failure:
    """The failure mode: until a time, Slack message posts get one status and are counted, not recorded."""

    def __init__(self, clock=time.time) -> None:
        self.clock = clock
        self.lock = threading.Lock()
        self.status, self.until, self.refused, self.refused_total = None, 0.0, 0, 0

    def start(self, status: int, seconds: float) -> dict:
        with self.lock:
            if seconds > 0:
                self.status, self.until, self.refused = status, self.clock() + seconds, 0
            else:
                self.until = min(self.until, self.clock())
        return self.state()

    def refuse(self) -> tuple[int, int] | None:
        """(status, seconds left) when the post must be refused, and counts it; None when not failing."""
        with self.lock:
            left = self.until - self.clock()
            if left <= 0:
                return None
            self.refused += 1
            self.refused_total += 1
            return self.status, max(1, math.ceil(left))

    def state(self) -> dict:
        with self.lock:
            left = max(0.0, self.until - self.clock())
            return {
                "failing": left > 0,
                "status": self.status,
                "until": round(self.until, 3) if self.status else None,
                "seconds_left": round(left, 3),
                "refused": self.refused,
                "refused_total": self.refused_total,
            }


def parse_failure(raw: bytes) -> tuple[int, float]:
    """(status, seconds) of a /control/fail request; ValueError names what is wrong."""
    try:
        body = json.loads(raw or b"null")
    except ValueError as error:
        raise ValueError("the body must be JSON") from error
    if not isinstance(body, dict):
        raise ValueError('the body must be a JSON object: {"status": 500 or 429, "seconds": N}')
    seconds = body.get("seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds < math.inf:
        raise ValueError("seconds must be a number, 0 or more")
    status = body.get("status", FAILURE_STATUSES[1] if seconds == 0 else None)
    if isinstance(status, bool) or status not in FAILURE_STATUSES:
        raise ValueError(f"status must be one of {list(FAILURE_STATUSES)}")
    return status, float(seconds)


def summarise(body: object) -> dict:
    """Channel, title, text and firing/resolved status of a Slack payload (Alertmanager's or any)."""
    if not isinstance(body, dict):
        return {"channel": None, "title": None, "text": str(body), "status": None}
    attachments = body.get("attachments") or [{}]
    first = attachments[0] if isinstance(attachments[0], dict) else {}
    title = first.get("title") or body.get("text", "")
    text = first.get("text") or body.get("text", "")
    upper = str(title).upper()
    status = "firing" if "FIRING" in upper else "resolved" if "RESOLVED" in upper else None
    return {"channel": body.get("channel"), "title": title, "text": text, "status": status}


def make_handler(
    store: Store, heartbeats: Heartbeats | None = None, failure: Failure | None = None
) -> type[BaseHTTPRequestHandler]:
    heartbeats = heartbeats or Heartbeats(timeout=180, expected=[])
    failure = failure or Failure()

    class Handler(BaseHTTPRequestHandler):
        server_version = "slack-receiver"

        def _reply(
            self,
            status: int,
            body: str,
            content_type: str = "text/plain; charset=utf-8",
            headers: dict[str, str] | None = None,
        ) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _json(self, status: int, body: object) -> None:
            self._reply(status, json.dumps(body, indent=1), "application/json")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._reply(413, "too large")
                return
            raw = self.rfile.read(length)
            path = urlsplit(self.path).path
            if path.startswith(HEARTBEAT_PREFIX) and path[len(HEARTBEAT_PREFIX) :].strip("/"):
                heartbeats.beat(path[len(HEARTBEAT_PREFIX) :].strip("/"))
                self._reply(200, "ok")
                return
            if path == CONTROL_FAIL:
                try:
                    status, seconds = parse_failure(raw)
                except ValueError as error:
                    self._reply(400, f"{error}\n")
                    return
                self._json(200, failure.start(status, seconds))
                return
            refused = failure.refuse()
            if refused:
                status, left = refused
                headers = {"Retry-After": str(left)} if status == 429 else {}
                self._reply(status, "rate_limited" if status == 429 else "internal_error", headers=headers)
                return
            try:
                body = json.loads(raw or b"null")
            except ValueError:
                body = raw.decode(errors="replace")
            store.add(self.path, body)
            self._reply(200, "ok")

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            if url.path == "/health":
                self._reply(200, "ok")
            elif url.path == "/messages":
                since = float(query["since"]) if "since" in query else None
                messages = store.select(query.get("channel"), since)
                self._reply(200, json.dumps(messages, indent=1), "application/json")
            elif url.path == "/heartbeats":
                self._json(200, heartbeats.report())
            elif url.path == CONTROL_FAIL:
                self._json(200, failure.state())
            elif url.path == "/":
                self._reply(200, render_text(store.select()))
            else:
                self._reply(404, "not found")

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the store is the record."""

    return Handler


def render_text(messages: list[dict]) -> str:
    if not messages:
        return "No message yet. Alertmanager's Slack messages appear here.\n"
    blocks = []
    for m in reversed(messages):
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(m["received_at"]))
        blocks.append(f"#{m['id']} {when}  {m['channel'] or '(no channel)'}\n{m['title']}\n{m['text']}\n")
    return "\n".join(blocks)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:5001", help="address:port (default %(default)s)")
    parser.add_argument("--store", type=Path, help="JSON-lines file keeping the messages across restarts")
    parser.add_argument("--keep", type=int, default=1000, help="messages kept (default %(default)s)")
    parser.add_argument(
        "--heartbeat-timeout",
        type=float,
        default=180,
        help="seconds without a heartbeat after which a name is missing (default %(default)s)",
    )
    parser.add_argument(
        "--expect-heartbeat",
        action="append",
        default=[],
        metavar="NAME",
        help="a heartbeat name reported (and missing after the timeout) before its first arrival; repeatable",
    )
    args = parser.parse_args(argv)
    if args.heartbeat_timeout <= 0:
        parser.error("--heartbeat-timeout must be above 0")
    host, _, port = args.listen.rpartition(":")
    handler = make_handler(
        Store(args.store, args.keep), Heartbeats(args.heartbeat_timeout, args.expect_heartbeat), Failure()
    )
    server = ThreadingHTTPServer((host, int(port)), handler)
    server.serve_forever()


if __name__ == "__main__":
    main()
