#!/usr/bin/env bash
# Make the Debian base images the Dockerfiles name available, without a registry if need be.
#
# For each tag: use it if the engine already has it, else try `docker pull`, else build it with
# `debootstrap --variant=minbase` from a Debian mirror and `docker import` it under the same tag.
# Idempotent: a tag that is present is left alone.
#
#   DEBIAN_MIRROR   mirror for debootstrap (default http://deb.debian.org/debian)
#   SEED_SUITES     suites to seed (default "bullseye bookworm")
set -euo pipefail

mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
suites="${SEED_SUITES:-bullseye bookworm}"

log() { printf 'seed-base-images: %s\n' "$*" >&2; }

seed_suite() {
    local suite="$1" tag="debian:$1-slim"
    if docker image inspect "$tag" >/dev/null 2>&1; then
        log "$tag present"
        return
    fi
    # A pull that cannot reach a registry fails fast or hangs on DNS; bound it.
    if timeout 60 docker pull -q "$tag" >/dev/null 2>&1; then
        log "$tag pulled"
        return
    fi
    command -v debootstrap >/dev/null || {
        log "installing debootstrap"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
    }
    local root
    root="$(mktemp -d /var/tmp/seed-"$suite".XXXXXX)"
    trap 'rm -rf "$root"' RETURN
    log "building $tag with debootstrap from $mirror"
    debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$root.log" 2>&1 || {
        tail -20 "$root.log" >&2
        log "debootstrap $suite failed"
        return 1
    }
    rm -f "$root.log"
    # Slim it the way the official -slim images are: no apt lists or caches, no docs.
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
        "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/*
    tar -C "$root" --numeric-owner -c . |
        docker import --change 'CMD ["bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$tag" >/dev/null
    log "$tag imported"
}

for suite in $suites; do
    seed_suite "$suite"
done
