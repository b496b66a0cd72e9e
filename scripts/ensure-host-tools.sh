#!/usr/bin/env bash
# Install the Debian packages the tests drive from the host when their commands are missing:
# OpenSSH client (ssh, scp, sftp, ssh-keygen), rsync, tmux, debootstrap, chromium (browser tests), and
# libnss-myhostname so that programs resolve users' origins (alice.devhub.localhost) to loopback.
set -euo pipefail
declare -A package_of=([ssh]=openssh-client [scp]=openssh-client [sftp]=openssh-client
    [ssh-keygen]=openssh-client [rsync]=rsync [tmux]=tmux [debootstrap]=debootstrap
    [chromium]=chromium)
missing=()
for cmd in "${!package_of[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("${package_of[$cmd]}")
done
getent hosts alice.devhub.localhost >/dev/null 2>&1 || missing+=(libnss-myhostname)
python3 -m venv --help >/dev/null 2>&1 && python3 -c "import ensurepip" 2>/dev/null || missing+=(python3-venv)
if ((${#missing[@]})); then
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    echo "ensure-host-tools: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
