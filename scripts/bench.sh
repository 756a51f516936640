#!/usr/bin/env bash
# `make bench`: the release build under load next to pgbench, plus the criterion
# micro-benchmarks; writes bench/results/YYYY-MM-DD.json, docs/benchmarks.md and its chart.
#
# Steps: install wrk when missing (root only, from the OS packages), run the criterion
# benchmarks (app/benches) while nothing else of ours loads the machine, build the release
# binary exactly as the production image does, find the PostgreSQL image (scripts/pg-image.sh),
# then hand over to tools/bench.py, which owns the database container, the server and the load.
#
# Usage: scripts/bench.sh            (PYTHON: the interpreter, default python3)
# Environment: BENCH_QUICK=1 for a short smoke run (no micro-benchmarks, docs left alone);
#   BENCH_PRODUCTS="10000 1000000" runs the catalog endpoints at each size; more BENCH_*
#   settings in `tools/bench.py --help`. Respects CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/log.sh
. scripts/lib/log.sh

PYTHON="${PYTHON:-python3}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/keel/target}"
# The committed offline query data: the build needs no database.
export SQLX_OFFLINE=true
BENCH_STARTED="$(date +%s)"
export BENCH_STARTED

for tool in wrk openssl docker; do
	command -v "$tool" >/dev/null && continue
	[ "$tool" = wrk ] || die "$tool not found on PATH"
	[ "$(id -u)" = 0 ] || die "wrk is missing: apt-get install wrk"
	log "installing wrk"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null ||
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
done

if [ -z "${BENCH_QUICK:-}" ] || [ "${BENCH_QUICK}" = 0 ]; then
	# Old results would be read back as this run's; criterion keeps its own history elsewhere.
	rm -rf "$CARGO_TARGET_DIR/criterion"
	# Recorded with the results: criterion has no other sign of a busy machine.
	BENCH_LOADAVG_MICRO="$(cut -d' ' -f1-3 /proc/loadavg)"
	export BENCH_LOADAVG_MICRO
	log "criterion micro-benchmarks (app/benches)"
	cargo bench --locked --package keel --bench auth --bench api >&2
fi

# After `cargo bench`, which builds the binary too but with the dev-dependencies' features
# unified in: this build is the production one (scripts/image.sh builds the same), and cargo
# caches both, so switching back and forth costs a link at most.
log "release build of keel"
cargo build --release --locked --package keel --bin keel >&2
export KEEL_BIN="$CARGO_TARGET_DIR/release/keel"

BENCH_PG_IMAGE="$(scripts/pg-image.sh)"
export BENCH_PG_IMAGE BENCH_CRITERION_DIR="$CARGO_TARGET_DIR/criterion"
exec "$PYTHON" tools/bench.py
