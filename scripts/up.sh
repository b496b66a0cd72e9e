#!/usr/bin/env bash
# `make up`: start the stack with docker compose (images are built by make before this runs).
# Decides what compose cannot: the Docker socket's group for the hub, and the demo identity
# provider (profile "demo", published on localhost only) when no real provider is configured.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/stack-env.sh

export DOCKER_GID EGRESS_HOST_ADDRESSES
DOCKER_GID="$(stat -c %g /var/run/docker.sock)"
# The egress proxy refuses the host's own addresses (its services are not the internet).
EGRESS_HOST_ADDRESSES="$(hostname -I 2>/dev/null || true)"
provider="$(setting AUTH_PROVIDER demo)"
COMPOSE_PROFILES="$(setting COMPOSE_PROFILES '')"
export COMPOSE_PROFILES
if [ "$provider" = demo ]; then
    COMPOSE_PROFILES="${COMPOSE_PROFILES:+$COMPOSE_PROFILES,}demo"
    export DEMO_IDP_UPSTREAM=oidc:8080
    BIND_ADDRESS="$(setting BIND_ADDRESS 127.0.0.1)"
    SSH_BIND_ADDRESS="$(setting SSH_BIND_ADDRESS 127.0.0.1)"
    export BIND_ADDRESS SSH_BIND_ADDRESS
    echo "up: WARNING: AUTH_PROVIDER=demo: a local DEMO identity provider (users alice, bob; no passwords) is" >&2
    echo "up: WARNING: the login. Not for production: set AUTH_PROVIDER and OAuth settings in .env (see README)." >&2
fi
# Monitoring (Prometheus with devhub's alert rules): `make up MONITORING=1`, or MONITORING=1 in .env.
case "$(setting MONITORING 0)" in
    1) COMPOSE_PROFILES="${COMPOSE_PROFILES:+$COMPOSE_PROFILES,}monitoring" ;;
    0) ;;
    *) echo "up: MONITORING=$(setting MONITORING 0) is invalid: expected 0 or 1" >&2; exit 2 ;;
esac
# pip in users' servers trusts the CAs this host added (or USER_EXTRA_CA; scripts/stack-env.sh).
chosen_ca="$(setting USER_EXTRA_CA '')"
USER_EXTRA_CA="$(user_extra_ca)" || exit 2
export USER_EXTRA_CA
if [ -z "$chosen_ca" ] && [ -n "$USER_EXTRA_CA" ]; then
    echo "up: users' servers trust this host's own CAs ($(grep -c -- '-BEGIN CERTIFICATE-' "$USER_EXTRA_CA") from $HOST_LOCAL_CAS, e.g. a TLS-inspecting proxy's);" \
         "USER_EXTRA_CA=none in .env turns this off" >&2
fi
# Kept in .env so that plain `docker compose ...` sees the same stack (scripts/stack-env.sh).
export DEMO_IDP_UPSTREAM="${DEMO_IDP_UPSTREAM:-}"
export BIND_ADDRESS="${BIND_ADDRESS:-$(setting BIND_ADDRESS 0.0.0.0)}" SSH_BIND_ADDRESS="${SSH_BIND_ADDRESS:-$(setting SSH_BIND_ADDRESS 0.0.0.0)}"
persist_computed DOCKER_GID COMPOSE_PROFILES DEMO_IDP_UPSTREAM BIND_ADDRESS SSH_BIND_ADDRESS EGRESS_HOST_ADDRESSES USER_EXTRA_CA
# Upgrades: the gateway's keys from before it ran as its own user (uid 990, now 991) become its own.
docker compose run --rm --no-deps --user 0 --cap-add CHOWN --entrypoint chown sshgw -R 991:991 /var/lib/devhub-sshgw
docker compose up --detach --wait --wait-timeout "${UP_TIMEOUT:-180}" "$@"
port="$(setting HTTPS_PORT 443)"
echo "up: devhub is running at https://$(setting SERVER_NAME devhub.localhost)$([ "$port" = 443 ] || echo ":$port")/" >&2
case ",$COMPOSE_PROFILES," in
    *,monitoring,*) echo "up: Prometheus is at http://127.0.0.1:$(setting PROMETHEUS_PORT 9090)/ on this host (README \"Monitoring\")" >&2 ;;
esac
