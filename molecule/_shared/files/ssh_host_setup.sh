#!/bin/sh
# Run inside a test host (as root, through `docker exec`) for scenarios that reach their hosts over SSH
# as the inventories describe: the host's own SSH keys, the `deploy` user with the controller's public
# key ($1) and passwordless sudo, the SSH server started. Prints the host's ed25519 public key.
set -eu
ssh-keygen -A >/dev/null
id deploy >/dev/null 2>&1 || useradd --create-home --shell /bin/bash deploy
install -d -m 0700 -o deploy -g deploy /home/deploy/.ssh
printf '%s\n' "$1" >/home/deploy/.ssh/authorized_keys
chown deploy:deploy /home/deploy/.ssh/authorized_keys
chmod 0600 /home/deploy/.ssh/authorized_keys
printf 'deploy ALL=(ALL) NOPASSWD: ALL\n' >/etc/sudoers.d/deploy
chmod 0440 /etc/sudoers.d/deploy
systemctl enable --now ssh.service >/dev/null 2>&1
cat /etc/ssh/ssh_host_ed25519_key.pub
