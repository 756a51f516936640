#!/usr/bin/env bash
# Offline checks of observability/ (no image is pulled, nothing is started):
#   compose     docker compose config -q on compose.yaml (or docker-compose, where only that exists)
#   rules       promtool check rules on the alert and recording rules
#   tests       promtool test rules: the rules' unit tests
#   config      promtool check config on prometheus.yml (a promtool older than Prometheus 3
#               checks a copy without the otlp block, which it does not know)
#   consistency check_config.py: collector pipelines, Grafana provisioning and dashboards,
#               metric names against metrics.txt, runbook anchors, a firing and a quiet test
#               per alert
# Usage: observability/check.sh
# Tools: promtool (apt-get install prometheus; make obs-check installs it), docker compose or
#        docker-compose, and PYTHON (default python3) with PyYAML (make tools installs it).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROMTOOL="${PROMTOOL:-promtool}"
PYTHON="${PYTHON:-python3}"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
summary=()
failed=0
pass() { summary+=("PASS $1"); }
fail() { summary+=("FAIL $1"); failed=1; }
# Runs a check quietly; on failure shows its output.
run() {
  local name="$1"
  shift
  if "$@" >"$tmp/out" 2>&1; then
    pass "$name"
  else
    sed 's/^/  /' "$tmp/out"
    fail "$name"
  fi
}

if ! command -v "$PROMTOOL" >/dev/null 2>&1; then
  echo "observability/check.sh: $PROMTOOL not found (apt-get install prometheus; make obs-check installs it)" >&2
  exit 1
fi

echo "== compose"
if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  compose=(docker-compose)
else
  echo "observability/check.sh: neither docker compose nor docker-compose is installed" >&2
  exit 1
fi
run "compose: ${compose[*]} config -q" "${compose[@]}" -f "$here/compose.yaml" config -q

echo "== promtool ($("$PROMTOOL" --version 2>&1 | head -n 1))"
run "rules: promtool check rules" "$PROMTOOL" check rules "$here/prometheus/alerts.yaml"
# rule_files in the test file are relative to it.
test_rules() { (cd "$here/prometheus" && "$PROMTOOL" test rules alerts.test.yaml); }
run "tests: promtool test rules" test_rules

promtool_major="$("$PROMTOOL" --version 2>&1 | sed -nE '1s/.*version ([0-9]+)\..*/\1/p')"
if [[ "${promtool_major:-0}" -ge 3 ]]; then
  run "config: promtool check config" "$PROMTOOL" check config "$here/prometheus/prometheus.yml"
else
  # The otlp block is Prometheus 3's; everything else (rule files included) is checked.
  "$PYTHON" - "$here/prometheus/prometheus.yml" "$tmp/prometheus.yml" <<'PY'
import sys, yaml
config = yaml.safe_load(open(sys.argv[1], encoding="utf-8"))
config.pop("otlp", None)
yaml.safe_dump(config, open(sys.argv[2], "w", encoding="utf-8"))
PY
  cp "$here/prometheus/alerts.yaml" "$tmp/"
  run "config: promtool check config (promtool ${promtool_major:-?}: without the otlp block)" \
    "$PROMTOOL" check config "$tmp/prometheus.yml"
fi

echo "== consistency"
if "$PYTHON" "$here/check_config.py" "$here"; then
  pass "consistency: collector, provisioning, dashboards, metrics.txt, runbook, tests"
else
  fail "consistency: see above"
fi

echo
printf '%s\n' "${summary[@]}"
if [[ $failed -ne 0 ]]; then
  echo "observability checks FAILED"
  exit 1
fi
echo "observability checks passed"
