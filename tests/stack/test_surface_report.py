"""molecule/stack/surface_report.py: the stack's port scan judged against its policy of who talks to whom."""

import importlib.util
import json
import pathlib
import subprocess
import sys

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "molecule" / "stack" / "surface_report.py"
SPEC = importlib.util.spec_from_file_location("surface_report", SCRIPT)
surface_report = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(surface_report)

POLICY = [
    {"name": "ssh", "group": "all", "port": 22, "from": ["operators"]},
    {"name": "postgresql", "group": "database", "port": "5432", "from": ["web"]},
    {"name": "haproxy https", "group": "frontend", "port": 443, "from": ["clients"]},
]


def listener(port, address="0.0.0.0", process="x"):
    return {"address": address, "port": port, "process": [process]}


def document(**changes):
    base = {
        "policy": POLICY,
        "operators": ["10.0.9.0/24"],
        "clients": ["0.0.0.0/0"],
        "tls": ["db1:5432"],
        "test_units": ["stand-in.service"],
        "hosts": {
            "db1": {
                "groups": ["database"],
                "addresses": ["10.0.0.2"],
                "listeners": [
                    listener(22, process="sshd"),
                    listener(5432, process="postgres"),
                    listener(5432, "::", "postgres"),
                    listener(6565, "127.0.0.1", "k6"),
                ],
                "exposure": {"postgresql@15-main.service": 1.9, "stand-in.service": 9.6},
            },
            "web1": {
                "groups": ["web"],
                "addresses": ["10.0.0.3"],
                "listeners": [listener(22, process="sshd")],
                "exposure": {"conduit.service": 1.2},
            },
            "lb1": {
                "groups": ["frontend"],
                "addresses": ["10.0.9.4"],
                "listeners": [listener(443, process="haproxy")],
                "exposure": {},
            },
        },
        "targets": [["db1", "db1", 22], ["db1", "db1", 5432], ["web1", "web1", 22], ["lb1", "lb1", 443]],
        # web1 is no operator: SSH between hosts is dropped; lb1 (10.0.9.4) is one.
        "scans": {"web1": ["timeout", "open", "self", "open"], "lb1": ["open", "timeout", "open", "self"]},
    }
    base.update(changes)
    return base


def test_a_scan_that_matches_the_policy_has_no_problems():
    result = surface_report.report(document())
    assert result["problems"] == []
    rows = {(row["host"], row["address"], row["port"]): row for row in result["table"]}
    assert rows[("db1", "0.0.0.0", 5432)]["scan"] == {"web1": "open", "lb1": "timeout"}
    assert rows[("db1", "0.0.0.0", 5432)]["tls"] is True and rows[("db1", "0.0.0.0", 22)]["tls"] is False
    assert rows[("db1", "127.0.0.1", 6565)]["policy"] == ["this host (loopback)"]
    assert result["exposure"]["db1"]["stand-in.service"] == 9.6


@pytest.mark.parametrize(
    "source, index, answer, says",
    [
        ("web1", 1, "timeout", "web1 -> db1:5432 (postgresql): timeout, the policy says open"),
        ("lb1", 1, "open", "lb1 -> db1:5432 (postgresql): open, the policy says timeout"),
        ("web1", 0, "open", "web1 -> db1:22 (ssh): open, the policy says timeout"),
        ("lb1", 0, "refused", "lb1 -> db1:22 (ssh): refused, the policy says open"),
    ],
)
def test_a_path_the_policy_does_not_expect_is_named(source, index, answer, says):
    changed = document()
    changed["scans"][source][index] = answer
    assert surface_report.report(changed)["problems"] == [says]


def test_a_listener_no_policy_names_is_reported():
    changed = document()
    changed["hosts"]["web1"]["listeners"].append(listener(8000, process="debugger"))
    assert surface_report.report(changed)["problems"] == [
        "web1:8000 (debugger) listens on 0.0.0.0 but no policy names it"
    ]


def test_an_exposure_above_the_limit_or_unknown_is_reported_but_the_scenarios_own_units_are_not():
    changed = document()
    changed["hosts"]["web1"]["exposure"].update({"conduit.service": 2.6, "lost.service": None})
    assert surface_report.report(changed)["problems"] == [
        "web1: conduit.service exposure 2.6, above 2.5",
        "web1: lost.service exposure None, above 2.5",
    ]


def test_a_scan_with_missing_answers_is_reported():
    changed = document()
    changed["scans"]["web1"] = ["open"]
    assert surface_report.report(changed)["problems"] == ["web1: 1 answers for 4 targets"]


def test_the_script_reads_stdin_and_writes_json():
    run = subprocess.run(
        [sys.executable, str(SCRIPT)],
        input=json.dumps(document()),
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(run.stdout)["problems"] == []
