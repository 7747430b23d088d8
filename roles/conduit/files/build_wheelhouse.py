#!/usr/bin/env python3
"""Build Conduit's wheelhouse for one target interpreter, on the controller, once per version.

    build_wheelhouse.py --source app --version 1.2.0 --python 3.13 --machine x86_64 --glibc 2.41 \\
        --cache build/wheelhouse

Leaves ``<cache>/<version>/<target>.tar`` (target: ``cp313-x86_64-glibc2.41``) holding

- ``wheels/``: the app's pure-python wheel, built from ``--source`` with ``--version`` stamped in
  (``CONDUIT_BUILD_VERSION``, see app/setup.py) or, with ``--wheel``, the wheel CI already built for that
  version, and every dependency as a binary wheel for the target
  (``pip download --only-binary=:all: --python-version ... --platform manylinux_2_17..<glibc>``);
- ``tools/pip.whl``: pip itself, run from the wheel on hosts that have neither pip nor PyPI.

A version names one build: an existing archive is left as it is and nothing runs (no network either),
and a ``--wheel`` whose bytes differ from the app wheel already cached for its version is refused.
The app wheel is built once per version and shared by every target. Archives appear atomically, so an
interrupted build leaves nothing that looks finished.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

# Oldest glibc with manylinux wheels worth offering (manylinux2014 = manylinux_2_17).
MIN_GLIBC_MINOR = 17
SOURCE_IGNORE = shutil.ignore_patterns(
    "tests", "__pycache__", "*.pyc", ".pytest_cache", "build", "dist", "*.egg-info", ".venv", "*.db"
)
PYTHON_VERSION = re.compile(r"^3\.[0-9]+$")
GLIBC_VERSION = re.compile(r"^2\.([0-9]+)$")


def target_name(python: str, machine: str, glibc: str) -> str:
    """Cache key of one target interpreter and platform."""
    return f"cp{python.replace('.', '')}-{machine}-glibc{glibc}"


def platform_tags(machine: str, glibc: str) -> list[str]:
    """Every manylinux tag a host with this glibc can run, newest first."""
    match = GLIBC_VERSION.match(glibc)
    if not match or int(match.group(1)) < MIN_GLIBC_MINOR:
        raise SystemExit(f"build_wheelhouse: unsupported glibc {glibc!r} (need 2.{MIN_GLIBC_MINOR} or later)")
    minors = range(int(match.group(1)), MIN_GLIBC_MINOR - 1, -1)
    return [f"manylinux_2_{minor}_{machine}" for minor in minors] + [f"manylinux2014_{machine}"]


def run(command: list[str], env: dict[str, str] | None = None) -> None:
    print("+", shlex.join(command), flush=True)
    subprocess.run(command, check=True, env=env)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def wheel_version(wheel: Path) -> str:
    """The version in a wheel's file name (``conduit-<version>-<tags>.whl``)."""
    parts = wheel.name.split("-")
    if len(parts) < 5 or parts[0] != "conduit" or wheel.suffix != ".whl":
        raise SystemExit(f"build_wheelhouse: --wheel {wheel} is not named like a Conduit wheel")
    return parts[1]


def take_given_wheel(given: Path, version: str, app_dir: Path) -> Path:
    """Puts the wheel built elsewhere (CI) in the cache for ``version``, or checks it is the one there."""
    if wheel_version(given) != version:
        found = wheel_version(given)
        raise SystemExit(f"build_wheelhouse: --wheel {given.name} holds version {found}, not {version}")
    existing = sorted(app_dir.glob("conduit-*.whl"))
    if existing:
        if sha256(existing[0]) != sha256(given):
            raise SystemExit(
                f"build_wheelhouse: version {version} is already cached from another build ({existing[0]});"
                f" a version names one build: give this wheel a new version or remove {app_dir.parent}"
            )
        return existing[0]
    app_dir.mkdir(parents=True, exist_ok=True)
    partial = app_dir / f".{given.name}.partial"
    shutil.copyfile(given, partial)
    return partial.replace(app_dir / given.name)


