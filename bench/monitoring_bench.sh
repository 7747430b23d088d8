#!/usr/bin/env bash
# Deployment-speed benchmark of the monitoring roles against the anchor (/work/shared/ANCHOR_BENCH.md): the
# four services on ONE fresh Debian 12 systemd container (the flags of WORLD.md), connection
# community.docker.docker or SSH (LOOKOUT_BENCH_CONNECTION below), pipelining on. Each round takes one fresh
# container for lookout (monitoring_bench.yml) and one for the anchor, the prometheus.prometheus collection
# (anchor_bench.yml), alternating which goes first; per container: `--check` on the fresh host, first
# converge, unchanged re-run, `--check --diff` on the converged host. Wall clock of ansible-playbook and the
# 1-minute load average before each run; then the medians and the ratios lookout/anchor, and for the last
# round's hosts the units' `systemd-analyze security` exposure and the configuration files' modes.
#   bench/monitoring_bench.sh [RUNS] [package|archive] [auth]     (defaults: 3 package, no auth)
# `auth`: every lookout service behind basic auth (what lookout_auth_enabled does), to measure its cost and
# check mode on a fresh host with it; afterwards the services must answer 401 without and 200 with
# credentials. The stand-in web site is then node_exporter (open), not Prometheus' own page (now behind
# auth). The anchor's play has no such setting: with `auth` it is skipped.
# The archive method serves archives built from Debian's packages (scripts/build-archives.sh) on loopback.
# The anchor: LOOKOUT_BENCH_ANCHOR=<dir>, either .../ansible_collections/prometheus/prometheus or a
# collections path holding it; unset: the collection installed in the venv, if any; `off`: lookout alone.
# Its binaries come from archives built from Debian's packages (the same scripts/build-archives.sh) served on
# loopback and already in its controller-side cache ("pre-cached", as the anchor was measured);
# LOOKOUT_BENCH_ANCHOR_CHECKSUMS=1 also makes it fetch and check sha256sums.txt on every run.
# LOOKOUT_BENCH_CONNECTION=docker (the default): Ansible reaches each container through `docker exec`
# (community.docker.docker). `ssh`: over SSH, as the stack scenario reaches its hosts (group ssh): each fresh
# container, lookout's and the anchor's alike, gets its SSH server, the `deploy` user with passwordless sudo
# and the controller's key from molecule/_shared/ssh_access.yml (molecule's create.yml runs the same
# playbook), and is reached at its address on Docker's `bridge` network with molecule/_shared/host_vars/
# ssh.yml (deploy, become, host key checked against the known_hosts that playbook wrote) and this checkout's
# ansible.cfg (pipelining; Ansible's ssh_args: ControlMaster=auto, ControlPersist=60s). The control sockets
# live in the run's directory and are closed when their container goes.
# LOOKOUT_BENCH_MITOGEN=1: every timed run, lookout's and the anchor's alike, under Mitogen's mitogen_linear
# strategy (the exports of scripts/mitogen-env.sh; README.md, "Mitogen (optional)"); unset or 0: Ansible's
# linear strategy, as before. Mitogen accelerates `ssh`, not community.docker.docker. The SSH setup of each
# host (ssh_access.yml) is not timed and runs without it.
# LOOKOUT_BENCH_PRELOAD=off (the default, as before): both sides run with the timer callback only. `lookout`:
# lookout's runs also enable lookout.stack.preload, as its ansible.cfg does (lookout as it ships, the anchor
# as it ships). `both`: the anchor's runs enable it too (the same controller-side speed-ups for both).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-3}
method=${2:-package}
auth=${3:-}
image=${LOOKOUT_BENCH_IMAGE:-lookout/debian:12}
connection=${LOOKOUT_BENCH_CONNECTION:-docker}
case $connection in
  docker) connection_label="community.docker.docker (docker exec per module call)" ;;
  ssh)
    ssh_args=${ANSIBLE_SSH_ARGS:-"-C -o ControlMaster=auto -o ControlPersist=60s (Ansible's default)"}
    connection_label="ssh as deploy with sudo, host keys checked, pipelining, ssh_args $ssh_args"
    ;;
  *)
    echo "[bench] LOOKOUT_BENCH_CONNECTION: 'docker' or 'ssh', not '$connection'" >&2
    exit 2
    ;;
