#!/usr/bin/env bash
# The demo: the demo inventory (inventories/demo) deployed with site.yml onto three local systemd
# containers, web1, monitor1 and load1, plus a local Slack receiver on monitor1 that records every
# message Alertmanager sends. `make demo` runs `up` (after `make setup`), `make demo-down` runs `down`.
#
#   scripts/demo.sh up     create the containers (or keep them), deploy, print where to look
#   scripts/demo.sh down   remove the containers and their network
#   scripts/demo.sh create [--no-ports] [HOST...]
#                          only create the containers (default: the demo's three), for a caller that holds
#                          the molecule lock itself (bench/scale_bench.py: more web hosts, no ports)
#
# The containers carry the test label (lookout.test=true, lookout.scenario=demo) and use the test host
# names, so `make clean-hosts` and every molecule run (scripts/molecule-all.sh cleans up afterwards)
# remove a running demo too; creating and deploying it holds the molecule lock, so it never collides
# with a test run. Ports are published on 127.0.0.1 only. LOOKOUT_DEMO_SCENARIO and LOOKOUT_DEMO_NETWORK
# (default demo, lookout-demo) give `create` and `down` another label and network, so that another user
# of these hosts (the scale bench) never removes a running demo, nor the demo its hosts.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
export PATH="$here/.venv/bin:$PATH"
export ANSIBLE_CONFIG="$here/ansible.cfg"
scenario=${LOOKOUT_DEMO_SCENARIO:-demo}
export LOOKOUT_TEST_NETWORK=${LOOKOUT_DEMO_NETWORK:-lookout-demo} MOLECULE_SCENARIO_NAME=$scenario
lock=${MOLECULE_LOCK:-/tmp/lookout-molecule.lock}
inventory=inventories/demo
platforms=$(mktemp /tmp/lookout-demo-platforms.XXXXXX.json)
trap 'rm -f "$platforms"' EXIT

say() { printf '[%s] %s\n' "$scenario" "$*"; }