def build_app_wheel(pip: list[str], source: Path, version: str, app_dir: Path) -> Path:
    """The app's wheel for ``version``, built once (a copy of the source is built, never the tree itself)."""
    existing = sorted(app_dir.glob("conduit-*.whl"))
    if existing:
        return existing[0]
    with tempfile.TemporaryDirectory(prefix="conduit-wheel-") as tmp:
        tree = Path(tmp) / "src"
        shutil.copytree(source, tree, ignore=SOURCE_IGNORE)
        out = Path(tmp) / "out"
        env = {**os.environ, "CONDUIT_BUILD_VERSION": version}
        run([*pip, "wheel", "--no-deps", "--wheel-dir", str(out), str(tree)], env=env)
        built = sorted(out.glob("conduit-*.whl"))
        if len(built) != 1:
            raise SystemExit(f"build_wheelhouse: expected one conduit wheel, got {[p.name for p in built]}")
        app_dir.mkdir(parents=True, exist_ok=True)
        wheel = app_dir / built[0].name
        shutil.move(built[0], wheel)
        return wheel


def download(pip: list[str], python: str, tags: list[str], dest: Path, requirements: list[str]) -> None:
    abi = f"cp{python.replace('.', '')}"
    command = [*pip, "download", "--only-binary=:all:", "--python-version", python, "--implementation", "cp"]
    command += ["--abi", abi, "--abi", "abi3", "--abi", "none"]
    for tag in tags:
        command += ["--platform", tag]
    run([*command, "--dest", str(dest), *requirements])


def build(args: argparse.Namespace) -> Path:
    version_dir = Path(args.cache) / args.version
    archive = version_dir / f"{target_name(args.python, args.machine, args.glibc)}.tar"
    # Checked even when the archive exists: a different build under a known version is an error.
    given = take_given_wheel(Path(args.wheel), args.version, version_dir / "app") if args.wheel else None
    if archive.exists():
        print(f"cached: {archive}")
        return archive
    pip = shlex.split(args.pip) if args.pip else [sys.executable, "-m", "pip"]
    tags = platform_tags(args.machine, args.glibc)
    app_wheel = given or build_app_wheel(pip, Path(args.source), args.version, version_dir / "app")
    with tempfile.TemporaryDirectory(prefix="conduit-wheelhouse-") as tmp:
        wheels, tools = Path(tmp) / "wheels", Path(tmp) / "tools"
        download(pip, args.python, tags, wheels, [str(app_wheel)])
        download(pip, args.python, tags, tools, ["--no-deps", "pip"])
        pip_wheels = sorted(tools.glob("pip-*.whl"))
        if len(pip_wheels) != 1:
            raise SystemExit(f"build_wheelhouse: expected one pip wheel, got {[p.name for p in pip_wheels]}")
        pip_wheels[0].rename(tools / "pip.whl")
        partial = archive.with_suffix(".tar.partial")
        with tarfile.open(partial, "w") as tar:
            tar.add(wheels, arcname="wheels")
            tar.add(tools / "pip.whl", arcname="tools/pip.whl")
        partial.replace(archive)
    print(f"built: {archive}")
    return archive


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="", help="the app's source tree (holds pyproject.toml)")
    parser.add_argument("--wheel", default="", help="the app's wheel already built for --version")
    parser.add_argument("--version", required=True, help="version stamped into the app wheel")
    parser.add_argument("--python", required=True, help="target CPython, e.g. 3.13")
    parser.add_argument("--machine", required=True, help="target machine, e.g. x86_64")
    parser.add_argument("--glibc", required=True, help="target glibc, e.g. 2.41")
    parser.add_argument("--cache", required=True, help="wheelhouse cache directory")
    parser.add_argument("--pip", default="", help="pip command (default: this Python's pip)")
    args = parser.parse_args(argv)
    if not PYTHON_VERSION.match(args.python):
        parser.error(f"--python {args.python!r} is not a CPython 3 version like 3.13")
    if "/" in args.version or args.version in {"", ".", ".."}:
        parser.error(f"--version {args.version!r} cannot name a directory")
    if args.wheel and not Path(args.wheel).is_file():
        parser.error(f"--wheel {args.wheel!r} is no file")
    if not args.wheel and not (Path(args.source) / "pyproject.toml").is_file():
        parser.error(f"--source {args.source!r} holds no pyproject.toml (or give --wheel)")
    return args


def main(argv: list[str] | None = None) -> int:
    build(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
