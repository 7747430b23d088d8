#!/usr/bin/env bash
# Deployment-speed benchmark of the monitoring roles, comparable with /work/shared/ANCHOR_BENCH.md: the four
# services on ONE fresh Debian 12 systemd container (the flags of WORLD.md), connection
# community.docker.docker, pipelining on. Per fresh container: `--check` on the fresh host, first converge,
# unchanged re-run, `--check --diff` on the converged host; then the units' `systemd-analyze security`
# exposure and the configuration files' modes. Wall clock of ansible-playbook.
#   bench/monitoring_bench.sh [RUNS] [package|archive] [auth]     (defaults: 3 package, no auth)
# `auth`: every service behind basic auth (what lookout_auth_enabled does), to measure its cost and check
# mode on a fresh host with it; afterwards the services must answer 401 without and 200 with credentials.
# The stand-in web site is then node_exporter (open), not Prometheus' own page (now behind auth).
# The archive method serves archives built from Debian's packages (molecule/monitoring/files) on loopback.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-3}
method=${2:-package}
auth=${3:-}
image=${LOOKOUT_BENCH_IMAGE:-lookout/debian:12}
work=$(mktemp -d /tmp/lookout-bench.XXXXXX)
keep=${LOOKOUT_BENCH_LOGS:-}  # a directory to keep the ansible-playbook logs in
export PATH="$here/.venv/bin:$PATH" ANSIBLE_CONFIG="$here/ansible.cfg" ANSIBLE_ROLES_PATH="$here/roles"
export ANSIBLE_PIPELINING=true ANSIBLE_CALLBACKS_ENABLED=ansible.builtin.timer ANSIBLE_NOCOLOR=1
containers=() server=""
cleanup() {
  [ ${#containers[@]} -eq 0 ] || docker rm -f "${containers[@]}" >/dev/null 2>&1 || true
  [ -z "$server" ] || kill "$server" 2>/dev/null || true
  if [ -n "$keep" ]; then mkdir -p "$keep" && cp "$work"/*.log "$keep"/ 2>/dev/null; fi
  rm -rf "$work"
}
trap cleanup EXIT

extra=(-e "bench_install_method=$method")
bench_password=bench-not-secret-password
if [ "$auth" = auth ]; then
  cat >"$work/auth-vars.json" <<EOF
{"prometheus_web_basic_auth_enabled": true, "prometheus_web_basic_auth_users": {"bench": "$bench_password"},
 "prometheus_blackbox_basic_auth": {"username": "bench", "password": "$bench_password"},
 "prometheus_alertmanager_basic_auth": {"username": "bench", "password": "$bench_password"},
 "alertmanager_web_basic_auth_enabled": true, "alertmanager_web_basic_auth_users": {"bench": "$bench_password"},
 "blackbox_exporter_web_basic_auth_enabled": true, "blackbox_exporter_web_basic_auth_users": {"bench": "$bench_password"},
 "prometheus_web_targets": ["127.0.0.1:9100"], "prometheus_blackbox_paths": ["/metrics"]}
EOF
  extra+=(-e "@$work/auth-vars.json")
elif [ -n "$auth" ]; then
  echo "[bench] third argument: 'auth' or nothing, not '$auth'" >&2
  exit 2
fi
if [ "$method" = archive ]; then
  "$here/molecule/monitoring/files/build-archives.sh" "$work/mirror" >/dev/null
  timeout 3600 python3 -m http.server --bind 127.0.0.1 --directory "$work/mirror" 18481 >/dev/null 2>&1 &
  server=$!
  python3 - "$work/mirror/archives.json" "$work/archive-vars.json" <<'PY'
import json, sys
archives = json.load(open(sys.argv[1]))
inputs = {"common_archive_cache_dir": sys.argv[2].rsplit("/", 1)[0] + "/cache"}
for role, a in archives.items():
    inputs |= {f"{role}_version": a["version"], f"{role}_archive_sha256": a["sha256"],
               f"{role}_archive_url": f"http://127.0.0.1:18481/{a['file']}"}
json.dump(inputs, open(sys.argv[2], "w"))
PY
  extra+=(-e "@$work/archive-vars.json")
fi

play() {  # play NAME HOST [ansible-playbook args...] -> prints seconds (FAILED: ...); log in $work/NAME.log
  local name=$1 host=$2; shift 2
  local start end
  start=$(date +%s.%N)
  if ! ansible-playbook -i "$host," -c community.docker.docker "${extra[@]}" "$@" \
      "$here/bench/monitoring_bench.yml" >"$work/$name.log" 2>&1; then
    echo "[bench] $name failed; end of its log:" >&2; grep -E 'fatal|ERROR' -A3 "$work/$name.log" | head -20 >&2
    printf 'FAILED (%s)' "$(grep -Eo 'Origin: [^ ]+' "$work/$name.log" | head -1 | sed 's|.*/roles/||')"
    return 0
  fi
  end=$(date +%s.%N)
  printf '%.1f s' "$(echo "$end - $start" | bc)"
}
changed() { grep -Eo 'changed=[0-9]+' "$work/$1.log" | head -1 | cut -d= -f2; }

printf '| run | check (fresh) | converge | re-run | changed | check --diff (converged) | changed |\n|---|---|---|---|---|---|---|\n'
for i in $(seq 1 "$runs"); do
  host=lookout-bench-mon-$i
  docker rm -f "$host" >/dev/null 2>&1 || true
  docker run -d --name "$host" --hostname "$host" --label lookout.bench=true \
    --cap-add SYS_ADMIN --cap-add NET_ADMIN --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
    --cgroupns=host -v /sys/fs/cgroup:/sys/fs/cgroup:rw --tmpfs /run --tmpfs /run/lock --tmpfs /tmp \
    "$image" /lib/systemd/systemd >/dev/null
  containers+=("$host")
  docker exec "$host" systemctl is-system-running --wait >/dev/null 2>&1 || true
  fresh=$(play "check-fresh-$i" "$host" --check)
  converge=$(play "converge-$i" "$host")
  rerun=$(play "rerun-$i" "$host")
  check=$(play "check-converged-$i" "$host" --check --diff)
  printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$i" "$fresh" "$converge" "$rerun" "$(changed "rerun-$i")" \
    "$check" "$(changed "check-converged-$i")"
  last=$host
done

echo
echo "Exposure (systemd-analyze security) and file modes on the last host:"
for unit in prometheus prometheus-node-exporter prometheus-blackbox-exporter alertmanager; do
  docker exec "$last" systemd-analyze security --no-pager "$unit" | tail -1 | sed 's/^→ /  /'
done
docker exec "$last" stat -c '  %a %U:%G %n' /etc/prometheus/prometheus.yml /etc/prometheus/lookout.rules.yml \
  /etc/prometheus/blackbox.yml /etc/alertmanager/alertmanager.yml /etc/alertmanager/slack_api_url
docker exec "$last" sh -c 'ps -o rss=,comm= -C prometheus,prometheus-node,prometheus-blac,prometheus-aler,alertmanager,node_exporter,blackbox_export' \
  | awk '{s+=$1; print "  " $2 " " int($1/1024) " MiB"} END {print "  total " int(s/1024) " MiB"}'
docker exec "$last" ss -ltnp | awk 'NR>1 {print "  listening " $4}'
if [ "$auth" = auth ]; then
  docker exec -i "$last" python3 - "$bench_password" <<'PY'
import base64, json, sys, urllib.error, urllib.request
def get(url, password=None):
    request = urllib.request.Request(url)
    if password:
        request.add_header("Authorization", "Basic " + base64.b64encode(f"bench:{password}".encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, b""
for port, path in ((9090, "/-/ready"), (9093, "/-/ready"), (9115, "/-/healthy")):
    url = f"http://127.0.0.1:{port}{path}"
    print(f"  :{port} without credentials {get(url)[0]}, with {get(url, sys.argv[1])[0]}")
targets = json.loads(get("http://127.0.0.1:9090/api/v1/targets", sys.argv[1])[1])["data"]["activeTargets"]
print("  targets up:", sum(t["health"] == "up" for t in targets), "of", len(targets))
for t in targets:
    if t["health"] != "up":
        print(f"  not up: {t['scrapeUrl']} {t['health']} {t['lastError']!r}")
PY
fi
