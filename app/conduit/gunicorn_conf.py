"""Gunicorn configuration shipped with the app (the systemd unit uses it as is).

    gunicorn -c python:conduit.gunicorn_conf conduit.wsgi:app

Every value can be overridden through an environment variable (documented in app/README.md):
CONDUIT_BIND, CONDUIT_WORKERS, CONDUIT_TIMEOUT, CONDUIT_GRACEFUL_TIMEOUT, CONDUIT_KEEPALIVE,
CONDUIT_MAX_REQUESTS, CONDUIT_MAX_REQUESTS_JITTER, CONDUIT_ACCESS_LOG, CONDUIT_ACCESS_LOG_FORMAT,
CONDUIT_ERROR_LOG, CONDUIT_LOG_LEVEL, CONDUIT_FORWARDED_ALLOW_IPS, CONDUIT_CONTROL_SOCKET.

Prometheus multiprocess mode: the workers write their metric values to PROMETHEUS_MULTIPROC_DIR and
/metrics adds them up. The master empties that directory when it starts (stale files from a previous run
would otherwise be summed in) and marks the files of every worker that exits as dead. Without
PROMETHEUS_MULTIPROC_DIR a private directory is created (and removed on exit), so counters are never
per-worker, whatever the number of workers.

This module is imported by the gunicorn master: it must not import prometheus_client or the app at
module level (the multiprocess directory has to be in the environment before prometheus_client loads).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
DEFAULT_BIND = "127.0.0.1:5566"
DEFAULT_ACCESS_LOG_FORMAT = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(f)s" "%(a)s"'


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def _env_int(name: str, default: int, minimum: int = 0) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"conduit: {name}={raw!r} is not an integer") from None
    if value < minimum:
        raise SystemExit(f"conduit: {name}={raw!r} must be at least {minimum}")
    return value


def _env_log(name: str, default: str) -> str | None:
    """A log target: a path, '-' for stdout/stderr, or 'off'/'none'/'' -> disabled."""
    value = os.environ.get(name)
    if value is None:
        return default
    value = value.strip()
    return None if value.lower() in {"", "off", "none", "0", "false"} else value


def default_workers() -> int:
    """Gunicorn's rule of thumb for sync workers: 2 x CPUs + 1."""
    return 2 * (os.cpu_count() or 1) + 1


def _memory_dir() -> str | None:
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None


def _default_multiproc_dir() -> Path:
    """systemd's RuntimeDirectory (tmpfs), else /dev/shm, else the temp dir: metric files are written on
    every request and belong in memory, not on a disk that writes them back."""
    runtime = os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0]
    base = runtime or _memory_dir() or tempfile.gettempdir()
    return Path(base) / f"conduit-metrics-{os.getpid()}"


# --------------------------------------------------------------------------------------------- server

bind = _env("CONDUIT_BIND", DEFAULT_BIND).replace(",", " ").split()
workers = _env_int("CONDUIT_WORKERS", default_workers(), minimum=1)
worker_class = "sync"
timeout = _env_int("CONDUIT_TIMEOUT", 30, minimum=1)
graceful_timeout = _env_int("CONDUIT_GRACEFUL_TIMEOUT", 30, minimum=1)
keepalive = _env_int("CONDUIT_KEEPALIVE", 5, minimum=1)
max_requests = _env_int("CONDUIT_MAX_REQUESTS", 0)
max_requests_jitter = _env_int("CONDUIT_MAX_REQUESTS_JITTER", 0)
forwarded_allow_ips = _env("CONDUIT_FORWARDED_ALLOW_IPS", "127.0.0.1")
proc_name = "conduit"
# Workers load the app after the fork: each gets its own database pool and metric files.
preload_app = False
# The heartbeat file lives in memory when possible (a slow disk must not get workers killed).
worker_tmp_dir = _memory_dir()
# gunicorn's runtime control socket is off unless asked for (systemd handles the service).
control_socket_disable = _env("CONDUIT_CONTROL_SOCKET", "0").lower() not in {"1", "true", "yes", "on"}

accesslog = _env_log("CONDUIT_ACCESS_LOG", "-")
access_log_format = _env("CONDUIT_ACCESS_LOG_FORMAT", DEFAULT_ACCESS_LOG_FORMAT)
errorlog = _env_log("CONDUIT_ERROR_LOG", "-") or "-"
loglevel = _env("CONDUIT_LOG_LEVEL", "info").lower()

# ------------------------------------------------------------------------------- prometheus multiproc

_created_multiproc_dir: Path | None = None
if not os.environ.get(MULTIPROC_ENV):
    _created_multiproc_dir = _default_multiproc_dir()
    os.environ[MULTIPROC_ENV] = str(_created_multiproc_dir)


def prepare_multiproc_dir(path: str | os.PathLike[str]) -> Path:
    """Create the directory, or empty it of a previous run's metric files."""
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    for entry in directory.iterdir():
        if entry.is_file() and entry.suffix == ".db":
            entry.unlink()
    return directory


# -------------------------------------------------------------------------------------------- hooks


def on_starting(server) -> None:
    """In the master, before any worker: refuse a bad configuration, reset the metric files."""
    from conduit.config import ConfigError, load_config

    directory = prepare_multiproc_dir(os.environ[MULTIPROC_ENV])
    try:
        config = load_config()
    except ConfigError as error:
        message = f"conduit: configuration error: {error}"
        server.log.error(message)
        if server.cfg.errorlog != "-":  # the error log is a file: say it on stderr (the journal) too
            print(message, file=sys.stderr, flush=True)
        sys.exit(1)
    server.log.info(
        "conduit: env=%s metrics=%s multiproc_dir=%s",
        config.env,
        "on" if config.metrics_enabled else "off",
        directory,
    )


def child_exit(server, worker) -> None:
    """A worker is gone: its live gauges must stop counting (counters and histograms are kept)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    """Remove the metrics directory if this config created it (a configured one is left in place)."""
    if _created_multiproc_dir is not None:
        shutil.rmtree(_created_multiproc_dir, ignore_errors=True)