esac
# The strategy of the timed runs: the exports play() evaluates (empty: none), and how the output names it.
mitogen_exports="" strategy_label=${ANSIBLE_STRATEGY:-linear}
case ${LOOKOUT_BENCH_MITOGEN:-0} in
  0) ;;
  1)
    mitogen_exports=$("$here/scripts/mitogen-env.sh") || exit 2
    strategy_label="mitogen_linear ($(sed -n '1s/^# \(Mitogen [^,]*\),.*/\1/p' <<<"$mitogen_exports"))"
    [ "$connection" = ssh ] || echo "[bench] Mitogen does not take over community.docker.docker: that connection runs as without it" >&2
    ;;
  *)
    echo "[bench] LOOKOUT_BENCH_MITOGEN: '1' or '0', not '$LOOKOUT_BENCH_MITOGEN'" >&2
    exit 2
    ;;
esac
# The callbacks of each side's timed runs (the stdout callback stays Ansible's default).
lookout_callbacks=ansible.builtin.timer anchor_callbacks=ansible.builtin.timer
case ${LOOKOUT_BENCH_PRELOAD:-off} in
  off) ;;
  lookout) lookout_callbacks=ansible.builtin.timer,lookout.stack.preload ;;
  both) lookout_callbacks=ansible.builtin.timer,lookout.stack.preload anchor_callbacks=$lookout_callbacks ;;
  *)
    echo "[bench] LOOKOUT_BENCH_PRELOAD: 'off', 'lookout' or 'both', not '$LOOKOUT_BENCH_PRELOAD'" >&2
    exit 2
    ;;
esac
work=$(mktemp -d /tmp/lookout-bench.XXXXXX)
keep=${LOOKOUT_BENCH_LOGS:-}  # a directory to keep the ansible-playbook logs in
export PATH="$here/.venv/bin:$PATH" ANSIBLE_CONFIG="$here/ansible.cfg" ANSIBLE_ROLES_PATH="$here/roles"
export ANSIBLE_PIPELINING=true ANSIBLE_CALLBACKS_ENABLED=ansible.builtin.timer ANSIBLE_NOCOLOR=1
if [ "$connection" = ssh ]; then
  # Where ssh_access.yml keeps the key pair, known_hosts and ssh_config, and where host_vars/ssh.yml reads
  # them (both name the directory by this variable); the SSH control sockets of this run.
  export MOLECULE_EPHEMERAL_DIRECTORY=$work ANSIBLE_SSH_CONTROL_PATH_DIR=$work/cp
