#!/usr/bin/env bash
# make test's second half: the controller-side tests (make unit-run: tests/, then the app's suite) beside
# the molecule scenarios (make molecule-run), not after them. The scenarios spend much of their time
# waiting for alerts, timers and restarts (the stack scenario's verify keeps the 2 CPUs about 25 % busy for
# a quarter of an hour); the unit suite runs in that time. It runs at a lower priority (nice UNIT_NICE, 10
# by default), so the scenarios, whose checks wait for their hosts, get the CPUs first. Each side's output is
# streamed with its prefix ([unit], [molecule]); the exit status is non-zero if either failed.
#   scripts/unit-and-molecule.sh [SCENARIO...]     (make molecule-run's SCENARIOS when given)
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
start=$(date +%s)
scenarios=()
[ $# -eq 0 ] || scenarios=("SCENARIOS=$*")

nice -n "${UNIT_NICE:-10}" make --no-print-directory unit-run > >(sed -u 's/^/[unit] /') 2>&1 &
unit_pid=$!
make --no-print-directory molecule-run "${scenarios[@]}" > >(sed -u 's/^/[molecule] /') 2>&1 &
molecule_pid=$!
# The recipes' own processes too (molecule-all.sh then removes its hosts).
trap 'pkill -TERM -P "$unit_pid"; pkill -TERM -P "$molecule_pid"; kill "$unit_pid" "$molecule_pid" 2>/dev/null; exit 130' INT TERM

# Each side's status and end, the first to end first.
declare -A rc ended
wait -n -p first "$unit_pid" "$molecule_pid"; rc[$first]=$?
ended[$first]=$(( $(date +%s) - start ))
if [ "$first" = "$unit_pid" ]; then second=$molecule_pid; else second=$unit_pid; fi
wait "$second"; rc[$second]=$?
ended[$second]=$(( $(date +%s) - start ))
molecule_rc=${rc[$molecule_pid]} unit_rc=${rc[$unit_pid]}
status() { [ "$1" -eq 0 ] && echo passed || echo "failed ($1)"; }
echo "[test] molecule $(status "$molecule_rc") after ${ended[$molecule_pid]} s;" \
  "unit $(status "$unit_rc") (nice ${UNIT_NICE:-10}) after ${ended[$unit_pid]} s"
[ "$molecule_rc" -eq 0 ] && [ "$unit_rc" -eq 0 ]
