#!/usr/bin/env bash
# runtime-base-image.sh — print the name of a runtime base image for the keel image, building it
# from Debian packages when it is not present.
#
# Why: the Dockerfile's runtime stage is FROM gcr.io/distroless/cc-debian12:nonroot, which cannot
# be pulled where no registry is reachable. This builds the same contents from the Debian suite
# the host runs (so a binary built on the host finds the glibc it was linked against): glibc,
# libgcc_s (unwinding), the CA bundle (outbound TLS through rustls), netbase, a `nonroot` user
# 65532:65532 with its home, and a world-writable sticky /tmp. No shell, no package manager.
#
# Contract:
#   stdout: ONLY the image name (one line); progress goes to stderr.
#   KEEL_RUNTIME_BASE_IMAGE overrides the name (default keel-runtime-base:<host suite>).
#   Built once; later calls find it cached (`docker image inspect`).
set -euo pipefail

# shellcheck source=scripts/lib/log.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/log.sh"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib/debian.sh
. "$ROOT/scripts/lib/debian.sh"

command -v docker >/dev/null 2>&1 || die "docker not found on PATH"
read_host_apt_source
IMAGE="${KEEL_RUNTIME_BASE_IMAGE:-keel-runtime-base:$HOST_SUITE}"

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
	printf '%s\n' "$IMAGE"
	exit 0
fi

LOCK="${TMPDIR:-/tmp}/keel-runtime-base.lock"
exec 9>"$LOCK"
flock 9
if docker image inspect "$IMAGE" >/dev/null 2>&1; then
	printf '%s\n' "$IMAGE"
	exit 0
fi

ensure_mmdebstrap
[ "$(id -u)" = "0" ] || die "building $IMAGE needs root (mmdebstrap into a directory)"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/keel-runtime-base.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
START=$SECONDS
R="$TMP/rootfs"

# `extract` unpacks the packages (and their dependencies) without running maintainer scripts;
# what those scripts would produce, the few files below produce instead.
log "extracting libc6, libgcc-s1, ca-certificates, netbase from Debian $HOST_SUITE"
mmdebstrap --variant=extract --include=libc6,libgcc-s1,ca-certificates,netbase \
	"$HOST_SUITE" "$R" "deb $MIRROR $HOST_SUITE main" >"$TMP/mmdebstrap.log" 2>&1 || {
	tail -n 15 "$TMP/mmdebstrap.log" | sed 's/^/  | /' >&2
	die "mmdebstrap failed"
}

# What update-ca-certificates would write: every Mozilla root in one PEM bundle.
mkdir -p "${R:?}/etc/ssl/certs"
cat "${R:?}"/usr/share/ca-certificates/mozilla/*.crt >"${R:?}/etc/ssl/certs/ca-certificates.crt"
[ -s "${R:?}/etc/ssl/certs/ca-certificates.crt" ] || die "no CA certificates were extracted"

# Keep the licences of what stays; drop the dependencies' payload the binary never loads
# (openssl and libssl: keel speaks TLS through rustls; debconf and perl: maintainer scripts),
# charset converters, documentation, the dpkg/apt state of an image that has no dpkg, and the
# files Docker provides at run time (/dev, hostname, resolv.conf).
find "${R:?}/usr/share/doc" -mindepth 1 -maxdepth 1 \
	! -name libc6 ! -name libgcc-s1 ! -name gcc-12-base ! -name gcc-14-base \
	! -name ca-certificates ! -name netbase -exec rm -rf {} +
find "${R:?}/usr/share/doc" -type f ! -name copyright -delete
rm -rf "${R:?}"/usr/bin "${R:?}"/usr/sbin "${R:?}"/sbin "${R:?}"/bin \
	"${R:?}"/usr/lib/ssl "${R:?}"/usr/lib/*-linux-gnu/{engines-3,gconv,ossl-modules,libssl.so*,libcrypto.so*} \
	"${R:?}"/usr/share/{bash-completion,ca-certificates,debconf,lintian,locale,man,perl5,pixmaps} \
	"${R:?}"/etc/{apt,ca-certificates,ca-certificates.conf,debconf.conf,dpkg,fstab,hostname,resolv.conf,ssl/openssl.cnf,ssl/private} \
	"${R:?}"/var "${R:?}"/dev
mkdir -p "${R:?}/dev" "${R:?}/var" "${R:?}/home/nonroot" "${R:?}/tmp"
chmod 1777 "${R:?}/tmp"
chown 65532:65532 "${R:?}/home/nonroot"
chmod 0700 "${R:?}/home/nonroot"
# The users distroless ships, so `USER 65532:65532` (or `nonroot`) means the same on both bases.
cat >"${R:?}/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
cat >"${R:?}/etc/group" <<'EOF'
root:x:0:
nobody:x:65534:
nonroot:x:65532:
EOF
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"${R:?}/etc/nsswitch.conf"

tar -C "$R" --numeric-owner -cf "$TMP/rootfs.tar" .
cat >"$TMP/Dockerfile" <<EOF
FROM scratch
ADD rootfs.tar /
LABEL org.opencontainers.image.title="keel-runtime-base" \\
      org.opencontainers.image.description="glibc, libgcc_s, CA certificates and a nonroot user from Debian $HOST_SUITE packages, in place of distroless cc"
USER 65532:65532
EOF
# Without buildx, newer docker CLIs refuse BuildKit builds; the classic builder is enough here.
docker buildx version >/dev/null 2>&1 || export DOCKER_BUILDKIT=0
docker build -q -t "$IMAGE" "$TMP" >&2 || die "docker build of $IMAGE failed"
log "built $IMAGE in $((SECONDS - START)) s ($(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.1f MB", $1 / 1e6}'))"
printf '%s\n' "$IMAGE"
