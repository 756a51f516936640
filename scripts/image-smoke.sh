#!/usr/bin/env bash
# image-smoke.sh IMAGE PG_IMAGE — run the production image the way a cluster would, and use it.
#
# PostgreSQL and keel run as containers on a private Docker network; `migrate` and
# `users create-admin` run as one-off containers; the server runs with a read-only root
# filesystem, every capability dropped and no-new-privileges. Over the published port: ready,
# register, log in, create a product as admin, place an order. Then: the Docker HEALTHCHECK
# (keel healthcheck) reports healthy, the process is not uid 0, logs are JSON (the production
# defaults compiled into the binary), the image is under its size budget, and `docker stop`
# ends it with exit code 0. Everything it starts is removed on exit, pass or fail.
set -euo pipefail

IMAGE="${1:?usage: image-smoke.sh IMAGE PG_IMAGE}"
PG_IMAGE="${2:?usage: image-smoke.sh IMAGE PG_IMAGE}"
# The goal of the issue that introduced the image; the offline route lands near 20 MB.
MAX_IMAGE_BYTES="${MAX_IMAGE_BYTES:-40000000}"

RUN_ID="keel-smoke-$$"
NET="$RUN_ID"
PG="$RUN_ID-postgres"
APP="$RUN_ID-app"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/$RUN_ID.XXXXXX")"

step() { printf 'image-smoke: %s\n' "$*" >&2; }
fail() {
	printf 'image-smoke: FAILED: %s\n' "$*" >&2
	if docker container inspect "$APP" >/dev/null 2>&1; then
		docker logs --tail 20 "$APP" 2>&1 | sed 's/^/  app | /' >&2
	fi
	exit 1
}
cleanup() {
	docker rm -f "$APP" "$PG" >/dev/null 2>&1 || true
	docker network rm "$NET" >/dev/null 2>&1 || true
	rm -rf "$TMP"
}
trap cleanup EXIT

# `field KEY < json` prints one top-level field of a JSON document.
field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

size="$(docker image inspect -f '{{.Size}}' "$IMAGE")" || fail "no image $IMAGE (make image builds it)"
step "$IMAGE is $(awk -v s="$size" 'BEGIN {printf "%.1f MB", s / 1e6}')"
((size <= MAX_IMAGE_BYTES)) || fail "$IMAGE is $size bytes, over the budget of $MAX_IMAGE_BYTES"
[ "$(docker image inspect -f '{{.Config.User}}' "$IMAGE")" = "65532:65532" ] || fail "image user is not 65532:65532"

docker network create "$NET" >/dev/null
PG_PASSWORD="smoke-$RANDOM-$RANDOM"
docker run -d --name "$PG" --network "$NET" --network-alias postgres \
	-e POSTGRES_USER=keel -e POSTGRES_PASSWORD="$PG_PASSWORD" -e POSTGRES_DB=keel \
	"$PG_IMAGE" >/dev/null
step "waiting for PostgreSQL"
for _ in $(seq 1 120); do
	docker logs "$PG" 2>&1 | grep -q 'database system is ready to accept connections' && break
	sleep 0.5
done
docker logs "$PG" 2>&1 | grep -q 'database system is ready to accept connections' || fail "PostgreSQL did not start"

openssl genpkey -algorithm ed25519 -out "$TMP/signing.pem" 2>/dev/null
# As in a cluster: the service connects as its own role (created by migrate), only the one-off
# migration container gets the owner's URL. The smoke database has no TLS, so certificate
# verification, required in production, is turned off by name.
APP_PASSWORD="app-$RANDOM-$RANDOM"
HARDENED=(--read-only --cap-drop ALL --security-opt no-new-privileges --network "$NET"
	-e "APP__DATABASE__URL=postgres://keel_app:$APP_PASSWORD@postgres:5432/keel"
	-e "APP__DATABASE__REQUIRE_VERIFIED_TLS=false"
	-e "APP__AUTH__SIGNING_KEY=$(cat "$TMP/signing.pem")"
	-e "APP__WEBHOOKS__ENCRYPTION_KEYS__K1=$(openssl rand -base64 32)")

step "migrate (one-off container, as the schema owner)"
docker run --rm "${HARDENED[@]}" -e "APP__DATABASE__MIGRATION_URL=postgres://keel:$PG_PASSWORD@postgres:5432/keel" \
	"$IMAGE" migrate >"$TMP/migrate.log" 2>&1 ||
	fail "keel migrate: $(tail -n 3 "$TMP/migrate.log")"
