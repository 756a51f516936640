#!/usr/bin/env bash
# deploy-smoke.sh URL — after a deploy, the service as its clients reach it (deploy.yml).
# Read-only, so it is safe against production: live and ready, the OpenAPI document, the JWKS,
# a public list endpoint, and an unknown route answering 404 as problem+json. Retries the first
# request for a while, since a new Ingress or load balancer may take a moment to route.
set -euo pipefail

URL="${1:?usage: deploy-smoke.sh URL}"
URL="${URL%/}"
TMP="$(mktemp)"
trap 'rm -f "$TMP"' EXIT

fail() {
	printf 'deploy-smoke: FAILED: %s\n' "$*" >&2
	exit 1
}
# `expect PATH STATUS [CONTENT_TYPE_PREFIX]`
expect() {
	local path="$1" want="$2" type="${3:-}" got
	got="$(curl -sS -o "$TMP" -w '%{http_code} %{content_type}' --max-time 10 "$URL$path")" || fail "GET $path: no answer"
	[ "${got%% *}" = "$want" ] || fail "GET $path answered ${got%% *}, expected $want: $(head -c 200 "$TMP")"
	[ -z "$type" ] || [[ "${got#* }" == "$type"* ]] || fail "GET $path: content type ${got#* }, expected $type"
	printf 'deploy-smoke: GET %s -> %s\n' "$path" "$got"
}

for _ in $(seq 1 30); do
	[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$URL/health/ready")" = 200 ] && break
	sleep 5
done
expect /health/ready 200
expect /health/live 200
expect /openapi.json 200 application/json
python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); assert d["openapi"].startswith("3"), d.get("openapi")' "$TMP" ||
	fail "/openapi.json is not an OpenAPI 3 document"
expect /.well-known/jwks.json 200 application/json
expect /api/v1/no-such-route 404 application/problem+json
echo "deploy-smoke: $URL passed"
