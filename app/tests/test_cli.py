"""The ``conduit`` admin command."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner
from conduit import __version__
from conduit.cli import main
from conduit_testing import APP_DIR


@pytest.fixture
def run(tmp_path, monkeypatch):
    for name in ("DATABASE_URL", "SECRET_KEY", "CONDUIT_DATA_DIR", "STATE_DIRECTORY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CONDUIT_ENV", "testing")
    monkeypatch.setenv("CONDUIT_DATA_DIR", str(tmp_path))

    def invoke(*args: str):
        return CliRunner().invoke(main, list(args), catch_exceptions=False)

    return invoke


def test_version(run):
    assert run("version").output.strip() == __version__
    assert __version__ in run("--version").output


def test_check_config(run, monkeypatch):
    result = run("check-config")
    assert result.exit_code == 0
    assert "CONDUIT_ENV=testing" in result.output
    assert "configuration OK" in result.output
    monkeypatch.setenv("CONDUIT_ENV", "production")
    result = run("check-config")
    assert result.exit_code == 1
    assert "SECRET_KEY is not set" in result.output


def test_db_commands(run, tmp_path):
    result = run("db", "current")
    assert result.exit_code == 0
    assert result.output.startswith("(empty) (latest: ")
    assert run("db", "current", "--check").exit_code == 1

    result = run("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "conduit.db").exists()
    result = run("db", "current", "--check")
    assert result.exit_code == 0
    assert result.output.strip() == "0002 (head)"
    history = run("db", "history").output
    assert "-> 0001: Initial schema" in history
    assert "0001 -> 0002: Login throttle" in history

    result = run("db", "downgrade", "base")
    assert result.exit_code == 0
    assert result.output.strip().endswith("(empty)")


def test_db_commands_refuse_a_bad_configuration(run, monkeypatch):
    monkeypatch.setenv("CONDUIT_ENV", "production")
    result = run("db", "upgrade")
    assert result.exit_code == 1
    assert "refusing to start in production mode" in result.output


def test_console_entry_point_runs_as_module(tmp_path):
    env = {"CONDUIT_ENV": "development", "CONDUIT_DATA_DIR": str(tmp_path), "PYTHONPATH": str(APP_DIR)}
    result = subprocess.run(
        [sys.executable, "-m", "conduit", "version"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == __version__
