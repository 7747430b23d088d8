#!/usr/bin/env bash
# Carries a hot-fix from a release branch back to main: cherry-picks (with -x) every non-merge commit of
# BEFORE..AFTER that main does not already have onto a new branch from main, pushes it and opens a pull
# request to main, so the fix goes through main's checks. On a conflict nothing is pushed and the
# commits to pick by hand are listed.
#
#   scripts/ci-cherry-pick.sh BEFORE AFTER [--dry-run]
#
#   BEFORE, AFTER  the release branch before and after the push (GitHub's push event before/after)
#   --dry-run      build the branch locally only: no push, no pull request
#
# Knobs (environment): LOOKOUT_TRUNK (main), LOOKOUT_REMOTE (origin), GITHUB_REF_NAME (the release
# branch; default the checked-out one). Pushing and the pull request need git credentials and `gh` with
# GH_TOKEN.
set -euo pipefail

say() { printf '[cherry-pick] %s\n' "$*" >&2; }
die() { printf '[cherry-pick] ERROR: %s\n' "$*" >&2; exit 1; }

[ $# -ge 2 ] || die "usage: $0 BEFORE AFTER [--dry-run]"
before=$1 after=$2 dry_run=false
[ "${3:-}" = "--dry-run" ] && dry_run=true
trunk=${LOOKOUT_TRUNK:-main}
remote=${LOOKOUT_REMOTE:-origin}
release=${GITHUB_REF_NAME:-$(git symbolic-ref --quiet --short HEAD || echo release)}

git rev-parse --verify --quiet "$before^{commit}" >/dev/null || die "unknown commit $before (fetch-depth 0?)"
git rev-parse --verify --quiet "$after^{commit}" >/dev/null || die "unknown commit $after"
if git rev-parse --verify --quiet "refs/remotes/$remote/$trunk" >/dev/null; then
  base=refs/remotes/$remote/$trunk
else
  base=refs/heads/$trunk
fi

# `git cherry` marks with "-" the commits whose change main already has (a fix made on main first and
# back-ported, or a previous run of this script that was merged).
mapfile -t commits < <(
  git cherry "$base" "$after" "$before" | awk '$1 == "+" { print $2 }' |
    while read -r c; do [ "$(git rev-list --parents -n1 "$c" | wc -w)" -eq 2 ] && echo "$c"; done
)
if [ ${#commits[@]} -eq 0 ]; then
  say "main already has every change of ${before:0:8}..${after:0:8}: nothing to cherry-pick"
  exit 0
fi

branch=cherry-pick/${release//\//-}-${after:0:8}
say "picking ${#commits[@]} commit(s) of $release onto $branch (from $trunk)"
git switch --quiet --force-create "$branch" "$base"
for c in "${commits[@]}"; do
  if ! git cherry-pick -x "$c" >/dev/null; then
    git cherry-pick --abort || true
    say "conflict while picking $c; pick these onto $trunk by hand:"
    for p in "${commits[@]}"; do printf '  git cherry-pick -x %s   # %s\n' "$p" "$(git log -1 --format=%s "$p")" >&2; done
    exit 1
  fi
done

if [ "$dry_run" = true ]; then
  say "dry run: branch $branch is ready locally"
  exit 0
fi
git push --quiet "$remote" "HEAD:refs/heads/$branch"
title="Cherry-pick $release hot-fix: $(git log -1 --format=%s "${commits[-1]}")"
body=$(
  # shellcheck disable=SC2016 # Markdown backticks
  printf 'Hot-fix(es) merged into `%s`, carried back to `%s` automatically:\n\n' "$release" "$trunk"
  for c in "${commits[@]}"; do printf -- '- %s %s\n' "$c" "$(git log -1 --format=%s "$c")"; done
)
gh pr create --base "$trunk" --head "$branch" --title "$title" --body "$body"
