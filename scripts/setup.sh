#!/usr/bin/env bash
# Prepares this machine for lookout's tests and demo: controller venv, Docker engine, systemd base
# images. Every step is idempotent and skipped when its result is already present.
#
#   scripts/setup.sh [venv|docker|images|all]   (default: all)
#
# Knobs (environment): LOOKOUT_VENV (.venv), LOOKOUT_IMAGES ("12 13"), LOOKOUT_MIRROR (Debian mirror),
# LOOKOUT_DOCKERD_LOG (/var/log/lookout-dockerd.log).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
venv=${LOOKOUT_VENV:-$here/.venv}
images=${LOOKOUT_IMAGES:-"12 13"}
mirror=${LOOKOUT_MIRROR:-http://deb.debian.org/debian}
dockerd_log=${LOOKOUT_DOCKERD_LOG:-/var/log/lookout-dockerd.log}
image_repo=lookout/debian
# Packages every test host carries: systemd as PID 1, Python for Ansible, dbus for node_exporter's
# systemd collector, sudo and an SSH server for scenarios that reach their hosts as operators do.
base_packages=systemd,systemd-sysv,dbus,python3,python3-apt,sudo,ca-certificates,iproute2,procps,openssh-server
# Bumped whenever the recipe below changes: an image with another recipe label is built again.
image_recipe=3

say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

need_root() {
  [ "$(id -u)" -eq 0 ] || die "$1 needs root (apt-get, dockerd, debootstrap); run as root or with sudo."
}

need_disk() {  # need_disk <MiB> <path>
  local free
  free=$(df -Pm "$2" | awk 'NR==2 {print $4}')
  [ "${free:-0}" -ge "$1" ] || die "only ${free} MiB free under $2; at least $1 MiB are needed."
}

apt_install() {  # apt_install <package>...
  command -v apt-get >/dev/null || die "apt-get not found: this setup supports Debian/Ubuntu machines only."
  local missing=()
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  need_root "installing ${missing[*]}"
  say "apt-get install ${missing[*]}"
  # Lists older than a day are refreshed; a fresh machine has none.
  if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -n1)" ]; then
    apt-get update -qq || die "apt-get update failed (is the Debian mirror reachable?)"
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed"
}

setup_venv() {
  local stamp=$venv/.lookout-requirements
  if [ -x "$venv/bin/python" ] && cmp -s "$here/requirements-dev.txt" "$stamp"; then
    say "venv $venv is current"
    return 0
  fi
  need_disk 1500 "$(dirname "$venv")"
  say "building venv $venv from requirements-dev.txt"
  python3 -m venv "$venv" || die "python3 -m venv failed (install python3-venv)"
  "$venv/bin/pip" install -q --upgrade pip >/dev/null
  "$venv/bin/pip" install -q -r "$here/requirements-dev.txt" || die "pip install -r requirements-dev.txt failed"
  if [ -f "$here/app/pyproject.toml" ]; then
    "$venv/bin/pip" install -q --no-deps -e "$here/app" || die "pip install -e app failed"
  fi
  cp "$here/requirements-dev.txt" "$stamp"
}

postgresql_server_present() { compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; }

# promtool and amtool run rule and route unit tests on the controller, the blackbox exporter feeds the
# dashboard query tests, PostgreSQL's server binaries run the postgresql role's backup programs against a
# throwaway cluster of their own, haproxy checks the rendered haproxy.cfg and runs it in front of test
# backends on 127.0.0.1, ssh reaches the hosts of the scenarios that use SSH, and VictoriaMetrics' binary
# runs with the victoriametrics role's flags on loopback; only the tools are needed, so the Debian packages
# are installed without starting their daemons.
setup_tools() {
  if command -v promtool >/dev/null && command -v amtool >/dev/null && command -v prometheus-blackbox-exporter >/dev/null \
      && postgresql_server_present && command -v pg_restore >/dev/null && [ -x /usr/sbin/haproxy ] \
      && command -v ssh >/dev/null && [ -x /usr/sbin/nft ] && [ -x /usr/bin/victoria-metrics ]; then
    say "promtool, amtool, blackbox_exporter, PostgreSQL, haproxy, ssh, nft and victoria-metrics present"
    return 0
  fi
  local had_postgresql=0 had_haproxy=0 had_victoria_metrics=0
  postgresql_server_present && had_postgresql=1
  [ -x /usr/sbin/haproxy ] && had_haproxy=1
  [ -x /usr/bin/victoria-metrics ] && had_victoria_metrics=1
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d 2>/dev/null && chmod 0755 /usr/sbin/policy-rc.d
  # nftables: the firewall tests check rendered rules with `nft -c` (nothing is loaded on this machine).
  apt_install prometheus prometheus-alertmanager prometheus-blackbox-exporter postgresql postgresql-client haproxy \
    openssh-client nftables victoria-metrics
  rm -f /usr/sbin/policy-rc.d
  # The package's own cluster would start at the next boot of a systemd machine; only when this step
  # brought it: a server the machine already had is someone's.
  if [ "$had_postgresql" -eq 0 ] && [ -d /run/systemd/system ]; then
    systemctl disable --now postgresql >/dev/null 2>&1 || true
  fi
  # The same for haproxy: the tests start their own, on loopback high ports.
  if [ "$had_haproxy" -eq 0 ] && [ -d /run/systemd/system ]; then
    systemctl disable --now haproxy >/dev/null 2>&1 || true
  fi
  # And for VictoriaMetrics: the live test runs the binary itself, on loopback.
  if [ "$had_victoria_metrics" -eq 0 ] && [ -d /run/systemd/system ]; then
    systemctl disable --now victoria-metrics >/dev/null 2>&1 || true
  fi
}

