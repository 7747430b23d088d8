#!/usr/bin/env bash
# Runs `molecule test` for each named scenario, one at a time (a lock keeps concurrent runs on this
# machine from fighting over host names), prints a timing table, and removes every test container and
# network afterwards, even on failure or interrupt.
#   scripts/molecule-all.sh SCENARIO...
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
lock=${MOLECULE_LOCK:-/tmp/lookout-molecule.lock}
[ $# -gt 0 ] || { echo "usage: $0 SCENARIO..." >&2; exit 2; }

exec 9>"$lock"
if ! flock -n 9; then
  echo "[molecule] waiting for another molecule run on this machine to finish ($lock)"
  flock 9
fi
# Hosts left by an interrupted earlier run (say, a killed session) would be reused half-configured.
scripts/cleanup.sh molecule
trap 'scripts/cleanup.sh molecule' EXIT
trap 'exit 130' INT TERM

results=() failed=0
for s in "$@"; do
  [ -f "molecule/$s/molecule.yml" ] || { echo "[molecule] no scenario '$s' under molecule/" >&2; exit 2; }
  echo "[molecule] === scenario $s ==="
  start=$(date +%s)
  if molecule test -s "$s"; then status=passed; else status=failed; failed=$((failed + 1)); fi
  results+=("$(printf '%-12s %-7s %4ss' "$s" "$status" "$(( $(date +%s) - start ))")")
done
echo "[molecule] summary:"
printf '  %s\n' "${results[@]}"
passed=$(( $# - failed ))
echo "molecule: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
