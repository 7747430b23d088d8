"""actionlint (through scripts/actionlint.sh, as `make lint` runs it) passes lookout's workflows and really
fails broken ones: a typo in a trigger, an input a reusable workflow does not declare, script injection,
and a ShellCheck finding in a `run:` script."""

import os
import platform
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "actionlint.sh"

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.machine() not in {"x86_64", "aarch64"},
    reason="the pinned actionlint wheel exists for linux x86_64 and aarch64 only",
)

CALLEE = """name: callee
on:
  workflow_call:
    inputs:
      version:
        type: string
        required: true
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - run: echo "building $VERSION"
        env:
          VERSION: ${{ inputs.version }}
"""

BROKEN = """name: broken
on:
  push:
    branchez: [main]
jobs:
  call:
    uses: ./.github/workflows/callee.yml
    with:
      versoin: "1.0.0"
  greet:
    runs-on: ubuntu-latest
    steps:
      - run: echo "${{ github.event.head_commit.message }}"
      - run: cp $SOURCE /tmp
"""


def actionlint(*args, cwd=ROOT):
    return subprocess.run(
        [str(SCRIPT), *args],
        check=False,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ),
    )


def test_lookout_workflows_are_clean():
    result = actionlint()
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_broken_workflow_fails(tmp_path):
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "callee.yml").write_text(CALLEE)
    (workflows / "broken.yml").write_text(BROKEN)
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    result = actionlint(str(workflows / "broken.yml"), cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert 'unexpected key "branchez"' in out
    assert 'input "versoin" is not defined' in out
    assert "potentially untrusted" in out
    if shutil.which("shellcheck"):
        assert "SC2086" in out


def test_a_clean_reusable_workflow_passes(tmp_path):
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "callee.yml").write_text(CALLEE)
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    result = actionlint(str(workflows / "callee.yml"), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
