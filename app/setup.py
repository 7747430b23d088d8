"""Build hook: lets a wheel carry a version chosen at build time, without editing code.

``CONDUIT_BUILD_VERSION=1.0.0+abc123 python -m build --wheel app/`` gives the distribution that
version and writes it into ``conduit/_version.py`` inside the build (the source tree is not touched).
Without the variable the version comes from ``conduit/_version.py``.
"""

import os
import re
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
VERSION_FILE = Path("conduit") / "_version.py"


def _source_version() -> str:
    text = (HERE / VERSION_FILE).read_text(encoding="utf-8")
    match = re.search(r'^__version__ = "([^"]+)"$', text, re.MULTILINE)
    if not match:
        raise RuntimeError(f"no __version__ in {VERSION_FILE}")
    return match.group(1)


def _chosen_version() -> str:
    chosen = os.environ.get("CONDUIT_BUILD_VERSION", "").strip()
    if not chosen:
        return _source_version()
    try:
        from packaging.version import Version
    except ImportError:  # pragma: no cover - packaging ships with every recent setuptools
        return chosen
    return str(Version(chosen))  # raises InvalidVersion for a non PEP 440 string


VERSION = _chosen_version()


class BuildPyWithVersion(build_py):
    """Copy the package as usual, then stamp the chosen version into the built ``_version.py``."""

    def run(self):
        super().run()
        target = Path(self.build_lib) / VERSION_FILE
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(
            f'"""Version of the Conduit package (stamped at build time)."""\n\n__version__ = "{VERSION}"\n',
            encoding="utf-8",
        )


setup(version=VERSION, cmdclass={"build_py": BuildPyWithVersion})
