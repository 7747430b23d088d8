#!/usr/bin/env bash
# Upstream-style release archives built from Debian's packages: GitHub is out of reach here, Debian's mirror
# is not. One builder for the monitoring scenario's archive-method test (molecule/monitoring/side_effect.yml)
# and for the anchor of bench/monitoring_bench.sh. Each archive is <name>-<version>.linux-amd64.tar.gz
# holding <name>-<version>.linux-amd64/ with the upstream binary names (Debian renames some); Prometheus < 3
# also carries consoles/ and console_libraries/ (the anchor's role copies them), Alertmanager in templates/
# the default.tmpl and email.tmpl Debian's binary reads from /usr/share/prometheus/alertmanager/ (upstream's
# compiles them in).
# Writes OUT_DIR/archives.json ({"prometheus": {"version": ..., "file": ..., "sha256": ...}, ...}) and
# OUT_DIR/sha256sums.txt. The .debs are cached in LOOKOUT_DEB_CACHE (default ~/.cache/lookout/debs).
#   scripts/build-archives.sh OUT_DIR [NAME ...]   (NAME: prometheus node_exporter blackbox_exporter
#                                                   alertmanager; default: the first three)
set -euo pipefail
out=$(realpath -m "$1")
shift
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(prometheus node_exporter blackbox_exporter)
debs=$(realpath -m "${LOOKOUT_DEB_CACHE:-$HOME/.cache/lookout/debs}")
mkdir -p "$out" "$debs"

# name | Debian package | files as debian-path:path-in-archive
declare -A specs=(
  [prometheus]="prometheus|usr/bin/prometheus:prometheus usr/bin/promtool:promtool
    usr/share/doc/prometheus/examples/consoles:consoles
    usr/share/doc/prometheus/examples/console_libraries:console_libraries"
  [node_exporter]="prometheus-node-exporter|usr/bin/prometheus-node-exporter:node_exporter"
  [blackbox_exporter]="prometheus-blackbox-exporter|usr/bin/prometheus-blackbox-exporter:blackbox_exporter"
  [alertmanager]="prometheus-alertmanager|usr/bin/prometheus-alertmanager:alertmanager usr/bin/amtool:amtool
    usr/share/prometheus/alertmanager/default.tmpl:templates/default.tmpl
    usr/share/prometheus/alertmanager/email.tmpl:templates/email.tmpl"
)

json="{"
: >"$out/sha256sums.txt"
for name in "${names[@]}"; do
  spec=${specs[$name]:-}
  if [ -z "$spec" ]; then
    echo "build-archives.sh: no archive named '$name' (known: ${!specs[*]})" >&2
    exit 2
  fi
  package=${spec%%|*} files=${spec#*|}
  deb=$(find "$debs" -maxdepth 1 -name "${package}_*.deb" | sort | tail -n1)
  if [ -z "$deb" ]; then
    (cd "$debs" && apt-get download -qq "$package")
    deb=$(find "$debs" -maxdepth 1 -name "${package}_*.deb" | sort | tail -n1)
  fi
  # 2.42.0+ds-5+deb12u1 -> 2.42.0
  version=$(dpkg-deb -f "$deb" Version | sed -E 's/^[0-9]+://; s/[+~-].*$//')
  dir="$name-$version.linux-amd64"
  archive="$out/$dir.tar.gz"
  if [ ! -f "$archive" ]; then
    work=$(mktemp -d)
    dpkg-deb -x "$deb" "$work/root"
    mkdir -p "$work/$dir"
    for pair in $files; do
      src="$work/root/${pair%%:*}" dest="$work/$dir/${pair##*:}"
      if [ -d "$src" ]; then
        mkdir -p "$dest" && find "$src" -maxdepth 1 -type f ! -name '*.example' -exec cp -L {} "$dest"/ \;
        gzip -df "$dest"/*.gz 2>/dev/null || true
      elif [ -x "$src" ]; then
        install -D -m 0755 "$src" "$dest"
      else
        install -D -m 0644 "$src" "$dest"
      fi
    done
    tar -C "$work" --owner=0 --group=0 --mtime=@0 -czf "$archive" "$dir"
    rm -rf "$work"
  fi
  sha=$(sha256sum "$archive" | cut -d' ' -f1)
  printf '%s  %s\n' "$sha" "$(basename "$archive")" >>"$out/sha256sums.txt"
  json+="\"$name\": {\"version\": \"$version\", \"file\": \"$(basename "$archive")\", \"sha256\": \"$sha\"},"
done
printf '%s}\n' "${json%,}" >"$out/archives.json"
cat "$out/archives.json"
