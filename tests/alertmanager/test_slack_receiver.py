"""scripts/slack-receiver.py, the local stand-in for Slack and for the heartbeat service, on 127.0.0.1: its
message API as before, heartbeats and when they count as missing, and the failure mode (500, or 429 with
Retry-After) that refuses and counts Slack posts for a while and records nothing meanwhile."""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import ThreadingHTTPServer

import pytest
from controller_helpers import ROOT

SCRIPT = ROOT / "scripts" / "slack-receiver.py"


def _load():
    spec = importlib.util.spec_from_file_location("slack_receiver", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


receiver = _load()


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _call(url: str, payload=None) -> tuple[int, dict, bytes]:
    if payload is not None and not isinstance(payload, bytes):
        payload = json.dumps(payload).encode()
    data = payload
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


class Served:
    def __init__(self, tmp_path, timeout: float = 60, expected: tuple[str, ...] = ()) -> None:
        self.clock = Clock()
        self.store_file = tmp_path / "messages.jsonl"
        handler = receiver.make_handler(
            receiver.Store(self.store_file, 100),
            receiver.Heartbeats(timeout, list(expected), clock=self.clock),
            receiver.Failure(clock=self.clock),
        )
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def get(self, path: str):
        status, _, body = _call(self.url + path)
        assert status == 200, (path, status, body)
        return json.loads(body)

    def post(self, path: str, payload=None) -> tuple[int, dict, bytes]:
        return _call(self.url + path, {} if payload is None else payload)

    def messages(self) -> list[dict]:
        return self.get("/messages")


@pytest.fixture
def served(tmp_path):
    s = Served(tmp_path)
    yield s
    s.server.shutdown()
    s.server.server_close()


SLACK = {"channel": "#demo-alerts", "attachments": [{"title": "[FIRING:1] WebsiteDown", "text": "web1 down"}]}


def test_messages_are_recorded_as_before(served):
    status, _, body = served.post("/services/demo", SLACK)
    assert (status, body) == (200, b"ok")
    (message,) = served.messages()
    assert message["path"] == "/services/demo"
    assert (message["channel"], message["status"]) == ("#demo-alerts", "firing")
    assert served.get("/messages?channel=%23other") == []
    assert served.get(f"/messages?since={message['received_at'] + 1}") == []
    assert json.loads(served.store_file.read_text().splitlines()[0])["id"] == 1
    status, _, text = _call(served.url + "/")
    assert status == 200 and b"WebsiteDown" in text
    assert _call(served.url + "/health")[2] == b"ok"


def test_heartbeats_are_counted_per_name_and_never_messages(served):
    for _ in range(2):
        assert served.post("/heartbeat/production", {"status": "firing"})[0] == 200
        served.clock.now += 30
    assert served.post("/heartbeat/testing")[0] == 200
    report = served.get("/heartbeats")
    assert report["timeout"] == 60
    production = report["heartbeats"]["production"]
    assert (production["count"], production["missing"]) == (2, False)
    assert production["first"] == 1_000_000.0 and production["last"] == 1_000_030.0
    assert production["seconds_since_last"] == 30
    assert report["heartbeats"]["testing"]["count"] == 1
    assert served.messages() == [], "a heartbeat is not a Slack message"


def test_a_heartbeat_is_missing_after_the_timeout_and_back_with_the_next(served):
    served.post("/heartbeat/demo")
    served.clock.now += 60
    # Exactly the timeout is not late yet.
    assert served.get("/heartbeats")["heartbeats"]["demo"]["missing"] is False
    served.clock.now += 1
    assert served.get("/heartbeats")["heartbeats"]["demo"]["missing"] is True
    served.post("/heartbeat/demo")
    demo = served.get("/heartbeats")["heartbeats"]["demo"]
    assert (demo["missing"], demo["count"]) == (False, 2)


def test_an_expected_heartbeat_that_never_came_is_missing_after_the_timeout(tmp_path):
    s = Served(tmp_path, timeout=10, expected=("stack",))
    try:
        stack = s.get("/heartbeats")["heartbeats"]["stack"]
        assert (stack["count"], stack["last"], stack["missing"]) == (0, None, False)
        s.clock.now += 11
        assert s.get("/heartbeats")["heartbeats"]["stack"]["missing"] is True
    finally:
        s.server.shutdown()
        s.server.server_close()


def test_a_heartbeat_needs_a_name(served):
    served.post("/heartbeat/")
    assert served.get("/heartbeats")["heartbeats"] == {}
    assert len(served.messages()) == 1, "without a name it is an ordinary post"


@pytest.mark.parametrize("status", [500, 429])
def test_failing_refuses_counts_and_records_nothing_then_recovers(served, status):
    state = json.loads(served.post("/control/fail", {"status": status, "seconds": 120})[2])
    assert (state["failing"], state["status"], state["refused"]) == (True, status, 0)
    for _ in range(3):
        answer, headers, _ = served.post("/services/demo", SLACK)
        assert answer == status
        served.clock.now += 10
    # 120 s from the start, 30 s gone: 90 s left, what a client is told to wait.
    assert ("Retry-After" in headers) == (status == 429)
    if status == 429:
        assert headers["Retry-After"] == "100"
    assert served.post("/heartbeat/demo")[0] == 200, "heartbeats are not Slack posts"
    state = served.get("/control/fail")
    assert (state["failing"], state["refused"], state["refused_total"]) == (True, 3, 3)
    assert state["seconds_left"] == 90
    assert served.messages() == [], "nothing is recorded while failing"
    served.clock.now += 90
    assert served.post("/services/demo", SLACK)[0] == 200
    assert len(served.messages()) == 1
    state = served.get("/control/fail")
    assert (state["failing"], state["refused"], state["refused_total"]) == (False, 3, 3)


def test_a_new_failure_window_counts_afresh_and_zero_seconds_ends_it(served):
    served.post("/control/fail", {"status": 500, "seconds": 60})
    served.post("/services/demo", SLACK)
    served.post("/control/fail", {"status": 429, "seconds": 60})
    served.post("/services/demo", SLACK)
    state = served.get("/control/fail")
    assert (state["status"], state["refused"], state["refused_total"]) == (429, 1, 2)
    state = json.loads(served.post("/control/fail", {"seconds": 0})[2])
    assert state["failing"] is False
    assert served.post("/services/demo", SLACK)[0] == 200


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        [500, 10],
        {"status": 503, "seconds": 10},
        {"status": "500", "seconds": 10},
        {"status": 500},
        {"status": 500, "seconds": -1},
        {"status": 500, "seconds": True},
    ],
    ids=["not-json", "not-an-object", "other-status", "status-as-text", "no-seconds", "negative", "bool"],
)
def test_a_bad_failure_request_is_refused_and_changes_nothing(served, body):
    status, _, answer = served.post("/control/fail", body)
    assert status == 400, answer
    assert served.get("/control/fail")["failing"] is False
    assert served.messages() == [], "a control request is not a message"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_program_reports_an_expected_heartbeat_missing_in_real_time(tmp_path):
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [
            *(sys.executable, str(SCRIPT), "--listen", f"127.0.0.1:{port}", "--heartbeat-timeout", "1"),
            *("--expect-heartbeat", "stack", "--store", str(tmp_path / "m.jsonl")),
        ]
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                report = json.loads(_call(url + "/heartbeats")[2])
                break
            except OSError:
                assert time.monotonic() < deadline, "the receiver did not start"
                time.sleep(0.1)
        assert report["heartbeats"]["stack"]["missing"] is False
        time.sleep(1.3)
        assert json.loads(_call(url + "/heartbeats")[2])["heartbeats"]["stack"]["missing"] is True
        assert _call(url + "/heartbeat/stack", {})[0] == 200
        assert json.loads(_call(url + "/heartbeats")[2])["heartbeats"]["stack"]["missing"] is False
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_program_refuses_a_timeout_that_is_not_positive():
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--heartbeat-timeout", "0"], capture_output=True, text=True, check=False
    )
    assert run.returncode == 2 and "--heartbeat-timeout" in run.stderr
