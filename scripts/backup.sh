#!/usr/bin/env bash
# `make backup`: one archive, BACKUP_DIR/devhub-<UTC timestamp>.tar.gz (default backups/ in the
# checkout), holding every volume of the compose project (hub database, SSH keys, secrets, the
# gateway's host key, certificates), every user home volume (USER_VOLUME_PREFIX) and .env. Works
# while the stack runs: the hub's SQLite files are copied with SQLite's online backup API, homes are
# copied live (README "Backup and restore"). `make restore BACKUP=...` puts it back.
#   BACKUP_DIR        where the archive goes (default: backups/ in the checkout; mode 700 when created)
#   BACKUP_GZIP_LEVEL gzip level 1 (fastest) .. 9 (smallest), default 6
set -euo pipefail
started="$EPOCHREALTIME"
caller_dir="$PWD"
cd "$(dirname "$0")/.."
. scripts/stack-env.sh
die() { echo "backup: $*" >&2; exit 1; }

docker info >/dev/null 2>&1 || die "no Docker engine answers (is dockerd running? \`make up\` starts one)"
project="$(compose_project)"
[ -n "$project" ] || die "could not resolve the compose project's name (docker compose config failed)"
prefix="$(setting USER_VOLUME_PREFIX devhub-home-)"
level="${BACKUP_GZIP_LEVEL:-6}"
[[ "$level" =~ ^[1-9]$ ]] || die "BACKUP_GZIP_LEVEL=$level is invalid: expected 1 to 9"

# What to copy: the volumes compose made for this project (its labels say which), and the homes
# the hub made (no labels of compose; named by the prefix). Each is mounted read-only.
mounts=() members=() manifest=()
while read -r volume short; do
    [ -n "$volume" ] || continue
    mounts+=(-v "$volume:/v/compose/$short:ro")
    manifest+=("compose $short")
done < <(docker volume ls -q --filter "label=com.docker.compose.project=$project" |
    xargs -r docker volume inspect --format '{{.Name}} {{index .Labels "com.docker.compose.volume"}}')
