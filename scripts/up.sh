#!/usr/bin/env bash
# `make up`: start the stack with docker compose (images are built by make before this runs).
# Decides what compose cannot: the Docker socket's group for the hub, and the demo identity
# provider (profile "demo", published on localhost only) when no real provider is configured.
set -euo pipefail
cd "$(dirname "$0")/.."

# A setting: from the environment, else from .env, else the default.
setting() {
    local name="$1" default="$2" value="${!1:-}"
    if [ -z "$value" ] && [ -f .env ]; then
        value="$(sed -n "s/^[[:space:]]*$name=//p" .env | tail -n 1 | sed -e 's/^["'\'']//' -e 's/["'\'']$//')"
    fi
    printf '%s' "${value:-$default}"
}

export DOCKER_GID EGRESS_HOST_ADDRESSES
DOCKER_GID="$(stat -c %g /var/run/docker.sock)"
# The egress proxy refuses the host's own addresses (its services are not the internet).
EGRESS_HOST_ADDRESSES="$(hostname -I 2>/dev/null || true)"
provider="$(setting AUTH_PROVIDER demo)"
if [ "$provider" = demo ]; then
    export COMPOSE_PROFILES=demo DEMO_IDP_UPSTREAM=oidc:8080
    BIND_ADDRESS="$(setting BIND_ADDRESS 127.0.0.1)"
    SSH_BIND_ADDRESS="$(setting SSH_BIND_ADDRESS 127.0.0.1)"
    export BIND_ADDRESS SSH_BIND_ADDRESS
    echo "up: WARNING: AUTH_PROVIDER=demo: a local DEMO identity provider (users alice, bob; no passwords) is" >&2
    echo "up: WARNING: the login. Not for production: set AUTH_PROVIDER and OAuth settings in .env (see README)." >&2
fi
docker compose up --detach --wait --wait-timeout "${UP_TIMEOUT:-180}" "$@"
port="$(setting HTTPS_PORT 443)"
echo "up: devhub is running at https://$(setting SERVER_NAME localhost)$([ "$port" = 443 ] || echo ":$port")/" >&2
