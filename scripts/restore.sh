#!/usr/bin/env bash
# `make restore BACKUP=backups/devhub-<stamp>.tar.gz`: put a `make backup` archive back, then
# `make up` starts the stack with everything as it was (same hub database, SSH keys, secrets,
# gateway host key, certificates, homes).
#   BACKUP   the archive (or the first argument)
#   FORCE=1  replace volumes that already exist (without it, restore refuses to touch them)
# Refuses while any container of the stack (or a user server) exists: `make down` first. Volumes
# get the current checkout's names (compose project, USER_VOLUME_PREFIX) and compose's labels; .env
# comes back only when the checkout has none.
set -euo pipefail
started="$EPOCHREALTIME"
archive="${1:-${BACKUP:-}}"
env_restored=0
die() {
    echo "restore: $*" >&2
    # A refused or failed restore leaves the checkout as it found it.
    if ((env_restored)); then rm -f .env && echo "restore: removed the .env it had restored" >&2; fi
    exit 1
}
[ -n "$archive" ] || die "which archive? \`make restore BACKUP=backups/devhub-<stamp>.tar.gz\`"
[ -f "$archive" ] && [ -r "$archive" ] || die "$archive: no such readable file"
archive="$(realpath "$archive")"  # before the cd below, and the helper mounts it by absolute path
cd "$(dirname "$0")/.."
. scripts/stack-env.sh

docker info >/dev/null 2>&1 || die "no Docker engine answers (is dockerd running? \`make up\` starts one)"
manifest="$(tar -xzf "$archive" -O --occurrence=1 meta/manifest 2>/dev/null)" ||
    die "$archive is not a \`make backup\` archive (no meta/manifest in it)"
[ "$(head -n 1 <<<"$manifest")" = "format devhub-backup 1" ] ||
    die "$archive: unknown format '$(head -n 1 <<<"$manifest")'"

# .env first: it may name the project and the prefixes the volumes are restored under.
if grep -qx env <<<"$manifest"; then
    if [ -e .env ]; then
        echo "restore: kept this checkout's .env (the archive's: tar -xzf $archive -O meta/env)" >&2
    else
        (umask 077 && tar -xzf "$archive" -O --occurrence=1 meta/env >.env)
        env_restored=1
        echo "restore: restored .env" >&2
    fi
fi
project="$(compose_project)"
[ -n "$project" ] || die "could not resolve the compose project's name (docker compose config failed)"
prefix="$(setting USER_VOLUME_PREFIX devhub-home-)"
network_prefix="$(setting USER_NETWORK_PREFIX devhub-user-)"

# Volumes in use cannot be replaced, and a running hub would write over what comes back.
mapfile -t present < <(
    docker ps -a --filter "label=com.docker.compose.project=$project" --format '{{.Names}} ({{.State}})'
    docker ps -a --filter label=devhub.role=user-server --filter "name=^$network_prefix" --format '{{.Names}} ({{.State}})')
((${#present[@]} == 0)) ||
    die "refusing to restore while the stack of compose project '$project' has containers (${present[*]}): run \`make down\` first"

# name in the archive -> volume here
declare -A target=() volume_labels=()
while read -r kind name rest; do
    case "$kind" in
        compose) target["compose/$name"]="${project}_$name" ;;
        home) target["home/$name"]="$prefix$name" ;;
        label) read -r volume label <<<"$rest" && volume_labels["$name/$volume"]+="$label"$'\n' ;;
    esac
done <<<"$manifest"
((${#target[@]})) || die "$archive holds no volumes"
from_project="$(sed -n 's/^project //p' <<<"$manifest")"
[ "$from_project" = "$project" ] ||
    echo "restore: the archive is of compose project '$from_project'; restoring into '$project'" >&2

existing=()
for key in "${!target[@]}"; do
    if docker volume inspect "${target[$key]}" >/dev/null 2>&1; then existing+=("${target[$key]}"); fi
done
if ((${#existing[@]})); then
    [ "${FORCE:-0}" = 1 ] ||
        die "refusing to overwrite existing volumes (${existing[*]}): FORCE=1 replaces them with the archive's (their data is lost)"
    echo "restore: FORCE=1: removing ${existing[*]}" >&2
    docker volume rm "${existing[@]}" >/dev/null
fi

# Compose adopts a volume silently only when it carries its project/volume labels (else it warns
# "already exists but was not created by Docker Compose"); the config-hash label it compares is left
# out, so it is not compared. Homes get back the labels they had (the hub gives them none today).
compose_version="$(docker compose version --short)"
mounts=() members=()
for key in "${!target[@]}"; do
    kind="${key%%/*}" name="${key#*/}" volume="${target[$key]}"
    args=()
    while IFS= read -r label; do
        [[ -z "$label" || "$label" == com.docker.compose.* ]] || args+=(--label "$label")
    done <<<"${volume_labels[$key]:-}"
    if [ "$kind" = compose ]; then
        args+=(--label "com.docker.compose.project=$project" --label "com.docker.compose.volume=$name"
            --label "com.docker.compose.version=$compose_version")
    fi
    docker volume create "${args[@]}" "$volume" >/dev/null
    mounts+=(-v "$volume:/r/$key")
    [[ " ${members[*]} " == *" $kind "* ]] || members+=("$kind")
done

# Contents with their owners (numeric: the uids of the hub, the gateway, the users) and modes.
echo "restore: ${#target[@]} volume(s) of project '$project' from $archive" >&2
helper="$project-restore-$$"
trap 'docker rm -f "$helper" >/dev/null 2>&1 || true' EXIT
volume_helper --name "$helper" --cap-add CHOWN --cap-add DAC_OVERRIDE --cap-add FOWNER --cap-add FSETID \
    -v "$archive:/backup.tar.gz:ro" "${mounts[@]}" --entrypoint tar "$VOLUME_HELPER_IMAGE" \
    --extract --gzip --file /backup.tar.gz --numeric-owner --same-owner --same-permissions -C /r "${members[@]}" ||
    die "extracting $archive failed: the volumes are partly restored; fix the cause and run again with FORCE=1"
echo "restore: restored $(printf '%s\n' "${target[@]}" | sort | paste -sd ' ') in $(seconds_since "$started") s; \`make up\` starts the stack" >&2
