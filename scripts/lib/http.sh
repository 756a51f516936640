# shellcheck shell=bash
# `call METHOD PATH EXPECTED_STATUS [TOKEN] [JSON]`: one request to "$BASE$PATH" with curl,
# failing the script (its own `fail`) unless the status is EXPECTED_STATUS; prints the body.
# Needs BASE, a scratch directory TMP and a `fail` function from the script that sources it.
call() {
	local method="$1" path="$2" expected="$3" token="${4:-}" body="${5:-}" status
	local -a args=(-s -o "$TMP/body" -w '%{http_code}' -X "$method" "$BASE$path")
	[ -n "$token" ] && args+=(-H "Authorization: Bearer $token")
	[ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data "$body")
	status="$(curl "${args[@]}")"
	[ "$status" = "$expected" ] || fail "$method $path answered $status, expected $expected: $(head -c 300 "$TMP/body")"
	cat "$TMP/body"
}
