#!/usr/bin/env bash
# trace-test.sh IMAGE — a request's trace travels app -> collector -> Tempo (CI's e2e-traces job).
#
# Needs the observability stack running (make obs-up, compose project keel-obs) and docker.
# PostgreSQL and IMAGE run on the stack's network and export to the collector by its service
# name, as a pod exports to an in-cluster collector. One request carries a W3C `traceparent`
# with a trace id chosen here; the app continues it (SPEC §8), so Tempo's API
# (GET /api/traces/<id> on 127.0.0.1:3200) must return that trace with keel's SERVER span and
# a database span in it. Everything it starts is removed on exit.
set -euo pipefail

IMAGE="${1:?usage: trace-test.sh IMAGE}"
PG_IMAGE="${TRACE_TEST_PG_IMAGE:-postgres:17-alpine}"
NET="${OBS_NETWORK:-keel-obs_default}"
TEMPO="${TEMPO_URL:-http://127.0.0.1:3200}"
RUN_ID="keel-trace-$$"
PG="$RUN_ID-postgres"
APP="$RUN_ID-app"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/$RUN_ID.XXXXXX")"

step() { printf 'trace-test: %s\n' "$*" >&2; }
fail() {
	printf 'trace-test: FAILED: %s\n' "$*" >&2
	docker logs --tail 20 "$APP" 2>&1 | sed 's/^/  app | /' >&2 || true
	exit 1
}
cleanup() {
	docker rm -f "$APP" "$PG" >/dev/null 2>&1 || true
	rm -rf "$TMP"
}
trap cleanup EXIT

docker network inspect "$NET" >/dev/null 2>&1 || fail "no docker network $NET: start the stack with make obs-up"

PG_PASSWORD="trace-$(openssl rand -hex 12)"
docker run -d --name "$PG" --network "$NET" --network-alias "$PG" \
	-e POSTGRES_USER=keel -e POSTGRES_PASSWORD="$PG_PASSWORD" -e POSTGRES_DB=keel "$PG_IMAGE" >/dev/null
for _ in $(seq 1 120); do
	docker exec "$PG" pg_isready -U keel -d keel >/dev/null 2>&1 && break
	sleep 0.5
done
docker exec "$PG" pg_isready -U keel -d keel >/dev/null 2>&1 || fail "PostgreSQL did not start"

openssl genpkey -algorithm ed25519 -out "$TMP/signing.pem" 2>/dev/null
ENV=(--network "$NET"
	-e "APP__DATABASE__URL=postgres://keel:$PG_PASSWORD@$PG:5432/keel"
	-e "APP__DATABASE__REQUIRE_VERIFIED_TLS=false"
	-e "APP__AUTH__SIGNING_KEY=$(cat "$TMP/signing.pem")"
	-e "APP__WEBHOOKS__ENCRYPTION_KEYS__K1=$(openssl rand -base64 32)"
	-e "APP__TELEMETRY__OTLP_ENDPOINT=http://otel-collector:4318"
	# Export within a second rather than the SDK's default 5 s.
	-e "OTEL_BSP_SCHEDULE_DELAY=500")
docker run --rm "${ENV[@]}" "$IMAGE" migrate >"$TMP/migrate.log" 2>&1 || fail "keel migrate: $(tail -n 3 "$TMP/migrate.log")"
docker run -d --name "$APP" --read-only --cap-drop ALL "${ENV[@]}" -p 127.0.0.1::8080 "$IMAGE" >/dev/null
PORT="$(docker port "$APP" 8080/tcp | head -n 1 | sed 's/.*://')"
BASE="http://127.0.0.1:$PORT"
for _ in $(seq 1 60); do
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/health/ready")" = 200 ] && break
	sleep 0.5
done
[ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/health/ready")" = 200 ] || fail "$BASE/health/ready did not answer 200"

TRACE_ID="$(openssl rand -hex 16)"
PARENT_ID="$(openssl rand -hex 8)"
# A registration writes a row, so the trace has a database span (product reads may come from
# the in-memory catalog).
status="$(curl -s -o /dev/null -w '%{http_code}' -H "traceparent: 00-$TRACE_ID-$PARENT_ID-01" \
	-H 'Content-Type: application/json' \
	--data "{\"email\":\"trace@e2e.example\",\"password\":\"trace-$(openssl rand -hex 8)\",\"display_name\":\"Trace\"}" \
	"$BASE/api/v1/auth/register")"
[ "$status" = 201 ] || fail "POST /api/v1/auth/register answered $status"
step "sent POST /api/v1/auth/register in trace $TRACE_ID; asking Tempo"

# Tempo answers 404 until the collector's batch has reached it.
for _ in $(seq 1 60); do
	code="$(curl -s -H 'Accept: application/json' -o "$TMP/trace.json" -w '%{http_code}' "$TEMPO/api/traces/$TRACE_ID")"
	[ "$code" = 200 ] && break
	sleep 2
done
[ "$code" = 200 ] || fail "Tempo has no trace $TRACE_ID after 120 s (last answer $code)"

python3 - "$TMP/trace.json" "$PARENT_ID" <<'PY' || fail "trace $TRACE_ID is not what keel sends"
import base64, json, re, sys

doc = json.load(open(sys.argv[1]))
parent = sys.argv[2]
spans = []
for rs in doc.get("batches") or doc.get("resourceSpans") or []:
    attrs = {a["key"]: a["value"] for a in rs.get("resource", {}).get("attributes", [])}
    service = attrs.get("service.name", {}).get("stringValue")
    for ss in rs.get("scopeSpans") or rs.get("instrumentationLibrarySpans") or []:
        for s in ss.get("spans", []):
            spans.append((service, s))
if not spans:
    sys.exit("no spans")
server = [s for svc, s in spans if svc == "keel" and s.get("kind") in ("SPAN_KIND_SERVER", 2)]
if not server:
    sys.exit(f"no SERVER span of service keel among {[(svc, s.get('name'), s.get('kind')) for svc, s in spans]}")
# Tempo's OTLP JSON gives ids in base64 (hex in some versions); the SERVER span's parent is
# the id sent in traceparent.
def hexid(v):
    if re.fullmatch(r"[0-9a-fA-F]{16}", v):
        return v.lower()
    try:
        return base64.b64decode(v).hex()
    except Exception:
        return v
if not any(hexid(s.get("parentSpanId", "")) == parent for _, s in spans):
    sys.exit("no span is a child of the incoming traceparent's span: the trace was not continued")
db = [s for _, s in spans if any(a["key"].startswith("db.") for a in s.get("attributes", []))]
if not db:
    sys.exit("no span with db.* attributes")
print(f"trace-test: {len(spans)} spans, SERVER span {server[0].get('name')!r}, {len(db)} database span(s)")
PY
echo "trace-test: passed"
