#!/usr/bin/env bash
# Release archives for the anchor (prometheus.prometheus) built from Debian's packages: GitHub is out of reach
# here, Debian's mirror is not. The layout its roles expect (<name>-<version>.linux-amd64.tar.gz holding
# <name>-<version>.linux-amd64/<binaries>, unpacked with --strip-components=1; Prometheus < 3 also with
# consoles/ and console_libraries/, which the role copies), plus one sha256sums.txt for all four.
# Debian renames some binaries; the archives carry the upstream names. Writes OUT/archives.json:
# {"prometheus": {"version": ..., "file": ..., "sha256": ...}, ...}.
#   bench/anchor_archives.sh OUT_DIR [DEB_CACHE_DIR]     (DEB_CACHE_DIR: the one build-archives.sh uses)
set -euo pipefail
out=$(realpath -m "$1")
debs=$(realpath -m "${2:-$HOME/.cache/lookout/debs}")
mkdir -p "$out" "$debs"

# name | Debian package | files as debian-path:path-in-archive
specs=(
  "prometheus|prometheus|usr/bin/prometheus:prometheus usr/bin/promtool:promtool
   usr/share/doc/prometheus/examples/consoles:consoles
   usr/share/doc/prometheus/examples/console_libraries:console_libraries"
  "node_exporter|prometheus-node-exporter|usr/bin/prometheus-node-exporter:node_exporter"
  "blackbox_exporter|prometheus-blackbox-exporter|usr/bin/prometheus-blackbox-exporter:blackbox_exporter"
  "alertmanager|prometheus-alertmanager|usr/bin/prometheus-alertmanager:alertmanager usr/bin/amtool:amtool"
)

json="{"
: >"$out/sha256sums.txt"
for spec in "${specs[@]}"; do
  IFS='|' read -r -d '' name package files <<<"$spec" || true
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
      else
        install -m 0755 "$src" "$dest"
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