grep -q 'service role granted row access' "$TMP/migrate.log" || fail "keel migrate did not grant the service role"

ADMIN_EMAIL="admin@smoke.example"
ADMIN_PASSWORD="smoke-admin-$RANDOM-$RANDOM-pass"
step "users create-admin (one-off container, password on stdin)"
printf '%s\n' "$ADMIN_PASSWORD" |
	docker run --rm -i "${HARDENED[@]}" "$IMAGE" users create-admin --email "$ADMIN_EMAIL" \
		>"$TMP/admin.log" 2>&1 || fail "keel users create-admin: $(tail -n 3 "$TMP/admin.log")"

step "serve (read-only root, no capabilities, no-new-privileges)"
docker run -d --name "$APP" "${HARDENED[@]}" -p 127.0.0.1::8080 \
	--health-interval 1s --health-start-period 0s "$IMAGE" >/dev/null
PORT="$(docker port "$APP" 8080/tcp | head -n 1 | sed 's/.*://')"
BASE="http://127.0.0.1:$PORT"

ready=""
for _ in $(seq 1 60); do
	if [ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/health/ready")" = 200 ]; then
		ready=yes
		break
	fi
	sleep 0.5
done
[ -n "$ready" ] || fail "/health/ready did not answer 200"
step "ready on $BASE"

# shellcheck source=scripts/lib/http.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/http.sh"

MEMBER_PASSWORD="smoke-member-$RANDOM-$RANDOM-pass"
call POST /api/v1/auth/register 201 "" \
	"{\"email\":\"member@smoke.example\",\"password\":\"$MEMBER_PASSWORD\",\"display_name\":\"Smoke\"}" >/dev/null
MEMBER_TOKEN="$(call POST /api/v1/auth/login 200 "" \
	"{\"email\":\"member@smoke.example\",\"password\":\"$MEMBER_PASSWORD\"}" | field access_token)"
ADMIN_TOKEN="$(call POST /api/v1/auth/login 200 "" \
	"{\"email\":\"$ADMIN_EMAIL\",\"password\":\"$ADMIN_PASSWORD\"}" | field access_token)"
step "registered and logged in a member and the admin"

# example-domain:begin (make remove-example deletes this block with the catalog and orders)
PRODUCT_ID="$(call POST /api/v1/products 201 "$ADMIN_TOKEN" \
	'{"sku":"SMOKE-1","name":"Smoke test bolt","description":"","price_cents":250,"currency":"EUR","stock":3}' | field id)"
ORDER="$(call POST /api/v1/orders 201 "$MEMBER_TOKEN" \
	"{\"items\":[{\"product_id\":\"$PRODUCT_ID\",\"quantity\":2}]}")"
[ "$(field status <<<"$ORDER")" = placed ] || fail "the order is not placed: $ORDER"
[ "$(call GET "/api/v1/products/$PRODUCT_ID" 200 | field stock)" = 1 ] || fail "stock was not reserved"
step "created a product as admin and placed an order"
# example-domain:end
[ "$(call GET /api/v1/users/me 200 "$ADMIN_TOKEN" | field role)" = admin ] || fail "the admin is not an admin"

for _ in $(seq 1 30); do
	[ "$(docker inspect -f '{{.State.Health.Status}}' "$APP")" = healthy ] && break
	sleep 0.5
done
[ "$(docker inspect -f '{{.State.Health.Status}}' "$APP")" = healthy ] ||
	fail "HEALTHCHECK (keel healthcheck) is $(docker inspect -f '{{.State.Health.Status}}' "$APP")"
step "HEALTHCHECK reports healthy"

PID="$(docker inspect -f '{{.State.Pid}}' "$APP")"
UID_OF_PID="$(awk '/^Uid:/ {print $2}' "/proc/$PID/status")"
[ "$UID_OF_PID" != 0 ] || fail "the server runs as uid 0"
step "the server runs as uid $UID_OF_PID"

docker logs "$APP" 2>/dev/null | tail -n 1 | python3 -c 'import json, sys; json.loads(sys.stdin.read())' ||
	fail "the log is not JSON lines (production defaults missing?)"

docker stop -t 30 "$APP" >/dev/null
CODE="$(docker inspect -f '{{.State.ExitCode}}' "$APP")"
[ "$CODE" = 0 ] || fail "docker stop: exit code $CODE"
step "docker stop: drained and exited 0"
echo "image-smoke: $IMAGE passed"
