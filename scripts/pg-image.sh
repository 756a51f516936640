#!/usr/bin/env bash
# pg-image.sh — print the name of a usable PostgreSQL Docker image.
#
# Why: the integration tests (testcontainers) and `make run` need a PostgreSQL
# container, but some machines run Docker with no access to any image registry
# (air-gapped; `docker pull` fails). There the image is built locally from
# Debian packages, using only the Debian mirror the host's apt already uses.
#
# Contract:
#   stdout: ONLY the image name (one line); all progress goes to stderr.
#   exit:   0 on success, non-zero with a one-line error otherwise.
#   1. WANT="${APP_TEST_PG_IMAGE:-postgres:17-alpine}": present locally or
#      pullable (docker pull, 60 s timeout) → print it.
#   2. Else the local image "${KEEL_LOCAL_PG_IMAGE:-keel-postgres:17-debian}":
#      present → print it (cached; takes well under 2 s).
#   3. Else build it: mmdebstrap makes a minbase rootfs with postgresql-17 from
#      Debian trixie (falling back to the host's suite, e.g. bookworm with
#      postgresql-15), then `docker build` with docker/postgres/Dockerfile
#      (FROM scratch + ADD rootfs.tar). The mirror is read from the host's apt
#      sources at run time; apt sources are stripped from the image.
# The image behaves like the official postgres image for POSTGRES_USER,
# POSTGRES_PASSWORD, POSTGRES_DB and `-c key=value` arguments; it logs
# "database system is ready to accept connections" once, on stderr.
set -euo pipefail

# shellcheck source=scripts/lib/log.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/log.sh"

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

command -v docker >/dev/null 2>&1 || die "docker not found on PATH"

WANT="${APP_TEST_PG_IMAGE:-postgres:17-alpine}"
LOCAL="${KEEL_LOCAL_PG_IMAGE:-keel-postgres:17-debian}"

if have_image "$WANT"; then
	printf '%s\n' "$WANT"
	exit 0
fi
if timeout 60 docker pull -q "$WANT" >/dev/null 2>&1; then
	log "pulled $WANT"
	printf '%s\n' "$WANT"
	exit 0
fi
if have_image "$LOCAL"; then
	log "$WANT unavailable; using cached local image $LOCAL"
	printf '%s\n' "$LOCAL"
	exit 0
fi

# ---------------------------------------------------------------- build ----
log "$WANT is not present and cannot be pulled; building $LOCAL from Debian packages"
docker info >/dev/null 2>&1 || die "docker daemon not reachable"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib/debian.sh
. "$ROOT/scripts/lib/debian.sh"
RECIPE="$ROOT/docker/postgres"
if [ ! -f "$RECIPE/Dockerfile" ] || [ ! -f "$RECIPE/docker-entrypoint.sh" ]; then
	die "missing $RECIPE/Dockerfile or docker-entrypoint.sh"
fi

# Serialise concurrent builds (e.g. `make run` and tests started together).
LOCK="${TMPDIR:-/tmp}/keel-pg-image.lock"
exec 9>"$LOCK"
if command -v flock >/dev/null 2>&1; then
	flock 9
	if have_image "$LOCAL"; then
		log "$LOCAL was built meanwhile"
		printf '%s\n' "$LOCAL"
		exit 0
	fi
fi

ensure_mmdebstrap

pg_major_for_suite() {
	case "$1" in
	bullseye) echo 13 ;;
	bookworm) echo 15 ;;
	trixie) echo 17 ;;
	*) return 1 ;;
	esac
}

read_host_apt_source

CANDIDATES=("trixie 17")
if [ "$HOST_SUITE" != "trixie" ] && HOST_MAJOR="$(pg_major_for_suite "$HOST_SUITE")"; then
	CANDIDATES+=("$HOST_SUITE $HOST_MAJOR")
fi

TMP="$(mktemp -d "${TMPDIR:-/tmp}/keel-pg-image.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
START=$SECONDS

# Keep docs, man pages and translations out (not /usr/share/postgresql/*/man:
# postgresql-client's postinst registers those as update-alternatives); strip apt sources (and with them
# the mirror host name); drop the default cluster postgresql-common creates.
# LLVM (JIT only, ~150 MB) is deleted too: without llvmjit.so PostgreSQL
# silently runs without JIT, which tests do not need.
# The hooks are single-quoted on purpose: mmdebstrap expands "$1" (the rootfs).
# shellcheck disable=SC2016
MMDEBSTRAP_OPTS=(
	--variant=minbase
	--dpkgopt='path-exclude=/usr/share/doc/*'
	--dpkgopt='path-include=/usr/share/doc/*/copyright'
	--dpkgopt='path-exclude=/usr/share/man/*'
	--dpkgopt='path-exclude=/usr/share/info/*'
	--dpkgopt='path-exclude=/usr/share/locale/*'
	--dpkgopt='path-exclude=/usr/share/lintian/*'
	--customize-hook='rm -f "$1"/etc/apt/sources.list "$1"/etc/apt/sources.list.d/*'
	--customize-hook='rm -rf "$1"/etc/postgresql/* "$1"/var/lib/postgresql/* "$1"/var/log/postgresql/*'
	--customize-hook='mkdir -p "$1"/var/lib/postgresql "$1"/var/run/postgresql'
	--customize-hook='chroot "$1" chown postgres:postgres /var/lib/postgresql /var/run/postgresql'
	--customize-hook='rm -rf "$1"/usr/lib/postgresql/*/lib/llvmjit* "$1"/usr/lib/postgresql/*/lib/bitcode "$1"/usr/lib/*/libLLVM*.so* "$1"/usr/lib/*/libz3.so*'
	--customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/* "$1"/var/log/apt/* "$1"/var/cache/debconf/*-old'
)

BUILT=""
for c in "${CANDIDATES[@]}"; do
	read -r SUITE MAJOR <<<"$c"
	log "building rootfs: Debian $SUITE with postgresql-$MAJOR (mmdebstrap)"
	rm -f "$TMP/rootfs.tar"
	if mmdebstrap "${MMDEBSTRAP_OPTS[@]}" --include="postgresql-$MAJOR,gosu" \
		"$SUITE" "$TMP/rootfs.tar" "deb $MIRROR $SUITE main" >"$TMP/mmdebstrap.log" 2>&1; then
		BUILT="$SUITE $MAJOR"
		log "rootfs ready after $((SECONDS - START)) s ($(du -m "$TMP/rootfs.tar" | cut -f1) MiB)"
		break
	fi
	tail -n 15 "$TMP/mmdebstrap.log" | sed 's/^/  | /' >&2
	log "Debian $SUITE with postgresql-$MAJOR failed (see above)"
done
[ -n "$BUILT" ] || die "mmdebstrap failed for: ${CANDIDATES[*]}"
read -r SUITE MAJOR <<<"$BUILT"

cp "$RECIPE/Dockerfile" "$RECIPE/docker-entrypoint.sh" "$TMP/"
chmod 0755 "$TMP/docker-entrypoint.sh"
# Without buildx, newer docker CLIs refuse BuildKit builds; the classic builder is enough here.
docker buildx version >/dev/null 2>&1 || export DOCKER_BUILDKIT=0
log "docker build -t $LOCAL"
docker build -q --build-arg "PG_MAJOR=$MAJOR" --build-arg "DEBIAN_SUITE=$SUITE" \
	-t "$LOCAL" "$TMP" >&2 || die "docker build of $LOCAL failed"

log "built $LOCAL: PostgreSQL $MAJOR (Debian $SUITE) in $((SECONDS - START)) s"
printf '%s\n' "$LOCAL"
