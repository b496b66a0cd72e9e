# Sourced by up.sh, down.sh, backup.sh and restore.sh: reading settings, and the block of values `make up`
# computes (Docker's socket group, the demo profile, ...) that it keeps in .env, where plain
# `docker compose ps|logs|exec|restart` read them, so those work in the checkout with no extra variables.
MANAGED_BEGIN="# >>> computed by make up: rewritten on every make up, do not edit >>>"
MANAGED_END="# <<< computed by make up <<<"

# .env without the computed block (what the operator wrote); empty when there is no .env.
operator_env() {
    if [ -f .env ]; then
        sed "/^$MANAGED_BEGIN\$/,/^$MANAGED_END\$/d" .env
    fi
}

# A setting: from the environment, else from the operator's .env, else the default.
setting() {
    local name="$1" default="$2" value="${!1:-}"
    if [ -z "$value" ]; then
        value="$(operator_env | sed -n "s/^[[:space:]]*$name=//p" | tail -n 1 | sed -e 's/^["'\'']//' -e 's/["'\'']$//')"
    fi
    printf '%s' "${value:-$default}"
}

# Rewrite the computed block of .env with the current values of the named variables.
persist_computed() {
    local tmp name
    tmp="$(mktemp .env.XXXXXX)"
    {
        operator_env
        echo "$MANAGED_BEGIN"
        for name in "$@"; do
            printf '%s=%s\n' "$name" "${!name:-}"
        done
        echo "$MANAGED_END"
    } >"$tmp"
    chmod 600 "$tmp"
    mv -f "$tmp" .env
}

# USER_EXTRA_CA as compose mounts it: the operator's file; "none": no extra CA (an empty file); unset:
# the CAs this host's administrator added to its own trust store (a TLS-inspecting company proxy's,
# in $HOST_LOCAL_CAS, as update-ca-certificates finds them), so that pip in users' servers trusts
# what the host trusts; nothing when the host added none. Prints the path (or nothing). The CAs go
# to .host-cas-<hash of their content>.pem: when they change, so does the path, and compose then
# recreates the hub, which reads the file at its start.
HOST_LOCAL_CAS="${HOST_LOCAL_CAS:-/usr/local/share/ca-certificates}"
MAX_EXTRA_CA_BYTES=100000  # hub/devhub/settings.py MAX_EXTRA_CA_BYTES
user_extra_ca() {
    local chosen file pems name
    chosen="$(setting USER_EXTRA_CA '')"
    case "$chosen" in
        none) printf '/dev/null'; return ;;
        ?*) printf '%s' "$chosen"; return ;;
    esac
    pems="$(mktemp .host-cas.XXXXXX)"
    if [ -d "$HOST_LOCAL_CAS" ]; then
        while IFS= read -r -d '' file; do
            sed -e '$a\' "$file" >>"$pems"  # each file's last line ends with a newline
        done < <(find -L "$HOST_LOCAL_CAS" -name '*.crt' -type f -print0 | LC_ALL=C sort -z)
    fi
    rm -f .host-cas-*.pem
    # The hub passes them in each server's environment, which caps them (hub/devhub/settings.py).
    if [ "$(wc -c <"$pems")" -gt "$MAX_EXTRA_CA_BYTES" ]; then
        echo "up: this host's own CAs in $HOST_LOCAL_CAS are $(wc -c <"$pems") bytes, more than users' servers" \
             "can be given ($MAX_EXTRA_CA_BYTES): set USER_EXTRA_CA in .env to the one CA they need (a PEM file), or none" >&2
        rm -f "$pems"
        return 2
    fi
    if [ -s "$pems" ]; then
        name=".host-cas-$(sha256sum "$pems" | cut -c1-12).pem"
        chmod 644 "$pems"  # certificates, no secret: the hub reads it as its own user
        mv -f "$pems" "$name"
        printf '%s' "$PWD/$name"
    else
        rm -f "$pems"
    fi
}

# The compose project's name as compose itself resolves it (COMPOSE_PROJECT_NAME from the
# environment or .env, else `name:` in docker-compose.yml): its volumes are <project>_<volume>.
compose_project() {
    docker compose config --no-interpolate | sed -n '1s/^name: //p'
}

# A throwaway container over the stack's volumes (backup, restore): an image the stack already has,
# as root with no capabilities but those the caller adds, no network. Args: docker run options.
VOLUME_HELPER_IMAGE=devhub/hub:latest
volume_helper() {
    docker image inspect "$VOLUME_HELPER_IMAGE" >/dev/null 2>&1 || {
        echo "$VOLUME_HELPER_IMAGE is missing: run \`make images\` first" >&2
        return 2
    }
    docker run --rm --network none --user 0 --security-opt no-new-privileges --cap-drop ALL \
        --log-driver none "$@"
}

# Seconds since $1 (an $EPOCHREALTIME), one decimal: scripts report how long they took.
seconds_since() {
    awk -v start="$1" -v now="$EPOCHREALTIME" 'BEGIN { printf "%.1f", now - start }'
}
