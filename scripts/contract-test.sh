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
# shellcheck source=scripts/lib/serve.sh
source scripts/lib/serve.sh
serve_keel "$keel"

# Signed in as an admin, so every operation is exercised past its 401/403.
account_email="contract-admin@example.com"
account_password="contract test passphrase"
create_admin "$keel" "$account_email" "$account_password"
token="$(python3 - "$base" "$account_email" "$account_password" <<'PY'
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
"$schemathesis" --config-file scripts/contract-test.toml run "${base}/openapi.json" \
  --header "Authorization: Bearer ${token}" \
  --checks all \
  --phases examples,coverage,fuzzing,stateful \
  --max-examples 50 \
  --seed 1 \
  --no-color || status=$?
if [[ $status -ne 0 ]]; then
  log "schemathesis failed; the server's last log lines:"
  tail -n 30 "$server_log" >&2
fi
exit "$status"
