#!/usr/bin/env bash
# Builds upstream-style release archives (<name>-<version>.linux-amd64.tar.gz holding <name>-<version>.linux-amd64/<binaries>)
# from Debian's packages, for the archive-method test: GitHub is out of reach here, Debian's mirror is not.
# Debian renames some binaries; the archives carry the upstream names. Writes OUT/archives.json:
# {"prometheus": {"version": ..., "file": ..., "sha256": ...}, ...}.
#   build-archives.sh OUT_DIR [DEB_CACHE_DIR]
set -euo pipefail
out=$(realpath -m "$1")
debs=$(realpath -m "${2:-$HOME/.cache/lookout/debs}")
mkdir -p "$out" "$debs"

# name | Debian package | binaries as debian-path:upstream-name
specs=(
  "prometheus|prometheus|usr/bin/prometheus:prometheus usr/bin/promtool:promtool"
  "node_exporter|prometheus-node-exporter|usr/bin/prometheus-node-exporter:node_exporter"
  "blackbox_exporter|prometheus-blackbox-exporter|usr/bin/prometheus-blackbox-exporter:blackbox_exporter"
)

json="{"
for spec in "${specs[@]}"; do
  IFS='|' read -r name package binaries <<<"$spec"
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
    for pair in $binaries; do
      install -m 0755 "$work/root/${pair%%:*}" "$work/$dir/${pair##*:}"
    done
    tar -C "$work" --owner=0 --group=0 --mtime=@0 -czf "$archive" "$dir"
    rm -rf "$work"
  fi
  sha=$(sha256sum "$archive" | cut -d' ' -f1)
  json+="\"$name\": {\"version\": \"$version\", \"file\": \"$(basename "$archive")\", \"sha256\": \"$sha\"},"
done
printf '%s}\n' "${json%,}" >"$out/archives.json"
cat "$out/archives.json"
