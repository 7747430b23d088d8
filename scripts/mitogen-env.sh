#!/usr/bin/env bash
# Turns Mitogen for Ansible on for ansible-playbook runs (README.md, "Mitogen (optional)"): its strategy
# plugins from the package installed in the controller's Python, strategy mitogen_linear. ansible.cfg is
# left alone: without this, every run uses Ansible's linear strategy.
#
#   eval "$(scripts/mitogen-env.sh)"              prints the exports, for this shell's later runs
#   scripts/mitogen-env.sh ansible-playbook ...   runs one command with them
#
# The exports: ANSIBLE_STRATEGY_PLUGINS=<ansible_mitogen>/plugins/strategy (before any value already set)
# and ANSIBLE_STRATEGY=mitogen_linear, after a comment line naming the Mitogen version and where it is.
# The package is looked up (not imported) in LOOKOUT_PYTHON, default .venv/bin/python: the Python that runs
# ansible-playbook. Not installed there: an error naming the package and its pin (requirements-mitogen.txt),
# exit 2. Another version than the pin: a warning, and the run goes on.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
python=${LOOKOUT_PYTHON:-$here/.venv/bin/python}
pin=$(sed -n 's/^mitogen==\([^ ]*\).*/\1/p' "$here/requirements-mitogen.txt")

say() { printf '[mitogen] %s\n' "$*" >&2; }
die() { printf '[mitogen] ERROR: %s\n' "$*" >&2; exit 2; }

[ -x "$python" ] || die "no Python at $python (run \`make setup\`, or set LOOKOUT_PYTHON to the Python that runs ansible-playbook)"
found=$("$python" - <<'PY'
import importlib.metadata
import importlib.util
import os

spec = importlib.util.find_spec("ansible_mitogen")
if spec is None or not spec.submodule_search_locations:
    raise SystemExit(3)
strategy = os.path.join(next(iter(spec.submodule_search_locations)), "plugins", "strategy")
if not os.path.isfile(os.path.join(strategy, "mitogen_linear.py")):
    raise SystemExit(4)
try:
    version = importlib.metadata.version("mitogen")
except importlib.metadata.PackageNotFoundError:
    version = "unknown"
print(version)
print(strategy)
PY
) || case $? in
  3) die "the Python package mitogen (module ansible_mitogen) is not installed in $python: $python -m pip install mitogen==$pin (the pin in requirements-mitogen.txt)" ;;
  4) die "ansible_mitogen in $python has no plugins/strategy/mitogen_linear.py: reinstall mitogen==$pin" ;;
  *) die "$python could not look for ansible_mitogen" ;;
esac
version=${found%%$'\n'*}
strategy_dir=${found#*$'\n'}
[ "$version" = "$pin" ] || say "WARNING: mitogen $version is installed, lookout pins and was checked with $pin (requirements-mitogen.txt)"

plugins=$strategy_dir
case ":${ANSIBLE_STRATEGY_PLUGINS:-}:" in
  *":$strategy_dir:"*) plugins=$ANSIBLE_STRATEGY_PLUGINS ;;
  ::) ;;
  *) plugins=$strategy_dir:$ANSIBLE_STRATEGY_PLUGINS ;;
esac
if [ $# -gt 0 ]; then
  export ANSIBLE_STRATEGY_PLUGINS=$plugins ANSIBLE_STRATEGY=mitogen_linear
  exec "$@"
fi
printf '# Mitogen %s, ansible_mitogen at %s\n' "$version" "${strategy_dir%/plugins/strategy}"
printf 'export ANSIBLE_STRATEGY_PLUGINS=%q\n' "$plugins"
printf 'export ANSIBLE_STRATEGY=mitogen_linear\n'
