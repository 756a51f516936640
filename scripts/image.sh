#!/usr/bin/env bash
# image.sh — build the production image (the root Dockerfile) and tag it $IMAGE (default keel:local).
#
# Two routes to the same runtime stage:
#   source  `docker build` of the default target: the binary compiled inside the build with
#           cargo-chef caching, on gcr.io/distroless/cc-debian12:nonroot. Needs BuildKit and a
#           registry to pull the Rust and distroless images from.
#   host    the binary built here (cargo build --release, SQLX_OFFLINE), copied by the
#           Dockerfile's `prebuilt` target onto a base built from Debian packages
#           (scripts/runtime-base-image.sh). Needs no registry.
# KEEL_IMAGE_ROUTE=source|host picks one; by default `source` is taken when buildx is available
# and both base images can be pulled, else `host`.
set -euo pipefail

# shellcheck source=scripts/lib/log.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/log.sh"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
IMAGE="${IMAGE:-keel:local}"
ROUTE="${KEEL_IMAGE_ROUTE:-}"
command -v docker >/dev/null 2>&1 || die "docker not found on PATH"

dockerfile_arg() { sed -n "s/^ARG $1=//p" Dockerfile | head -n 1; }

can_pull() { docker image inspect "$1" >/dev/null 2>&1 || timeout 60 docker pull -q "$1" >/dev/null 2>&1; }

if [ -z "$ROUTE" ]; then
	ROUTE=host
	if docker buildx version >/dev/null 2>&1 &&
		can_pull "$(dockerfile_arg RUNTIME_BASE)" && can_pull "$(dockerfile_arg RUST_IMAGE)"; then
		ROUTE=source
	fi
fi

VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)"
REVISION="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
# The commit's time rather than the clock's, so rebuilding a commit labels it the same.
CREATED="$(date -u -d "@${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}" +%Y-%m-%dT%H:%M:%SZ)"
# org.opencontainers.image.source must be a URL: only an https remote qualifies.
SOURCE="$(git remote get-url origin 2>/dev/null || true)"
case "$SOURCE" in
https://*) SOURCE="${SOURCE%.git}" ;;
*) SOURCE="" ;;
esac
LABEL_ARGS=(--build-arg "VERSION=$VERSION" --build-arg "REVISION=$REVISION"
	--build-arg "CREATED=$CREATED" --build-arg "SOURCE=$SOURCE")

START=$SECONDS
case "$ROUTE" in
source)
	log "building $IMAGE from source (Dockerfile, default target)"
	docker build "${LABEL_ARGS[@]}" -t "$IMAGE" .
	;;
host)
	BASE="$(scripts/runtime-base-image.sh)"
	log "building the release binary on the host"
	SQLX_OFFLINE=true cargo build --release --locked --package keel --bin keel
	BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/keel"
	[ -x "$BIN" ] || die "cargo built no $BIN"
	CONTEXT="$(mktemp -d "${TMPDIR:-/tmp}/keel-image.XXXXXX")"
	trap 'rm -rf "$CONTEXT"' EXIT
	cp "$BIN" "$CONTEXT/keel"
	chmod 0755 "$CONTEXT/keel"
	docker buildx version >/dev/null 2>&1 || export DOCKER_BUILDKIT=0
	log "building $IMAGE: Dockerfile target prebuilt on $BASE"
	docker build -q -f Dockerfile --target prebuilt --build-arg "RUNTIME_BASE=$BASE" \
		"${LABEL_ARGS[@]}" -t "$IMAGE" "$CONTEXT" >/dev/null
	;;
*) die "KEEL_IMAGE_ROUTE must be source or host, not ${ROUTE@Q}" ;;
esac

SIZE="$(docker image inspect -f '{{.Size}}' "$IMAGE")"
log "built $IMAGE ($ROUTE route) in $((SECONDS - START)) s: $(awk -v s="$SIZE" 'BEGIN {printf "%.1f MB", s / 1e6}')"
