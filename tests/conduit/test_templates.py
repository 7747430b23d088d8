"""The role's templates, rendered by Ansible on the controller with awkward inputs: the environment file
round-trips any secret through the wrapper's parser, the database password is URL-encoded, the socket and
the units (common's template, as unit.yml passes it) are hardened and listen where told, the gunicorn
configuration runs the app's own."""

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from unit_helpers import render_units

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "conduit"
PLAYBOOK = ROOT / "tests" / "conduit" / "render.yml"
ANSIBLE_PLAYBOOK = str(Path(sys.executable).with_name("ansible-playbook"))
SECRET = "s3cret \"quoted\" \\back\\slash $HOME `tick` #hash 'single' = end"
PASSWORD = "p@ss:w/rd%?#&'\" \\"


def _render(tmp_path: Path, inputs: dict) -> Path:
    out = tmp_path / "out"
    extra = {
        "ansible_python_interpreter": sys.executable,
        "conduit_role_dir": str(ROLE),
        "conduit_render_dir": str(out),
        **inputs,
    }
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    run = subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", "localhost,", "-c", "local", str(PLAYBOOK), "-e", json.dumps(extra)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return out


def _environment(path: Path) -> dict[str, str]:
    """The environment file read the way the gunicorn configuration reads it."""
    settings = shlex.split(path.read_text(), comments=True)
    return dict(setting.partition("=")[::2] for setting in settings)


@pytest.fixture(scope="module")
def sqlite(tmp_path_factory):
    return _render(
        tmp_path_factory.mktemp("sqlite"),
        {
            "conduit_version": "1.2.0",
            "conduit_secret_key": SECRET,
            "conduit_workers": 3,
            "conduit_extra_env": {
                "CONDUIT_LOG_LEVEL": "warning",
                "CONDUIT_ACCESS_LOG_FORMAT": '%(h)s "%(r)s"',
            },
        },
    )


@pytest.fixture(scope="module")
def postgresql(tmp_path_factory):
    return _render(
        tmp_path_factory.mktemp("postgresql"),
        {
            "conduit_version": "1.2.0",
            "conduit_secret_key": SECRET,
            "conduit_database_engine": "postgresql",
            "conduit_database_host": "db.example.org",
            "conduit_database_password": PASSWORD,
            "conduit_listen_address": "::",
            "conduit_port": 8080,
            "conduit_password_hash": "pbkdf2:sha512:250000",
            "conduit_login_account_limit": 3,
            "conduit_login_address_limit": 40,
            "conduit_login_window": 600,
        },
    )


@pytest.fixture(scope="module")
def units(tmp_path_factory) -> Path:
    """The serving and candidate units as unit.yml writes them, with the role's defaults."""
    out = tmp_path_factory.mktemp("units")
    rendered = render_units({"conduit-defaults": ("conduit", {})}, out)["conduit-defaults"]
    for path, content in rendered.after.items():
        (out / Path(path).name).write_text(content)
    return out


def test_environment_file_round_trips_the_secret(sqlite):
    env = _environment(sqlite / "conduit.env")
    assert env["SECRET_KEY"] == SECRET
    assert env["CONDUIT_ENV"] == "production"
    assert env["CONDUIT_WORKERS"] == "3"
    assert env["CONDUIT_LOG_LEVEL"] == "warning"
    assert env["CONDUIT_ACCESS_LOG_FORMAT"] == '%(h)s "%(r)s"'
    assert env["DATABASE_URL"] == "sqlite:////var/lib/conduit/conduit.db"


def test_environment_file_carries_the_hashing_and_the_login_throttle(sqlite, postgresql):
    defaults = _environment(sqlite / "conduit.env")
    assert defaults["CONDUIT_PASSWORD_HASH"] == "scrypt:32768:8:1"
    assert [defaults[f"CONDUIT_LOGIN_{name}"] for name in ("ACCOUNT_LIMIT", "ADDRESS_LIMIT", "WINDOW")] == [
        "5",
        "50",
        "900",
    ]
    chosen = _environment(postgresql / "conduit.env")
    assert chosen["CONDUIT_PASSWORD_HASH"] == "pbkdf2:sha512:250000"
    assert [chosen[f"CONDUIT_LOGIN_{name}"] for name in ("ACCOUNT_LIMIT", "ADDRESS_LIMIT", "WINDOW")] == [
        "3",
        "40",
        "600",
    ]


