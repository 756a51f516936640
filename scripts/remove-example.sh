#!/usr/bin/env bash
# remove-example.sh — delete the example domain (catalog, orders, reports), leaving a service
# with accounts and auth that builds, passes its tests and serves. A fork runs it once.
#
# What goes: each example feature's folder under app/src/features/ and its two lines in
# app/src/features/mod.rs, its migration, its integration tests and test helpers, the business
# dashboard, and every block between `example-domain:begin` and `example-domain:end` markers in
# the docs, scripts, tests and observability/metrics.txt. Then openapi.json and
# .sqlx/ are regenerated (the latter needs Docker for a throwaway PostgreSQL, like make test).
#
# Migrations: deleting them is right only before a first release; a service already deployed
# keeps them and adds a migration that drops the tables instead.
set -euo pipefail

die() {
	printf 'remove-example: %s\n' "$*" >&2
	exit 1
}

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
FEATURES=(catalog orders reports)

[ -d app/src/features/catalog ] || die "the example domain is already removed"

for feature in "${FEATURES[@]}"; do
	rm -rf "app/src/features/$feature" "tests/tests/$feature.rs" "tests/tests/api/$feature.rs" \
		"tests/src/$feature.rs"
	rm -f app/migrations/*_"$feature".sql app/migrations/*_"$feature"_*.sql
	# Its `pub mod` line and its entry in register!(..), e.g. `    catalog::Catalog,`.
	sed -i -E "/^pub mod $feature;$/d; /^    $feature::[A-Za-z]+,$/d" app/src/features/mod.rs
	# Its line in the README's layout (inside a code block, where markers would show).
	sed -i -E "/^      $feature\/ /d" README.md
	# Its `mod` line in the tests' crate roots, where helpers and test modules are declared.
	for root in tests/src/lib.rs tests/tests/api/main.rs; do
		[ -f "$root" ] && sed -i -E "/^(pub )?mod $feature;$/d" "$root"
	done
done

# The webhook tests publish their events by placing orders; a fork that publishes its own
# events writes tests that do (tests/src/receiver.rs, the real HTTP receiver, stays).
rm -f tests/tests/api/webhooks.rs

# Orders and revenue are the example shop's KPIs; their metric names leave metrics.txt with the
# marked block below, so observability/check.sh finds neither a dangling query nor an unused name.
rm -f observability/grafana/dashboards/keel-business.json

# Marked blocks: lines from one holding `example-domain:begin` to one holding
# `example-domain:end`, whatever the comment syntax (`#`, `//`, `<!-- -->`).
mapfile -t marked < <(git ls-files -z | xargs -0 grep -l 'example-domain:begin' 2>/dev/null | grep -v '^scripts/remove-example.sh$' || true)
for file in "${marked[@]}"; do
	sed -i '/example-domain:begin/,/example-domain:end/d' "$file"
done
left="$(git ls-files -z | xargs -0 grep -l 'example-domain:end' 2>/dev/null | grep -v '^scripts/remove-example.sh$' || true)"
[ -z "$left" ] || die "unbalanced example-domain markers in: $left"

# The edits above can leave a shorter list (`register!(accounts::Accounts,)`) to re-wrap.
cargo fmt --all
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/keel/target}"
make build
make openapi
make sqlx-prepare
echo "remove-example: removed ${FEATURES[*]}; review with git status, then make test" >&2
