#!/usr/bin/env bash
# Rolls a Conduit version out to one environment with the operators' own playbook, playbooks/deploy.yml.
# CI's preview and deploy jobs run exactly this; it runs unchanged from a workstation.
#
#   scripts/ci-deploy.sh ENV VERSION [--check] [--wheel FILE] [-- ANSIBLE-PLAYBOOK-ARGS...]
#
#   ENV       inventory under inventories/ (development, testing, production, demo)
#   VERSION   Conduit version, as scripts/ci-version.sh gave it to the wheel
#   --check   preview: ansible-playbook --check --diff; nothing changes on the hosts
#   --wheel   the wheel CI built for VERSION; default artifacts/conduit-VERSION-py3-none-any.whl when
#             present. Its version must be VERSION. The conduit role deploys it as it is
#             (conduit_app_wheel); without one the role builds VERSION from app/ of this checkout.
#
# Knobs (environment):
#   LOOKOUT_INVENTORY        inventories to use instead of inventories/ENV, separated by spaces (e.g.
#                            "inventories/demo extra-hosts.yml" for other local test hosts)
#   LOOKOUT_VAULT_PASSWORD   password of ENV's vault.yml, handed to ansible as --vault-id ENV@<file>;
#                            unset, ansible's own vault settings apply (ANSIBLE_VAULT_PASSWORD_FILE, ...)
#   LOOKOUT_SSH_PRIVATE_KEY  deploy key, held by an ssh-agent that lives for this run only
#   LOOKOUT_SSH_KNOWN_HOSTS  known_hosts lines of ENV's hosts; when set, host keys are checked strictly
# Secrets never appear on a command line; the one file written (the vault password) is 0600 in a
# private temporary directory that is removed on exit.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
say() { printf '[ci-deploy] %s\n' "$*" >&2; }
die() { printf '[ci-deploy] ERROR: %s\n' "$*" >&2; exit 2; }
usage() { sed -n '4,12s/^# \{0,1\}//p' "$0" >&2; exit 2; }

[ $# -ge 2 ] || usage
environment=$1 version=$2
shift 2
check=false wheel=""
while [ $# -gt 0 ]; do
  case $1 in
    --check) check=true ;;
    --wheel) [ $# -ge 2 ] || usage; wheel=$2; shift ;;
    --) shift; break ;;
    *) usage ;;
  esac
  shift
done

cd "$here"
[[ $environment =~ ^[a-z0-9][a-z0-9_-]*$ ]] || die "'$environment' is no environment name"
[[ $version =~ ^[0-9][0-9A-Za-z.+!_-]*$ ]] || die "'$version' is no version"
read -r -a inventories <<<"${LOOKOUT_INVENTORY:-inventories/$environment}"
[ ${#inventories[@]} -gt 0 ] || die "LOOKOUT_INVENTORY names no inventory"
for inventory in "${inventories[@]}"; do [ -e "$inventory" ] || die "no inventory $inventory"; done
[ -f playbooks/deploy.yml ] || die "playbooks/deploy.yml is missing"

if [ -z "$wheel" ] && [ -f "artifacts/conduit-$version-py3-none-any.whl" ]; then
  wheel=artifacts/conduit-$version-py3-none-any.whl
fi
if [ -n "$wheel" ]; then
  [ -f "$wheel" ] || die "no wheel $wheel"
  wheel_version=$(basename "$wheel" | cut -d- -f2)
  [ "$wheel_version" = "$version" ] || die "$wheel holds version $wheel_version, not $version"
  wheel=$(realpath "$wheel")
fi

secrets=$(mktemp -d)
agent_pid=""
# shellcheck disable=SC2317 # called by the trap
cleanup() {
  rm -rf "$secrets"
  if [ -n "$agent_pid" ]; then kill "$agent_pid" 2>/dev/null || true; fi
}
trap cleanup EXIT

args=()
for inventory in "${inventories[@]}"; do args+=(-i "$inventory"); done
args+=(playbooks/deploy.yml -e "conduit_version=$version")
if [ -n "$wheel" ]; then args+=(-e "conduit_app_wheel=$wheel"); fi
if [ -n "${LOOKOUT_VAULT_PASSWORD:-}" ]; then
  (umask 077 && printf '%s\n' "$LOOKOUT_VAULT_PASSWORD" >"$secrets/vault-password")
  args+=(--vault-id "$environment@$secrets/vault-password")
fi
if [ -n "${LOOKOUT_SSH_PRIVATE_KEY:-}" ]; then
  eval "$(ssh-agent -s -a "$secrets/agent.sock")" >/dev/null
  agent_pid=$SSH_AGENT_PID
  ssh-add -q - <<<"$LOOKOUT_SSH_PRIVATE_KEY" || die "ssh-add refused LOOKOUT_SSH_PRIVATE_KEY"
fi
if [ -n "${LOOKOUT_SSH_KNOWN_HOSTS:-}" ]; then
  printf '%s\n' "$LOOKOUT_SSH_KNOWN_HOSTS" >"$secrets/known_hosts"
  export ANSIBLE_HOST_KEY_CHECKING=True
  export ANSIBLE_SSH_COMMON_ARGS="-o UserKnownHostsFile=$secrets/known_hosts -o StrictHostKeyChecking=yes"
fi
if [ "$check" = true ]; then args+=(--check --diff); fi
export ANSIBLE_CONFIG=$here/ansible.cfg

mode=$([ "$check" = true ] && echo "preview (--check --diff)" || echo "deploy")
say "$mode of conduit $version to $environment (inventory ${inventories[*]}${wheel:+, wheel $wheel})"
set +e
ansible-playbook "${args[@]}" "$@" 2>&1 | tee "$secrets/log"
rc=${PIPESTATUS[0]}
set -e

# For the run's page: what changed (or would change) and the recap, so an approver reads the preview
# without scrolling the log.
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  # Plain text whatever the run printed: colour escapes (ANSIBLE_FORCE_COLOR) and carriage returns out.
  sed -e $'s/\e\\[[0-9;]*[A-Za-z]//g' -e $'s/\r$//' "$secrets/log" >"$secrets/plain"
  {
    # shellcheck disable=SC2016 # Markdown backticks
    printf '### %s of conduit `%s` to `%s`: %s\n\n' "$mode" "$version" "$environment" \
      "$([ "$rc" -eq 0 ] && echo ok || echo "failed ($rc)")"
    printf 'Tasks that %s:\n\n' "$([ "$check" = true ] && echo "would change something" || echo "changed something")"
    awk '/^TASK \[/ { task = $0; sub(/^TASK \[/, "", task); sub(/\].*$/, "", task) }
         /^changed: / && !(task in seen) { seen[task] = 1; n++; print "- " task }
         END { if (n == 0) print "- none" }' "$secrets/plain"
    printf '\n```\n'
    sed -n '/^PLAY RECAP/,$p' "$secrets/plain"
    printf '```\n'
  } >>"$GITHUB_STEP_SUMMARY"
fi
exit "$rc"