docker_up() { docker info >/dev/null 2>&1; }

setup_docker() {
  if docker_up; then
    say "Docker engine running"
    return 0
  fi
  need_root "starting the Docker engine"
  command -v dockerd >/dev/null || apt_install docker.io
  say "starting dockerd (log: $dockerd_log)"
  nohup dockerd >"$dockerd_log" 2>&1 &
  for _ in $(seq 1 60); do
    docker_up && { say "Docker engine up"; return 0; }
    sleep 1
  done
  die "dockerd did not come up within 60 s; see $dockerd_log"
}

codename() {
  case "$1" in
    12) echo bookworm ;;
    13) echo trixie ;;
    *) die "unknown Debian release '$1' in LOOKOUT_IMAGES (known: 12 13)" ;;
  esac
}

build_image() {  # build_image <debian release>
  local rel=$1 name=$image_repo:$1 root
  if [ "$(docker image inspect -f '{{ index .Config.Labels "lookout.recipe" }}' "$name" 2>/dev/null)" = "$image_recipe" ]
  then
    say "image $name present"
    return 0
  fi
  need_disk 2000 /var/tmp
  root=$(mktemp -d /var/tmp/lookout-rootfs-XXXXXX)
  say "debootstrap Debian $rel ($(codename "$rel")) -> $name"
  if ! debootstrap --variant=minbase --include="$base_packages" "$(codename "$rel")" "$root" "$mirror" \
      >"$root.log" 2>&1; then
    rm -rf "$root"
    die "debootstrap of Debian $rel failed; see $root.log"
  fi
  # Containers have no console to wait for and no hardware to set up.
  chroot "$root" systemctl mask getty@tty1.service systemd-udevd.service systemd-udev-trigger.service \
    systemd-logind.service >/dev/null 2>&1 || true
  # No SSH host keys in the image (every container would share them) and no SSH server at boot: a scenario
  # that uses SSH makes each host's own keys and starts it (molecule/_shared/create.yml).
  rm -f "$root"/etc/ssh/ssh_host_*
  # dpkg skips its fsync calls, as Debian's own container images do: a test host is thrown away, never
  # power-cut, and the scenarios' package installs are quicker.
  echo force-unsafe-io >"$root/etc/dpkg/dpkg.cfg.d/lookout-unsafe-io"
  chroot "$root" systemctl disable ssh.service ssh.socket >/dev/null 2>&1 || true
  rm -rf "$root/var/cache/apt/archives"/*.deb
  tar -C "$root" -c . | docker import -c 'CMD ["/lib/systemd/systemd"]' -c 'ENV container=docker' \
    -c "LABEL lookout.recipe=$image_recipe" - "$name" >/dev/null || die "docker import of $name failed"
  rm -rf "$root" "$root.log"
  say "image $name built"
}

setup_images() {
  setup_docker
  local pids=() rel
  for rel in $images; do codename "$rel" >/dev/null; done
  if ! command -v debootstrap >/dev/null; then apt_install debootstrap; fi
  for rel in $images; do build_image "$rel" & pids+=($!); done
  local rc=0
  for pid in "${pids[@]}"; do wait "$pid" || rc=1; done
  [ $rc -eq 0 ] || die "building base images failed"
}

case "${1:-all}" in
  venv) setup_venv ;;
  tools) setup_tools ;;
  docker) setup_docker ;;
  images) setup_images ;;
  all) setup_venv; "$here/scripts/actionlint.sh" --install; setup_tools; setup_images ;;
  *) die "unknown step '$1' (venv|tools|docker|images|all)" ;;
esac
