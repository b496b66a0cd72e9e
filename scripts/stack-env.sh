# Sourced by up.sh, down.sh and status.sh: reading settings, and the block of values `make up`
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
