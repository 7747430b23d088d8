#!/usr/bin/env python3
"""A local stand-in for Slack's incoming webhooks: records every message Alertmanager posts.

Tests and the demo point `vault_slack_webhook_url` at it instead of hooks.slack.com. It answers every
POST with 200 "ok" like Slack, and keeps the messages (newest last, at most --keep) in memory and in a
JSON-lines file, so a restart loses nothing.

    slack-receiver.py --listen 0.0.0.0:5001 --store /var/lib/slack-receiver/messages.jsonl

    GET /             the messages as text, newest first (for people)
    GET /messages     the messages as JSON; ?channel=%23demo-alerts and ?since=<unix time> filter
    GET /health       200 "ok"
    POST /<any path>  a Slack message (JSON); recorded with its path, channel, title, status and time

Only the Python standard library: it runs on a bare Debian host.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

MAX_BODY = 1024 * 1024


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


def make_handler(store: Store) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "slack-receiver"

        def _reply(self, status: int, body: str, content_type: str = "text/plain; charset=utf-8") -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._reply(413, "too large")
                return
            raw = self.rfile.read(length)
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
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    server = ThreadingHTTPServer((host, int(port)), make_handler(Store(args.store, args.keep)))
    server.serve_forever()


if __name__ == "__main__":
    main()