fi
containers=() servers=()
cleanup() {
  [ ${#containers[@]} -eq 0 ] || docker rm -f "${containers[@]}" >/dev/null 2>&1 || true
  [ ${#servers[@]} -eq 0 ] || kill "${servers[@]}" 2>/dev/null || true
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
  # All four, as the anchor installs all four from archives (it is served the same ones, below).
  "$here/scripts/build-archives.sh" "$work/mirror" prometheus node_exporter blackbox_exporter alertmanager >/dev/null
  timeout 7200 python3 -m http.server --bind 127.0.0.1 --directory "$work/mirror" 18481 >/dev/null 2>&1 &
  servers+=($!)
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

# The anchor: where it is, and the inputs that point its roles at local archives.
anchor=${LOOKOUT_BENCH_ANCHOR:-} anchor_why="" anchor_cp="" anchor_version=""
if [ "$anchor" = off ]; then
  anchor_why="LOOKOUT_BENCH_ANCHOR=off"
elif [ "$auth" = auth ]; then
  anchor_why="'auth' has no counterpart in the anchor's play (bench/anchor_bench.yml)"
elif [ -z "$anchor" ]; then
  anchor=$(ansible-galaxy collection list prometheus.prometheus --format json 2>/dev/null | python3 -c '
import json, sys
for path, found in json.load(sys.stdin).items():
    if "prometheus.prometheus" in found:
        print(path + "/prometheus/prometheus")
        break' 2>/dev/null) || true
  [ -n "$anchor" ] || anchor_why="LOOKOUT_BENCH_ANCHOR is unset and the venv has no prometheus.prometheus collection"
fi
if [ -z "$anchor_why" ]; then
  anchor=$(realpath -m "$anchor")
  if [ -d "$anchor/ansible_collections/prometheus/prometheus/roles" ]; then
    anchor_cp=$anchor anchor=$anchor/ansible_collections/prometheus/prometheus
  elif [ -d "$anchor/roles" ] && [[ $anchor == */ansible_collections/prometheus/prometheus ]]; then
    anchor_cp=${anchor%/ansible_collections/prometheus/prometheus}
  else
    anchor_why="$anchor is neither .../ansible_collections/prometheus/prometheus nor a collections path holding it"
  fi
fi
sides=(lookout)
if [ -n "$anchor_cp" ]; then
  anchor_version=$(python3 -c '
import json, os, re, sys
d = sys.argv[1]
if os.path.exists(d + "/MANIFEST.json"):
    print(json.load(open(d + "/MANIFEST.json"))["collection_info"]["version"])
elif os.path.exists(d + "/galaxy.yml"):
    print(re.search(r"^version:\s*(\S+)", open(d + "/galaxy.yml").read(), re.M).group(1))
else:
    print("unknown")' "$anchor")
  [[ $anchor_version == 0.30.* ]] || echo "[bench] the anchor is prometheus.prometheus $anchor_version, not 0.30.x" >&2
  # The archives lookout's archive runs install; built here when lookout installs packages.
  [ "$method" = archive ] ||
    "$here/scripts/build-archives.sh" "$work/mirror" prometheus node_exporter blackbox_exporter alertmanager >/dev/null
  timeout 7200 python3 -m http.server --bind 127.0.0.1 --directory "$work/mirror" 18482 >/dev/null 2>&1 &
  servers+=($!)
  python3 - "$work/mirror" "$work/anchor-vars.json" "${LOOKOUT_BENCH_ANCHOR_CHECKSUMS:-}" <<'PY'
import json, os, shutil, sys
mirror, out, checksums = sys.argv[1:]
inputs = {}
for role, a in json.load(open(f"{mirror}/archives.json")).items():
    cache = f"{os.path.dirname(out)}/anchor-cache/{role}/{a['version']}"
    os.makedirs(cache, exist_ok=True)
    shutil.copy(f"{mirror}/{a['file']}", cache)  # pre-cached: its download is answered 304 Not Modified
    inputs |= {f"{role}_version": a["version"], f"{role}_local_cache_path": cache,
               f"{role}_binary_url": f"http://127.0.0.1:18482/{a['file']}",
               f"{role}_checksums_url": "http://127.0.0.1:18482/sha256sums.txt" if checksums == "1" else ""}
json.dump(inputs, open(out, "w"))
PY
  sides+=(anchor)
  echo "[bench] anchor: prometheus.prometheus $anchor_version at $anchor" >&2
else
  echo "[bench] anchor skipped: $anchor_why; lookout alone" >&2
fi
# Debian's Alertmanager binary reads its default templates from /usr/share/prometheus/alertmanager (upstream's
# compiles them in): every host that installs it from an archive (the anchor's; lookout's in archive runs)
# gets them before its runs, or its Alertmanager restarts in a loop.
if [ -f "$work/mirror/archives.json" ]; then
  tar -xzf "$work"/mirror/alertmanager-*.linux-amd64.tar.gz -C "$work" --wildcards --strip-components=1 '*/templates/*'
fi

play() {  # play SIDE NAME HOST [ansible-playbook args...] -> table cell; log in $work/NAME.log, a line in results
  local side=$1 name=$2 host=$3; shift 3
  local load start end seconds status=ok cell
  # Called as $(play ...): the exports stay in this run's subshell (reach's setup runs without them).
  if [ -n "$mitogen_exports" ]; then eval "$mitogen_exports"; fi
  load=$(cut -d' ' -f1 /proc/loadavg)
  start=$(date +%s.%N)
  if [ "$side" = lookout ]; then
    ANSIBLE_CALLBACKS_ENABLED=$lookout_callbacks ansible-playbook "${target[@]}" "${extra[@]}" "$@" \
      "$here/bench/monitoring_bench.yml" >"$work/$name.log" 2>&1 || status=failed
  else
    # The anchor as it ships: its roles read facts as top-level variables (ansible_fqdn), Ansible's default.
    ANSIBLE_COLLECTIONS_PATH="$anchor_cp:$here/collections" ANSIBLE_CALLBACKS_ENABLED=$anchor_callbacks \
      ANSIBLE_INJECT_FACTS_AS_VARS=true ansible-playbook "${target[@]}" -e "@$work/anchor-vars.json" "$@" \
      "$here/bench/anchor_bench.yml" >"$work/$name.log" 2>&1 || status=failed
  fi
  end=$(date +%s.%N)
  seconds=$(printf '%.1f' "$(echo "$end - $start" | bc)")
  cell="$seconds s"
  if [ $status = failed ]; then
    echo "[bench] $name failed; end of its log:" >&2; grep -E 'fatal|ERROR' -A3 "$work/$name.log" | head -20 >&2
    cell="FAILED after $seconds s"
  fi
  printf '%s\t%s\t%s\t%s\t%s\n' "$side" "${name%-*}" "$seconds" "$status" "$load" >>"$work/results.tsv"
  printf '%s, load %s' "$cell" "$load"
}
changed() { grep -Eo 'changed=[0-9]+' "$work/$1.log" | head -1 | cut -d= -f2; }
start_container() {  # start_container NAME: a fresh Debian 12 systemd container
  docker rm -f "$1" >/dev/null 2>&1 || true
  docker run -d --name "$1" --hostname "$1" --label lookout.bench=true \
    --cap-add SYS_ADMIN --cap-add NET_ADMIN --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
    --cgroupns=host -v /sys/fs/cgroup:/sys/fs/cgroup:rw --tmpfs /run --tmpfs /run/lock --tmpfs /tmp \
    "$image" /lib/systemd/systemd >/dev/null
  containers+=("$1")
  docker exec "$1" systemctl is-system-running --wait >/dev/null 2>&1 || true
}
target=()  # the ansible-playbook arguments that reach the current host
reach() {  # reach HOST: set target for HOST; with ssh, first its SSH server, deploy user and keys
  if [ "$connection" = docker ]; then
    target=(-i "$1," -c community.docker.docker)
    return
  fi
  # The stack scenario's way: an inventory whose host_vars link to host_vars/ssh.yml, and
  # ssh_access.yml given the platform as molecule gives create.yml its own (`groups: [ssh]`).
  mkdir -p "$work/inventory/host_vars"
  printf '%s\n' "$1" >"$work/inventory/$1.ini"
  ln -sfn "$here/molecule/_shared/host_vars/ssh.yml" "$work/inventory/host_vars/$1.yml"
  printf '{"molecule_yml": {"platforms": [{"name": "%s", "groups": ["ssh"]}]}}\n' "$1" >"$work/ssh-platforms.json"
  if ! LOOKOUT_TEST_NETWORK=bridge ansible-playbook -i "$work/inventory/$1.ini" -e "@$work/ssh-platforms.json" \
    "$here/molecule/_shared/ssh_access.yml" >"$work/ssh-access-$1.log" 2>&1; then
    echo "[bench] SSH access to $1 failed; end of its log:" >&2
    tail -20 "$work/ssh-access-$1.log" >&2
    exit 1
  fi
  target=(-i "$work/inventory/$1.ini")
}
unreach() {  # unreach: close this run's SSH control connections (their host is about to go)
  local socket
  for socket in "$work"/cp/*; do
    if [ -S "$socket" ]; then ssh -o ControlPath="$socket" -O exit bench-host >/dev/null 2>&1 || true; fi
  done
}

lookout_state() {  # lookout_state HOST: exposure, file modes, RSS, sockets (and the auth checks)
  local last=$1 active
  echo "lookout (last round's host): exposure (systemd-analyze security), file modes, RSS, listening"
  for unit in prometheus prometheus-node-exporter prometheus-blackbox-exporter alertmanager; do
    docker exec "$last" systemd-analyze security --no-pager "$unit" | tail -1 | sed 's/^→ /  /'
    active=$(docker exec "$last" systemctl is-active "$unit" || true)
    [ "$active" = active ] || { echo "  $unit is $active:"; docker exec "$last" journalctl -u "$unit" -n 5 --no-pager | sed 's/^/    /'; }
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
}
anchor_state() {  # anchor_state HOST: the same for the anchor's units and files
  local last=$1 active
  echo "anchor (last round's host): exposure (systemd-analyze security), file modes, RSS, listening"
  for unit in prometheus node_exporter blackbox_exporter alertmanager; do
    docker exec "$last" systemd-analyze security --no-pager "$unit" | tail -1 | sed 's/^→ /  /'
    active=$(docker exec "$last" systemctl is-active "$unit" || true)
    [ "$active" = active ] || { echo "  $unit is $active:"; docker exec "$last" journalctl -u "$unit" -n 5 --no-pager | sed 's/^/    /'; }
  done
  docker exec "$last" stat -c '  %a %U:%G %n' /etc/prometheus/prometheus.yml /etc/blackbox_exporter/blackbox_exporter.yml \
    /etc/alertmanager/alertmanager.yml 2>/dev/null || true
  docker exec "$last" sh -c 'ps -o rss=,comm= -C prometheus,node_exporter,blackbox_export,alertmanager' \
    | awk '{s+=$1; print "  " $2 " " int($1/1024) " MiB"} END {print "  total " int(s/1024) " MiB"}'
  docker exec "$last" ss -ltnp | awk 'NR>1 {print "  listening " $4}'
}

echo "Connection: $connection_label; strategy: $strategy_label"
echo "Callbacks: lookout $lookout_callbacks; anchor $anchor_callbacks"
echo "Wall clock of ansible-playbook, 1-minute load average before the run; changed= of the re-run and of check --diff"
printf '| round | side | check (fresh) | converge | re-run | changed | check --diff (converged) | changed |\n'
printf '|---|---|---|---|---|---|---|---|\n'
for i in $(seq 1 "$runs"); do
  order=("${sides[@]}")
  if [ ${#sides[@]} -eq 2 ] && [ $((i % 2)) -eq 0 ]; then order=(anchor lookout); fi
  for side in "${order[@]}"; do
    if [ "$side" = lookout ]; then host=lookout-bench-mon-$i; else host=lookout-bench-anchor-$i; fi
    start_container "$host"
    if [ "$side" = anchor ] || [ "$method" = archive ]; then
      docker exec "$host" mkdir -p /usr/share/prometheus
      docker cp -q "$work/templates" "$host:/usr/share/prometheus/alertmanager"
    fi
    reach "$host"
    fresh=$(play "$side" "$side-check-fresh-$i" "$host" --check)
    converge=$(play "$side" "$side-converge-$i" "$host")
    rerun=$(play "$side" "$side-rerun-$i" "$host")
    check=$(play "$side" "$side-check-converged-$i" "$host" --check --diff)
    printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$i" "$side" "$fresh" "$converge" "$rerun" \
      "$(changed "$side-rerun-$i")" "$check" "$(changed "$side-check-converged-$i")"
    if [ "$i" -eq "$runs" ]; then "${side}_state" "$host" >"$work/$side-state.txt" 2>&1 || true; fi
    # The next side runs on a machine without this one's services.
    unreach
    docker rm -f "$host" >/dev/null 2>&1 || true
  done
done

echo
python3 - "$work/results.tsv" "${#sides[@]}" "$anchor_why" "$connection_label" "$strategy_label" <<'PY'
import statistics, sys
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1])]
phases = [("check-fresh", "`--check` on the fresh host", None), ("converge", "first converge", 0.5),
          ("rerun", "unchanged re-run", 0.25), ("check-converged", "`--check --diff` on the converged host", None)]
sides = ["lookout", "anchor"] if sys.argv[2] == "2" else ["lookout"]
def cell(side, phase):
    runs = [r for r in rows if r[0] == side and r[1] == f"{side}-{phase}"]
    ok = [float(r[2]) for r in runs if r[3] == "ok"]
    failed = len(runs) - len(ok)
    median = statistics.median(ok) if ok else None
    text = f"{median:.1f} s" if ok else "—"
    if failed:
        text += f" ({failed} of {len(runs)} FAILED)"
    return median, text
rounds = sum(r[1] == "lookout-converge" for r in rows)
print(f"Medians over {rounds} round(s), successful runs only; connection {sys.argv[4]}; strategy {sys.argv[5]}")
head = "| run | " + " | ".join(sides) + (" | lookout/anchor | target |" if len(sides) == 2 else "")
print(head)
print("|---" * (head.count("|") - 1) + "|")
for phase, label, target in phases:
    cells = [cell(s, phase) for s in sides]
    line = f"| {label} | " + " | ".join(c[1] for c in cells) + " |"
    if len(sides) == 2:
        (lm, _), (am, _) = cells
        ratio = f"{lm / am:.2f}×" if lm and am else "—"
        goal = "—"
        if target is not None:
            goal = f"≤ {target}×" + ("" if not (lm and am) else (" met" if lm / am <= target else " missed"))
        line += f" {ratio} | {goal} |"
    print(line)
for s in sides:
    loads = [float(r[4]) for r in rows if r[0] == s]
    print(f"1-minute load before {s}'s runs: median {statistics.median(loads):.2f}, {min(loads):.2f}–{max(loads):.2f}")
if len(sides) == 1:
    print(f"anchor skipped: {sys.argv[3]}")
PY
for side in "${sides[@]}"; do echo; cat "$work/$side-state.txt"; done
