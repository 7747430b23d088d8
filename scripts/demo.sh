#!/usr/bin/env bash
# The demo: the demo inventory (inventories/demo) deployed with site.yml onto three local systemd
# containers, web1, monitor1 and load1, plus a local Slack receiver on monitor1 that records every
# message Alertmanager sends. `make demo` runs `up` (after `make setup`), `make demo-down` runs `down`.
#
#   scripts/demo.sh up     create the containers (or keep them), deploy, print where to look
#   scripts/demo.sh down   remove the containers and their network
#
# The containers carry the test label (lookout.test=true, lookout.scenario=demo) and use the test host
# names, so `make clean-hosts` and every molecule run (scripts/molecule-all.sh cleans up afterwards)
# remove a running demo too; creating and deploying it holds the molecule lock, so it never collides
# with a test run. Ports are published on 127.0.0.1 only.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
export PATH="$here/.venv/bin:$PATH"
export ANSIBLE_CONFIG="$here/ansible.cfg"
export LOOKOUT_TEST_NETWORK=lookout-demo MOLECULE_SCENARIO_NAME=demo
lock=${MOLECULE_LOCK:-/tmp/lookout-molecule.lock}
inventory=inventories/demo
platforms=$(mktemp /tmp/lookout-demo-platforms.XXXXXX.json)
trap 'rm -f "$platforms"' EXIT

say() { printf '[demo] %s\n' "$*"; }

# The hosts of inventories/demo/hosts.yml, with the flags of molecule/_shared/create.yml.
cat >"$platforms" <<'EOF'
{"molecule_yml": {"platforms": [
  {"name": "web1", "image": "lookout/debian:12", "published_ports": ["127.0.0.1:5566:5566"]},
  {"name": "monitor1", "image": "lookout/debian:12",
   "published_ports": ["127.0.0.1:9090:9090", "127.0.0.1:9093:9093", "127.0.0.1:9115:9115",
                       "127.0.0.1:3000:3000", "127.0.0.1:5001:5001"]},
  {"name": "load1", "image": "lookout/debian:12"}
]}}
EOF

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
  local start=$SECONDS name scenario
  for name in web1 monitor1 load1; do
    scenario=$(docker inspect -f '{{ index .Config.Labels "lookout.scenario" }}' "$name" 2>/dev/null) || continue
    if [ "$scenario" != demo ]; then
      say "a container named $name is left from a test run (scenario '$scenario'): make clean-hosts first"
      exit 1
    fi
  done
  say "creating web1, monitor1, load1 (network $LOOKOUT_TEST_NETWORK)"
  ansible-playbook molecule/_shared/create.yml -e "@$platforms"
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
  # Only the demo's own containers: a test run may be using the same host names right now.
  local ids
  ids=$(docker ps -aq --filter label=lookout.scenario=demo)
  # shellcheck disable=SC2086 # one argument per container id
  [ -z "$ids" ] || docker rm -f $ids >/dev/null
  if docker network inspect "$LOOKOUT_TEST_NETWORK" >/dev/null 2>&1; then
    docker network rm "$LOOKOUT_TEST_NETWORK" >/dev/null
  fi
  say "removed the demo's containers and the $LOOKOUT_TEST_NETWORK network"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  report) report ;;
  *) echo "usage: $0 up|down|report" >&2; exit 2 ;;
esac
