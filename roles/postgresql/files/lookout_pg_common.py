"""Shared by lookout-pg-backup and lookout-pg-restore-check: dump naming, atomic writes, JSON state and
node_exporter textfile metrics. Python 3.11 standard library only: it runs on the database host with the
system python3."""

import argparse
import hashlib
import json
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

# PostgreSQL truncates identifiers at 63 bytes: a longer scratch name could silently become the live
# database's name. The character set keeps names usable as file name parts and never read as libpq
# connection strings (which contain '=').
DATABASE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}")
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
CHUNK = 1024 * 1024


def database_name(value: str) -> str:
    """argparse type for database names."""
    if not DATABASE_NAME.fullmatch(value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a supported database name (letters, digits, '_', '.', '-'; at most 63)"
        )
    return value


def utc_stamp(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime(STAMP_FORMAT)


def utc_iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, order=True)
class Dump:
    """A finished dump `<database>-<stamp>[-<seq>].dump`; ordered oldest first by the stamp in its name,
    then by the collision suffix, so a stepped clock or a copied file's mtime cannot reorder them."""

    stamp: str
    seq: int
    path: Path

    @property
    def sidecar(self) -> Path:
        return sidecar_of(self.path)


def sidecar_of(dump: Path) -> Path:
    return dump.with_name(dump.name + ".sha256")


def dump_name(database: str, stamp: str, seq: int) -> str:
    return f"{database}-{stamp}{f'-{seq}' if seq else ''}.dump"


def list_dumps(directory: Path, database: str) -> list[Dump]:
    """The database's finished dumps in the directory, oldest first."""
    pattern = re.compile(rf"{re.escape(database)}-(\d{{8}}T\d{{6}}Z)(?:-(\d+))?\.dump")
    dumps = []
    for entry in directory.iterdir():
        match = pattern.fullmatch(entry.name)
        if match and entry.is_file():
            dumps.append(Dump(match[1], int(match[2] or 0), entry))
    return sorted(dumps)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256sum_line(digest: str, name: str) -> str:
    """One line in `sha256sum` format, so `sha256sum -c` verifies a dump by hand."""
    return f"{digest}  {name}\n"


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, mode: int) -> None:
    """Readers (node_exporter, operators, the next run) see the old file or the new one, never a part."""
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def read_state(path: Path) -> dict:
    """The state an earlier run left; an unreadable file counts as none rather than blocking every run."""
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def write_json(path: Path, document: dict, mode: int) -> None:
    atomic_write(path, (json.dumps(document, indent=2, sort_keys=True) + "\n").encode(), mode)


class ToolError(Exception):
    """A PostgreSQL client program failed; the message carries its own words."""


def run_tool(argv: list[str], stdin: str | None = None) -> str:
    try:
        result = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    except OSError as error:
        raise ToolError(f"{argv[0]}: {error.strerror}") from error
    if result.returncode != 0:
        raise ToolError(f"{Path(argv[0]).name} exited {result.returncode}: {result.stderr.strip()}")
    return result.stdout


@dataclass
class Gauge:
    name: str
    help: str
    samples: list[tuple[dict[str, str], float]]


def _label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else repr(round(float(value), 3))


def render_textfile(gauges: list[Gauge]) -> str:
    lines = []
    for gauge in gauges:
        lines += [f"# HELP {gauge.name} {gauge.help}", f"# TYPE {gauge.name} gauge"]
        for labels, value in gauge.samples:
            rendered = ",".join(f'{key}="{_label_value(text)}"' for key, text in labels.items())
            lines.append(f"{gauge.name}{{{rendered}}} {_number(value)}")
    return "\n".join(lines) + "\n"


def write_textfile(path: Path, gauges: list[Gauge]) -> None:
    """node_exporter's textfile collector reads every *.prom file; the temporary name ends otherwise."""
    atomic_write(path, render_textfile(gauges).encode(), 0o644)
