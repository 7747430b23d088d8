#!/usr/bin/env bash
# Removes the containers and networks lookout's tests created: those of the molecule scenarios, the demo
# and the benchmarks (label lookout.test=true), and those of the controller-side tests (lookout.test=unit).
#   scripts/cleanup.sh            both (make clean-hosts)
#   scripts/cleanup.sh molecule   lookout.test=true only: what scripts/molecule-all.sh runs before and after
#                                 its scenarios, so that a unit suite running beside it (make test) keeps its own
set -uo pipefail
case ${1:-all} in
  all) labels=(true unit) ;;
  molecule) labels=(true) ;;
  *) echo "usage: $0 [all|molecule]" >&2; exit 2 ;;
esac
docker info >/dev/null 2>&1 || exit 0
for label in "${labels[@]}"; do
  ids=$(docker ps -aq --filter "label=lookout.test=$label")
  [ -z "$ids" ] || docker rm -f $ids >/dev/null
  nets=$(docker network ls -q --filter "label=lookout.test=$label")
  [ -z "$nets" ] || docker network rm $nets >/dev/null
done
echo "[cleanup] test containers and networks removed (lookout.test=${labels[*]})"
