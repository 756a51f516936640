#!/usr/bin/env bash
# Contract fuzzing: schemathesis drives a live `keel serve` from its own OpenAPI document and
# fails on any response the document does not allow (status, content type, schema), any 5xx,
# and any schema-valid request refused (the exceptions are in scripts/contract-test.toml).
#
# Usage: scripts/contract-test.sh KEEL_BINARY SCHEMATHESIS_BINARY   (needs DATABASE_URL)
set -euo pipefail
cd "$(dirname "$0")/.."
keel="$1"
schemathesis="$2"
: "${DATABASE_URL:?contract-test needs DATABASE_URL (run it through scripts/with-postgres.sh)}"

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
log="$(mktemp)"
APP_ENV=test APP__SERVER__PORT="$port" APP__DATABASE__URL="$DATABASE_URL" \
  APP__TELEMETRY__LOG_FILTER=info "$keel" serve >"$log" 2>&1 &
server=$!
# shellcheck disable=SC2317  # called by the EXIT trap
stop_server() {
  kill -TERM "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  rm -f "$log"
}
trap stop_server EXIT

for _ in $(seq 1 100); do
  if APP__SERVER__PORT="$port" "$keel" healthcheck --timeout 1s 2>/dev/null; then
    ready=1
    break
  fi
  sleep 0.1
done
if [[ -z "${ready:-}" ]]; then
  echo "contract-test: keel serve never became ready; its log:" >&2
  tail -n 30 "$log" >&2
  exit 1
fi

# Signed in as an admin, so every operation is exercised past its 401/403.
account_email="contract-admin@example.com"
account_password="contract test passphrase"
printf '%s\n' "$account_password" | APP_ENV=test APP__DATABASE__URL="$DATABASE_URL" \
  "$keel" users create-admin --email "$account_email"
token="$(python3 - "http://127.0.0.1:${port}" "$account_email" "$account_password" <<'PY'
import json, sys, urllib.request
base, email, password = sys.argv[1:4]
request = urllib.request.Request(
    base + "/api/v1/auth/login",
    json.dumps({"email": email, "password": password}).encode(),
    {"Content-Type": "application/json"},
)
with urllib.request.urlopen(request) as response:
    print(json.load(response)["access_token"])
PY
)"

status=0
"$schemathesis" --config-file scripts/contract-test.toml run "http://127.0.0.1:${port}/openapi.json" \
  --header "Authorization: Bearer ${token}" \
  --checks all \
  --phases examples,coverage,fuzzing,stateful \
  --max-examples 50 \
  --seed 1 \
  --no-color || status=$?
if [[ $status -ne 0 ]]; then
  echo "contract-test: schemathesis failed; the server's last log lines:" >&2
  tail -n 30 "$log" >&2
fi
exit "$status"
