#!/usr/bin/env bash
# db-app-password-test.sh — db-app-password.sh against a MOCK AWS CLI (no AWS account is
# reachable here): a stand-in `aws` on PATH that keeps the secret's value in a file and logs
# every command line. Proves the alternation (base → base_b → base), the first run on a
# secret without a value, the refusals, and that no password ever appears on a command line.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/keel-db-password.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
fail() {
	printf 'db-app-password-test: FAIL: %s\n' "$*" >&2
	exit 1
}

mkdir -p "$WORK/bin"
cat >"$WORK/bin/aws" <<'MOCK'
#!/usr/bin/env bash
# Mock of the three or four secretsmanager calls the script makes; state in $MOCK_STATE.
set -euo pipefail
printf '%s\n' "$*" >>"$MOCK_STATE/argv.log"
case "$2" in
describe-secret) printf '%s\n' "$MOCK_TAG" ;;
get-secret-value)
	[[ -f "$MOCK_STATE/value" ]] || {
		echo "An error occurred (ResourceNotFoundException) when calling the GetSecretValue operation: no value" >&2
		exit 254
	}
	cat "$MOCK_STATE/value" ;;
get-random-password) printf 'Gen%037d\n' "$(($(wc -l <"$MOCK_STATE/argv.log") * 7919))" ;;
put-secret-value)
	cat >"$MOCK_STATE/value"
	echo "version-$(wc -l <"$MOCK_STATE/argv.log")" ;;
*) echo "mock aws: unexpected call: $*" >&2; exit 2 ;;
esac
MOCK
chmod +x "$WORK/bin/aws"

export MOCK_STATE="$WORK" MOCK_TAG=keel_app PATH="$WORK/bin:$PATH"
run() { "$ROOT/scripts/db-app-password.sh" arn:aws:secretsmanager:eu-west-1:123456789012:secret:keel-staging/db-app 2>"$WORK/stderr"; }
user() { sed -E 's/.*"username":"([^"]*)".*/\1/' "$WORK/value"; }

for expected in keel_app keel_app_b keel_app; do
	run || fail "run failed: $(cat "$WORK/stderr")"
	[[ "$(user)" == "$expected" ]] || fail "expected role $expected, the secret names $(user)"
	password="$(sed -E 's/.*"password":"([^"]*)".*/\1/' "$WORK/value")"
	[[ "$password" =~ ^[A-Za-z0-9]{40}$ ]] || fail "stored password is not 40 letters and digits"
	! grep -qF "$password" "$WORK/argv.log" || fail "the password appeared on a command line"
	! grep -qF "$password" "$WORK/stderr" || fail "the password appeared in the script's output"
done

printf '{"username":"someone_else","password":"x"}' >"$WORK/value"
! run || fail "accepted a secret naming a foreign role"
grep -q "neither keel_app nor keel_app_b" "$WORK/stderr" || fail "unclear refusal: $(cat "$WORK/stderr")"

MOCK_TAG=None
! run || fail "accepted a secret without the keel:db-username tag"
grep -q "keel:db-username" "$WORK/stderr" || fail "unclear refusal: $(cat "$WORK/stderr")"

echo "db-app-password-test: alternation, first run and refusals hold (mock AWS CLI)" >&2
