#!/usr/bin/env bash
# Regenerates (or with --check, verifies) .sqlx/, the offline data that lets the
# compile-time-checked queries build without a database.
#
# The sqlx macros themselves write that data when compiled online with SQLX_OFFLINE_DIR set,
# so no extra CLI is needed: migrate a database, recompile the crate online, compare.
#
# Usage: scripts/sqlx-prepare.sh [--check]   (needs DATABASE_URL)
set -euo pipefail
cd "$(dirname "$0")/.."
: "${DATABASE_URL:?sqlx-prepare needs DATABASE_URL (run it through scripts/with-postgres.sh)}"
check=false
[[ "${1:-}" == "--check" ]] && check=true

keel="${KEEL_BIN:-${CARGO_TARGET_DIR:-target}/debug/keel}"
APP__DATABASE__URL="$DATABASE_URL" "$keel" migrate

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
# Any change to the crate recompiles it whole, re-expanding every query macro.
touch app/src/lib.rs
# Same selection as `make build`, so shared crates are not rebuilt with other features.
SQLX_OFFLINE=false SQLX_OFFLINE_DIR="$out" cargo build -q --workspace --all-targets --locked

if $check; then
  if ! diff -r .sqlx "$out" >/dev/null; then
    echo "sqlx-check: .sqlx/ is stale; run 'make sqlx-prepare' and commit .sqlx/" >&2
    diff -r .sqlx "$out" >&2 || true
    exit 1
  fi
  echo "sqlx-check: .sqlx/ matches the queries and migrations" >&2
else
  rm -rf .sqlx
  cp -r "$out" .sqlx
  echo "sqlx-prepare: wrote $(find .sqlx -name '*.json' | wc -l) query files to .sqlx/" >&2
fi
