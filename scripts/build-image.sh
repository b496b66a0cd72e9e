#!/usr/bin/env bash
# Build one of the project's images with BuildKit, repository root as context.
#   build-image.sh NAME DOCKERFILE [extra docker build args...]
# Tags devhub/NAME:latest and devhub/NAME:<git short sha>.
# Build inputs for closed networks, all off by default:
#   EXTRA_CA                path of a PEM bundle trusted while building only (never left in the image)
#   PIP_INDEX_URL           a PyPI mirror
#   DEBIAN_MIRROR           a Debian mirror (and DEBIAN_SECURITY_MIRROR)
set -euo pipefail
name="$1"; dockerfile="$2"; shift 2
cd "$(dirname "$0")/.."

sha="$(git rev-parse --short HEAD 2>/dev/null || echo dev)"
args=(--file "$dockerfile" --tag "devhub/$name:latest" --tag "devhub/$name:$sha")
for var in PIP_INDEX_URL DEBIAN_MIRROR DEBIAN_SECURITY_MIRROR BASE_IMAGE; do
    [ -n "${!var:-}" ] && args+=(--build-arg "$var=${!var}")
done
if [ -n "${EXTRA_CA:-}" ]; then
    [ -s "$EXTRA_CA" ] || { echo "build-image: EXTRA_CA=$EXTRA_CA is not a readable file" >&2; exit 2; }
    args+=(--secret "id=extra_ca,src=$EXTRA_CA")
fi

# BuildKit: through buildx where installed (Docker CE), else the engine's built-in BuildKit via
# Debian's 20.10 client (newer clients insist on buildx).
if docker buildx version >/dev/null 2>&1; then
    build=(docker buildx build --load)
elif [ -x /usr/bin/docker ]; then
    build=(env DOCKER_BUILDKIT=1 /usr/bin/docker build)
else
    build=(env DOCKER_BUILDKIT=1 docker build)
fi
echo "build-image: devhub/$name ($sha)" >&2
"${build[@]}" --progress="${BUILD_PROGRESS:-auto}" "${args[@]}" "$@" .
