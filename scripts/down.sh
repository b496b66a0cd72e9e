#!/usr/bin/env bash
# `make down`: stop the stack and the user servers it started. Data stays: hub database, secrets,
# certificates, home volumes and datasets are volumes, and compose's `down` keeps volumes.
# Works with or without .env (and before any `make up`).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/stack-env.sh
export DOCKER_GID
DOCKER_GID="$(stat -c %g /var/run/docker.sock)"
docker compose --profile demo --profile monitoring down
# User servers are the hub's, not compose's (the hub keeps them across its own restarts); a full
# stop removes them too, and their networks. The hub marks them stopped when it next starts.
prefix="$(setting USER_NETWORK_PREFIX devhub-user-)"
mapfile -t servers < <(docker ps -aq --filter label=devhub.role=user-server --filter "name=^${prefix}")
if ((${#servers[@]})); then
    docker rm -f "${servers[@]}" >/dev/null
fi
mapfile -t networks < <(docker network ls -q --filter label=devhub.role=user-network --filter "name=^${prefix}")
if ((${#networks[@]})); then
    docker network rm "${networks[@]}" >/dev/null
fi
echo "down: stopped the stack, ${#servers[@]} user server(s) and ${#networks[@]} user network(s); volumes kept" >&2
