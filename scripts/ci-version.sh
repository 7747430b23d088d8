#!/usr/bin/env bash
# Prints the version CI gives the Conduit wheel it builds from the checked-out commit (PEP 440).
#
#   scripts/ci-version.sh sha       <base>.dev<run>+g<sha>  for main and pull requests: <base> is
#                                   app/conduit/_version.py, <run> the CI run number (0 locally), <sha>
#                                   the commit's abbreviated SHA
#   scripts/ci-version.sh release   X.Y.<n>  on a branch release/X.Y: <n> counts the commits on the
#                                   branch's first-parent line since it was cut from main, so the cut is
#                                   X.Y.0 and every hot-fix merged into it the next patch. Fails when the
#                                   tag vX.Y.<n> already names another commit (history rewritten).
#
# Knobs (environment): GITHUB_SHA (commit; default HEAD), GITHUB_RUN_NUMBER, GITHUB_REF_NAME (branch;
# default the checked-out one), LOOKOUT_TRUNK (main).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
die() { printf '[ci-version] ERROR: %s\n' "$*" >&2; exit 1; }

commit=$(git -C "$here" rev-parse --verify "${GITHUB_SHA:-HEAD}^{commit}")

base_version() {
  local file=$here/app/conduit/_version.py line
  line=$(grep -E '^__version__ = "[^"]+"$' "$file") || die "no __version__ line in $file"
  line=${line#*\"}
  printf '%s\n' "${line%\"}"
}

sha_version() {
  local run=${GITHUB_RUN_NUMBER:-0}
  [[ $run =~ ^[0-9]+$ ]] || die "GITHUB_RUN_NUMBER '$run' is not a number"
  printf '%s.dev%s+g%s\n' "$(base_version)" "$run" "$(git -C "$here" rev-parse --short=8 "$commit")"
}

trunk_ref() {
  local trunk=${LOOKOUT_TRUNK:-main} ref
  for ref in "refs/remotes/origin/$trunk" "refs/heads/$trunk"; do
    git -C "$here" rev-parse --verify --quiet "$ref" >/dev/null && { printf '%s\n' "$ref"; return 0; }
  done
  die "neither origin/$trunk nor $trunk is known here (fetch the full history: fetch-depth 0)"
}

release_version() {
  local branch=${GITHUB_REF_NAME:-$(git -C "$here" symbolic-ref --quiet --short HEAD || true)}
  [[ $branch =~ ^release/([0-9]+)\.([0-9]+)$ ]] \
    || die "release versions are built on branches named release/X.Y, not '${branch:-a detached HEAD}'"
  local minor=${BASH_REMATCH[1]}.${BASH_REMATCH[2]} cut patch version tagged
  cut=$(git -C "$here" merge-base "$(trunk_ref)" "$commit") || die "$branch shares no history with main"
  patch=$(git -C "$here" rev-list --count --first-parent "$cut..$commit")
  version=$minor.$patch
  if tagged=$(git -C "$here" rev-parse --verify --quiet "refs/tags/v$version^{commit}"); then
    [ "$tagged" = "$commit" ] || die "tag v$version already names $tagged, not $commit: was $branch rewritten?"
  fi
  printf '%s\n' "$version"
}

case "${1:-}" in
  sha) sha_version ;;
  release) release_version ;;
  *) die "usage: $0 sha|release" ;;
esac
