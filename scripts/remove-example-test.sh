#!/usr/bin/env bash
# remove-example-test.sh — prove `make remove-example` leaves a working service, on a scratch
# copy of this working tree (tracked and untracked files, not ignored ones): run it there, then
# fmt + clippy, the unit and integration tests, and check the OpenAPI document keeps accounts
# and auth and has no example operation left. Prints how many lines outside the removed
# folders changed. The scratch copy builds into its own cached target dir
# (KEEL_SCRATCH_TARGET_DIR), so this tree's build is never overwritten.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SCRATCH="$(mktemp -d "${TMPDIR:-/tmp}/keel-remove-example.XXXXXX")"
trap 'rm -rf "$SCRATCH"' EXIT
step() { printf '\nremove-example-test: %s\n' "$*" >&2; }

step "copying the working tree to $SCRATCH"
(cd "$ROOT" && git ls-files -z -co --exclude-standard |
	tar --null --ignore-failed-read -T - -cf - 2>/dev/null) | tar -xf - -C "$SCRATCH"
cd "$SCRATCH"
git init -q && git add -A && git -c user.name=test -c user.email=test@localhost commit -qm before

export CARGO_TARGET_DIR="${KEEL_SCRATCH_TARGET_DIR:-$HOME/.cache/keel/target-example-removed}"
export KEEL_BIN="$CARGO_TARGET_DIR/debug/keel"
step "make remove-example"
make remove-example

git add -A
# Lines edited in files that stay (deleted files and generated or prose files aside): what a
# feature's removal touches outside its own folder, tests and migration.
outside="$(git diff --cached --numstat --diff-filter=M HEAD -- . \
	':(exclude).sqlx' ':(exclude)openapi.json' ':(exclude)*.md' |
	awk '{n += $1 + $2; printf "  %s: %d\n", $3, $1 + $2 > "/dev/stderr"} END {print n + 0}')"
step "lines edited in files that stay (code, scripts; not docs or generated files): $outside"
git diff --cached --stat HEAD | tail -n 1 >&2

step "fmt + clippy"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -q -- -D warnings

step "unit and integration tests"
make unit-test integration-test

step "the OpenAPI document"
"$KEEL_BIN" openapi | python3 -c '
import json, sys
paths = json.load(sys.stdin)["paths"]
kept = ["/api/v1/auth/login", "/api/v1/auth/register", "/api/v1/users/me", "/health/ready"]
missing = [p for p in kept if p not in paths]
left = [p for p in paths if p.split("/")[3:4] in (["products"], ["orders"], ["reports"])]
if missing or left:
    sys.exit(f"remove-example-test: missing {missing}, example paths left {left}")
print(f"remove-example-test: {len(paths)} paths, accounts and auth kept, no example path left")
'
echo "remove-example-test: passed"