# create [--no-ports] [HOST...]: Debian 12 systemd containers of these names (default web1 monitor1 load1,
# the hosts of inventories/demo/hosts.yml) with the flags of molecule/_shared/create.yml, on this
# scenario's network and label; an existing one of the same scenario is kept. web1 and monitor1 publish
# the demo's ports on 127.0.0.1 unless --no-ports. Refuses a container of such a name left by anything else.
create() {
  local ports=true name found
  if [ "${1:-}" = --no-ports ]; then ports=false; shift; fi
  [ $# -gt 0 ] || set -- web1 monitor1 load1
  for name in "$@"; do
    found=$(docker inspect -f '{{ index .Config.Labels "lookout.scenario" }}' "$name" 2>/dev/null) || continue
    if [ "$found" != "$scenario" ]; then
      say "a container named $name is left from another run (scenario '$found'): make clean-hosts first"
      exit 1
    fi
  done
  say "creating $* (network $LOOKOUT_TEST_NETWORK)"
  python3 - "$ports" "$@" >"$platforms" <<'PY'
import json, sys
ports = {"web1": ["127.0.0.1:5566:5566"],
         "monitor1": ["127.0.0.1:9090:9090", "127.0.0.1:9093:9093", "127.0.0.1:9115:9115",
                      "127.0.0.1:3000:3000", "127.0.0.1:5001:5001"]}
platforms = [{"name": name, "image": "lookout/debian:12"} for name in sys.argv[2:]]
for platform in platforms:
    if sys.argv[1] == "true" and platform["name"] in ports:
        platform["published_ports"] = ports[platform["name"]]
print(json.dumps({"molecule_yml": {"platforms": platforms}}))
PY
  ansible-playbook molecule/_shared/create.yml -e "@$platforms"
}

knob() {  # knob <name>: a knob of the demo inventory, as Ansible resolves it
  ansible -i "$inventory" monitor1 --playbook-dir playbooks -m ansible.builtin.debug -a "var=$1" -o 2>/dev/null \
    | sed -E 's/^[^{]*//' | python3 -c "import json, sys; print(json.load(sys.stdin)['$1'])"
}

up() {
  if ! docker info >/dev/null 2>&1; then
    say "no Docker engine running: run make setup"
    exit 1
  fi
  exec 9>"$lock"
  if ! flock -n 9; then
    say "waiting for a molecule run on this machine to finish ($lock)"
    flock 9
  fi
  local start=$SECONDS
  create
  say "starting the local Slack receiver on monitor1"
  ansible-playbook -i "$inventory" molecule/_shared/slack_receiver.yml
  say "deploying the demo inventory: ansible-playbook -i $inventory site.yml"
  ansible-playbook -i "$inventory" site.yml
  flock -u 9
  say "deployed in $((SECONDS - start)) s"
  report
}

report() {
  local grafana down_for rate rate_for critical warning
  grafana=$(knob lookout_grafana_enabled)
  down_for=$(knob lookout_alert_website_down_for)
  rate=$(knob lookout_alert_high_request_rate)
  rate_for=$(knob lookout_alert_high_request_rate_for)
  critical=$(knob lookout_slack_channels | python3 -c "import ast, sys; print(ast.literal_eval(sys.stdin.read())['critical'])")
  warning=$(knob lookout_slack_channels | python3 -c "import ast, sys; print(ast.literal_eval(sys.stdin.read())['warning'])")
  cat <<EOF

The demo is up. Where to look:
  Conduit API         http://127.0.0.1:5566/api/articles   (health: /health, metrics: /metrics)
  Prometheus          http://127.0.0.1:9090/alerts          (targets: /targets)
  Alertmanager        http://127.0.0.1:9093/
  Blackbox exporter   http://127.0.0.1:9115/
EOF
  if [ "$grafana" = True ]; then
    echo "  Grafana             http://127.0.0.1:3000/             (dashboards in the Lookout folder)"
  else
    echo "  Grafana             not installed (lookout_grafana_enabled: false; see docs/operations.md)"
  fi
  cat <<EOF
  Slack (local)       http://127.0.0.1:5001/               (every message Alertmanager sent; JSON: /messages)

Trigger the alerts:
  WebsiteDown ($critical, after $down_for down):
    docker exec web1 systemctl stop conduit.socket conduit.service    # then, to resolve it:
    docker exec web1 systemctl start conduit.socket conduit.service
  HighRequestRate ($warning, above $rate requests/s for $rate_for): the seed's 4-minute load test
    ansible-playbook -i $inventory playbooks/loadtest.yml
  or a 90-second one:
    ansible-playbook -i $inventory playbooks/loadtest.yml \\
      -e '{"lookout_loadtest_stages": [{"duration": "10s", "target": 5}, {"duration": "70s", "target": 5}, {"duration": "10s", "target": 0}]}'
  (summaries in artifacts/loadtest/demo/)
  Watch the messages arrive:  watch -n 2 curl -s http://127.0.0.1:5001/

Remove it all: make demo-down
EOF
}

down() {
  if ! docker info >/dev/null 2>&1; then
    say "no Docker engine running: nothing to remove"
    return 0
  fi
  # Only this scenario's own containers: a test run may be using the same host names right now.
  local ids
  ids=$(docker ps -aq --filter "label=lookout.scenario=$scenario")
  # shellcheck disable=SC2086 # one argument per container id
  [ -z "$ids" ] || docker rm -f $ids >/dev/null
  if docker network inspect "$LOOKOUT_TEST_NETWORK" >/dev/null 2>&1; then
    docker network rm "$LOOKOUT_TEST_NETWORK" >/dev/null
  fi
  say "removed the $scenario containers and the $LOOKOUT_TEST_NETWORK network"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  report) report ;;
  create) shift; create "$@" ;;
  *) echo "usage: $0 up|down|report|create [--no-ports] [HOST...]" >&2; exit 2 ;;
esac
