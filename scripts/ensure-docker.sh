#!/usr/bin/env bash
# Make sure a Docker engine answers. When none does: install Debian's docker.io if dockerd is
# missing and start dockerd in the background (log: /var/log/devhub-dockerd.log). Idempotent.
set -euo pipefail
log() { printf 'ensure-docker: %s\n' "$*" >&2; }

if docker info >/dev/null 2>&1; then
    exit 0
fi
if ! command -v dockerd >/dev/null 2>&1; then
    log "installing docker.io"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq docker.io >/dev/null
fi
if ! docker info >/dev/null 2>&1; then
    log "starting dockerd"
    nohup setsid dockerd >/var/log/devhub-dockerd.log 2>&1 </dev/null &
    deadline=$((SECONDS + 90))
    until docker info >/dev/null 2>&1; do
        if ((SECONDS > deadline)); then
            tail -20 /var/log/devhub-dockerd.log >&2
            log "dockerd did not answer within 90 s"
            exit 1
        fi
        sleep 0.5
    done
fi
log "engine $(docker version --format '{{.Server.Version}}') answers"
