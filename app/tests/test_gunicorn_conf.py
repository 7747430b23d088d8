"""The shipped gunicorn configuration, loaded in-process (the real server runs in test_gunicorn.py)."""

from __future__ import annotations

import importlib
import logging
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

CONDUIT_VARS = [name for name in os.environ if name.startswith("CONDUIT_")]


@pytest.fixture
def load(monkeypatch, tmp_path):
    for name in CONDUIT_VARS:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "prom"))

    def _load(**environ: str):
        for name, value in environ.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        # Imported only here, with PROMETHEUS_MULTIPROC_DIR under monkeypatch: importing the module sets
        # that variable when it is missing, which must not leak into the other tests.
        return importlib.reload(importlib.import_module("conduit.gunicorn_conf"))

    return _load


def _server(errorlog: str = "-"):
    return SimpleNamespace(log=logging.getLogger("test.gunicorn"), cfg=SimpleNamespace(errorlog=errorlog))


def test_defaults(load):
    conf = load()
    assert conf.bind == ["127.0.0.1:5566"]
    assert conf.workers == 2 * (os.cpu_count() or 1) + 1
    assert conf.worker_class == "sync"
    assert (conf.timeout, conf.graceful_timeout, conf.keepalive) == (30, 30, 5)
    assert conf.accesslog == "-"
    assert conf.errorlog == "-"
    assert "%(M)sms" in conf.access_log_format
    assert conf.control_socket_disable is True
    assert conf.preload_app is False


def test_environment_overrides(load):
    conf = load(
        CONDUIT_BIND="0.0.0.0:8000, unix:/run/conduit.sock",
        CONDUIT_WORKERS="3",
        CONDUIT_TIMEOUT="10",
        CONDUIT_GRACEFUL_TIMEOUT="20",
        CONDUIT_KEEPALIVE="2",
        CONDUIT_MAX_REQUESTS="1000",
        CONDUIT_MAX_REQUESTS_JITTER="50",
        CONDUIT_ACCESS_LOG="off",
        CONDUIT_ERROR_LOG="/var/log/conduit/error.log",
        CONDUIT_LOG_LEVEL="WARNING",
        CONDUIT_CONTROL_SOCKET="1",
    )
    assert conf.bind == ["0.0.0.0:8000", "unix:/run/conduit.sock"]
    assert (conf.workers, conf.timeout, conf.graceful_timeout, conf.keepalive) == (3, 10, 20, 2)
    assert (conf.max_requests, conf.max_requests_jitter) == (1000, 50)
    assert conf.accesslog is None
    assert conf.errorlog == "/var/log/conduit/error.log"
    assert conf.loglevel == "warning"
    assert conf.control_socket_disable is False


@pytest.mark.parametrize(("value", "message"), [("many", "is not an integer"), ("0", "must be at least 1")])
def test_invalid_numbers_stop_gunicorn(load, value, message):
    with pytest.raises(SystemExit, match=message):
        load(CONDUIT_WORKERS=value)


def test_multiproc_dir_defaults_to_a_private_directory(load, monkeypatch, tmp_path):
    monkeypatch.setenv("RUNTIME_DIRECTORY", str(tmp_path / "run"))
    conf = load(PROMETHEUS_MULTIPROC_DIR=None)
    created = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    assert created == tmp_path / "run" / f"conduit-metrics-{os.getpid()}"
    conf.prepare_multiproc_dir(created)
    (created / "counter_1.db").write_bytes(b"")
    conf.on_exit(_server())
    assert not created.exists()


def test_on_starting_empties_the_multiproc_dir(load, tmp_path):
    conf = load(CONDUIT_ENV="testing")
    directory = tmp_path / "prom"
    directory.mkdir()
    (directory / "counter_123.db").write_bytes(b"stale")
    (directory / "keep.txt").write_text("not a metrics file")
    conf.on_starting(_server())
    assert sorted(p.name for p in directory.iterdir()) == ["keep.txt"]
    conf.on_exit(_server())  # a configured directory stays
    assert directory.exists()


@pytest.mark.parametrize("errorlog", ["-", "/var/log/conduit/error.log"])
def test_on_starting_refuses_a_bad_configuration(load, capsys, caplog, errorlog):
    conf = load(CONDUIT_ENV="production", SECRET_KEY=None)
    with pytest.raises(SystemExit) as exit_info:
        conf.on_starting(_server(errorlog))
    assert exit_info.value.code == 1
    assert "SECRET_KEY is not set" in caplog.text
    assert ("SECRET_KEY is not set" in capsys.readouterr().err) is (errorlog != "-")


def test_child_exit_marks_the_worker_dead(load, tmp_path):
    conf = load()
    directory = conf.prepare_multiproc_dir(tmp_path / "prom")
    live = directory / "gauge_livesum_4242.db"
    live.write_bytes(b"")
    kept = directory / "counter_4242.db"
    kept.write_bytes(b"")
    conf.child_exit(_server(), SimpleNamespace(pid=4242))
    assert not live.exists()
    assert kept.exists()