def test_environment_file_leaves_bind_and_metrics_dir_to_the_units(sqlite):
    env = _environment(sqlite / "conduit.env")
    assert "CONDUIT_BIND" not in env
    assert "PROMETHEUS_MULTIPROC_DIR" not in env


def test_workers_are_left_to_the_app_by_default(postgresql):
    assert "CONDUIT_WORKERS" not in _environment(postgresql / "conduit.env")


def test_database_password_is_url_encoded(postgresql):
    url = _environment(postgresql / "conduit.env")["DATABASE_URL"]
    parts = urlsplit(url)
    assert parts.scheme == "postgresql"
    assert parts.hostname == "db.example.org"
    assert parts.port == 5432
    assert parts.path == "/conduit"
    assert unquote(parts.username) == "conduit"
    assert unquote(parts.password) == PASSWORD


def test_socket_listens_where_told(sqlite, postgresql):
    assert "ListenStream=0.0.0.0:5566\n" in (sqlite / "conduit.socket").read_text()
    assert "ListenStream=[::]:8080\n" in (postgresql / "conduit.socket").read_text()


def test_serving_unit_runs_current_behind_the_socket(units):
    unit = (units / "conduit.service").read_text()
    assert "Requires=conduit.socket\n" in unit
    assert "After=conduit.socket\n" in unit
    assert "Type=notify\nNotifyAccess=main\n" in unit
    assert "ExecStart=/opt/conduit/current/venv/bin/gunicorn --config /etc/conduit/gunicorn.conf.py" in unit
    assert "Environment=CONDUIT_BIND=0.0.0.0:5566\n" in unit
    assert "RuntimeDirectory=conduit\n" in unit
    assert "Environment=PROMETHEUS_MULTIPROC_DIR=%t/conduit/metrics\n" in unit
    assert "WorkingDirectory=%S/conduit\n" in unit
    assert "ExecReload=/bin/kill -HUP $MAINPID\n" in unit
    assert "KillMode=mixed\n" in unit
    assert "TimeoutStopSec=40s\n" in unit
    assert "Restart=on-failure\n" in unit
    assert "StartLimitIntervalSec=0\n" in unit
    assert "LimitNOFILE=" not in unit
    assert "WantedBy=multi-user.target" in unit


def test_candidate_unit_runs_the_candidate_on_loopback(units):
    unit = (units / "conduit-candidate.service").read_text()
    assert "Requires=" not in unit
    assert "ExecStart=/opt/conduit/candidate/venv/bin/gunicorn" in unit
    assert "Environment=CONDUIT_BIND=127.0.0.1:5567\n" in unit
    # Its own metrics directory: the app empties the directory when it starts.
    assert "RuntimeDirectory=conduit-candidate\n" in unit
    assert "Restart=no\n" in unit
    assert "StartLimitIntervalSec" not in unit
    assert "[Install]" not in unit


@pytest.mark.parametrize("name", ["conduit.service", "conduit-candidate.service"])
def test_units_are_hardened(units, name):
    unit = (units / name).read_text()
    for directive in (
        "User=conduit",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=\n",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "PrivateDevices=yes",
        "ProtectKernelTunables=yes",
        "ProtectControlGroups=yes",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "MemoryDenyWriteExecute=yes",
        "SystemCallFilter=@system-service",
        "EnvironmentFile=/etc/conduit/conduit.env",
    ):
        assert directive in unit, f"{name}: {directive!r} missing"


def test_gunicorn_configuration_applies_the_file_then_the_apps_config(sqlite, tmp_path, monkeypatch):
    """Executed as gunicorn would: settings come from conduit.gunicorn_conf, the file's values win first."""
    env_file = tmp_path / "conduit.env"
    env_file.write_text((sqlite / "conduit.env").read_text())
    conf = (sqlite / "gunicorn.conf.py").read_text().replace("/etc/conduit/conduit.env", str(env_file))
    monkeypatch.syspath_prepend(str(ROOT / "app"))
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))
    monkeypatch.setenv("CONDUIT_BIND", "127.0.0.1:5599")
    for name in ("SECRET_KEY", "CONDUIT_WORKERS", "CONDUIT_LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    namespace: dict = {}
    exec(compile(conf, "gunicorn.conf.py", "exec"), namespace)
    assert namespace["workers"] == 3
    assert namespace["loglevel"] == "warning"
    assert namespace["bind"] == ["127.0.0.1:5599"]
    assert callable(namespace["on_starting"])
    assert os.environ["SECRET_KEY"] == SECRET
