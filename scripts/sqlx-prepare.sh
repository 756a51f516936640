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

# The schema comes from the migration files themselves, applied with psql, not from `keel
# migrate`: a change that adds a migration and the queries using it cannot build keel (offline)
# before this has run. The database is throwaway; `_sqlx_migrations` only needs the columns the
# readiness query reads, created as sqlx creates it.
psql_run() {
  if command -v psql >/dev/null 2>&1; then
    psql "$DATABASE_URL" "$@"
  else
    docker run --rm -i --network host "$(scripts/pg-image.sh)" psql "$DATABASE_URL" "$@"
  fi
}
# The task queue's schema (apalis) too: Keel's queries read its tables, and apalis-postgres's
# own query macros compile online against it when this build compiles that crate.
version="$(awk '/^name = "apalis-postgres"$/ { getline; gsub(/"/, "", $3); print $3 }' Cargo.lock)"
cargo fetch --locked -q
apalis_dir="$(find "${CARGO_HOME:-$HOME/.cargo}/registry/src" -mindepth 2 -maxdepth 2 -type d \
  -name "apalis-postgres-$version" | head -n1)"
[[ -d "$apalis_dir/migrations" ]] || { echo "sqlx-prepare: apalis-postgres sources not found" >&2; exit 1; }
{
  echo 'SET client_min_messages = warning;'
  for table in _sqlx_migrations apalis._sqlx_migrations; do
    echo "CREATE SCHEMA IF NOT EXISTS apalis;
    CREATE TABLE IF NOT EXISTS $table (version BIGINT PRIMARY KEY,
    description TEXT NOT NULL, installed_on TIMESTAMPTZ NOT NULL DEFAULT now(),
    success BOOLEAN NOT NULL, checksum BYTEA NOT NULL, execution_time BIGINT NOT NULL);"
  done
  for migration in app/migrations/*.sql "$apalis_dir"/migrations/*.sql; do
    cat "$migration"
    printf '\n'
  done
} | psql_run -q -v ON_ERROR_STOP=1 --single-transaction -f - >/dev/null

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
# Any change to the crate recompiles it whole, re-expanding every query macro.
touch app/src/lib.rs
# Same selection as `make build`, so shared crates are not rebuilt with other features.
SQLX_OFFLINE=false SQLX_OFFLINE_DIR="$out" cargo build -q --workspace --all-targets --locked
# apalis-postgres ships its own offline data; whether it was rebuilt here must not matter.
for own in "$apalis_dir"/.sqlx/*.json; do
  rm -f "$out/$(basename "$own")"
done

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
