#!/usr/bin/env bash
# Runs `molecule test` for each named scenario, one at a time (a lock keeps concurrent runs on this
# machine from fighting over host names), prints a timing table, and removes every test container and
# network afterwards, even on failure or interrupt. A failed scenario's failed tasks (play, task, host,
# message: scripts/failed-tasks.py) are printed again last, so that the end of a long log says what failed.
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
trap 'exit 130' INT TERM

logs=$(mktemp -d)
trap 'scripts/cleanup.sh molecule; rm -rf "$logs"' EXIT

results=() failed=0 failures=()
for s in "$@"; do
  [ -f "molecule/$s/molecule.yml" ] || { echo "[molecule] no scenario '$s' under molecule/" >&2; exit 2; }
  echo "[molecule] === scenario $s ==="
  start=$(date +%s)
  molecule test -s "$s" 2>&1 | tee "$logs/$s.log"
  if [ "${PIPESTATUS[0]}" -eq 0 ]; then
    status=passed
  else
    status=failed failed=$((failed + 1))
    failures+=("$s")
  fi
  results+=("$(printf '%-12s %-7s %4ss' "$s" "$status" "$(( $(date +%s) - start ))")")
done
echo "[molecule] summary:"
printf '  %s\n' "${results[@]}"
passed=$(( $# - failed ))
echo "molecule: $passed passed, $failed failed"
for s in "${failures[@]}"; do
  echo "[molecule] $s failed:"
  python3 scripts/failed-tasks.py "$logs/$s.log" | sed 's/^/  /'
done
[ "$failed" -eq 0 ]
