#!/usr/bin/env bash
# Removes every container and network lookout's tests created (label lookout.test=true).
set -uo pipefail
docker info >/dev/null 2>&1 || exit 0
ids=$(docker ps -aq --filter label=lookout.test=true)
[ -z "$ids" ] || docker rm -f $ids >/dev/null
nets=$(docker network ls -q --filter label=lookout.test=true)
[ -z "$nets" ] || docker network rm $nets >/dev/null
echo "[cleanup] test containers and networks removed"