((${#mounts[@]})) && members+=(compose)
homes=0
while read -r volume; do
    [[ "$volume" == "$prefix"?* ]] || continue  # the name filter matches anywhere in the name
    mounts+=(-v "$volume:/v/home/${volume#"$prefix"}:ro")
    manifest+=("home ${volume#"$prefix"}")
    homes=$((homes + 1))
done < <(docker volume ls -q --filter "name=$prefix")
((homes)) && members+=(home)
((${#mounts[@]})) || die "nothing to back up: no volumes of compose project '$project' and none named '$prefix*' (is this the checkout that ran \`make up\`? COMPOSE_PROJECT_NAME, USER_VOLUME_PREFIX)"
[[ " ${manifest[*]} " == *" compose hub-data "* ]] ||
    echo "backup: WARNING: project '$project' has no hub-data volume (hub database); backing up what there is" >&2

# Labels of every volume, replayed by restore (compose's own are set afresh there).
labels() { docker volume inspect --format '{{range $k, $v := .Labels}}{{$k}}={{$v}}{{"\n"}}{{end}}' "$1"; }

# The archive's metadata, first in it so restore reads it without reading the volumes.
umask 077  # the archive and its metadata hold secrets
meta="$(mktemp -d)"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
backup_dir="${BACKUP_DIR:-backups}"
[[ "$backup_dir" == /* ]] || [ -z "${BACKUP_DIR:-}" ] || backup_dir="$caller_dir/$backup_dir"
mkdir -p "$backup_dir"
archive="$(realpath "$backup_dir")/devhub-$stamp.tar.gz"  # its manifest names the project
[ ! -e "$archive" ] || die "$archive already exists (another backup this second?)"
helper="$project-backup-$$"
trap 'rm -rf "$meta" "$archive.partial"; docker rm -f "$helper" >/dev/null 2>&1 || true' EXIT
{
    echo "format devhub-backup 1"
    echo "created $stamp"
    echo "project $project"
    echo "user-volume-prefix $prefix"
    printf '%s\n' "${manifest[@]}"
    for entry in "${manifest[@]}"; do
        read -r kind name <<<"$entry"
        volume="$([ "$kind" = compose ] && echo "${project}_$name" || echo "$prefix$name")"
        labels "$volume" | sed -n "/./s/^/label $kind $name /p"
    done
    [ ! -f .env ] || echo "env"
} >"$meta/manifest"
[ ! -f .env ] || cp .env "$meta/env"
chmod -R go-rwx "$meta"

# In the helper: snapshot every SQLite file of hub-data with the online backup API (consistent while
# the hub writes; its WAL and journal files are left out), then one tar stream to stdout:
# meta/, compose/<volume>/, home/<user>/, the snapshots in place of the live files.
read -r -d '' SNAPSHOT <<'PY' || true
import os, sqlite3, sys


def is_wal(path):  # the file format's read/write version bytes: 2 = WAL
    with open(path, "rb") as f:
        return f.read(20)[18:19] == b"\x02"


root, snap = "/v/compose/hub-data", "/snap/hubsnap"
excludes, members = [], []
for directory, _, files in os.walk(root):
    for name in sorted(files):
        if not name.endswith((".sqlite", ".db")):
            continue
        path = os.path.join(directory, name)
        rel = os.path.relpath(path, root)
        copy = os.path.join(snap, rel)
        os.makedirs(os.path.dirname(copy), exist_ok=True)
        # Read-only: a WAL database is readable while -wal/-shm exist (its writer has it open);
        # without them nothing has it open and the file alone is the database.
        uri = f"file:{path}?mode=ro" if os.path.exists(path + "-wal") or not is_wal(path) else f"file:{path}?immutable=1"
        source, target = sqlite3.connect(uri, uri=True, timeout=60), sqlite3.connect(copy)
        source.backup(target)
        check = target.execute("PRAGMA quick_check").fetchone()[0]
        source.close(); target.close()
        if check != "ok":
            sys.exit(f"backup: the copy of hub-data/{rel} fails SQLite's check: {check}")
        st = os.stat(path)
        os.chmod(copy, st.st_mode & 0o7777); os.chown(copy, st.st_uid, st.st_gid)
        excludes += [f"compose/hub-data/{rel}{suffix}" for suffix in ("", "-wal", "-shm", "-journal")]
        members.append(f"hubsnap/{rel}")
        print(f"backup: hub-data/{rel}: consistent copy ({st.st_size} bytes)", file=sys.stderr)
open("/snap/exclude", "w").write("".join(e + "\n" for e in excludes))
open("/snap/members", "w").write("".join(m + "\n" for m in members))
PY
read -r -d '' HELPER <<'SH' || true
set -eu
if [ -d /v/compose/hub-data ]; then python3 -c "$SNAPSHOT"; else : >/snap/exclude; : >/snap/members; fi
rc=0
tar --create --file - --numeric-owner --use-compress-program "gzip -$LEVEL" \
    -C / meta \
    --anchored --no-wildcards --exclude-from /snap/exclude -C /v $MEMBERS \
    --transform 's,^hubsnap/,compose/hub-data/,rSH' -C /snap --files-from /snap/members || rc=$?
exit $rc
SH

echo "backup: project '$project': ${#manifest[@]} volume(s) ($homes home(s)), .env $([ -f .env ] && echo included || echo absent) -> $archive" >&2
rc=0
volume_helper --name "$helper" --read-only --tmpfs /snap:rw,size=1g \
    --cap-add DAC_READ_SEARCH --cap-add CHOWN --cap-add FOWNER \
    -v "$meta:/meta:ro" "${mounts[@]}" \
    -e SNAPSHOT="$SNAPSHOT" -e LEVEL="$level" -e MEMBERS="${members[*]}" \
    --entrypoint sh "$VOLUME_HELPER_IMAGE" -c "$HELPER" >"$archive.partial" || rc=$?
# tar's 1: a file changed while it was read (a home in use): archived as read, still a usable backup.
case "$rc" in
    0) ;;
    1) echo "backup: WARNING: files changed while being read (homes in use); they are in the archive as tar read them." \
            "For a fully consistent copy, \`make down\` first" >&2 ;;
    *) die "the copy failed (exit $rc); no archive written" ;;
esac
mv "$archive.partial" "$archive"
size="$(stat -c %s "$archive")"
echo "backup: wrote $archive ($(numfmt --to=iec --suffix=B "$size"), $size bytes) in $(seconds_since "$started") s" >&2
