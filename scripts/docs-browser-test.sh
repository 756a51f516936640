#!/usr/bin/env bash
# Swagger UI in a real browser (Chromium from Debian's packages, driven by Playwright from the
# tools venv): log in through "Try it out", Authorize, read /users/me. See docs_browser_test.py.
#
# Usage: scripts/docs-browser-test.sh KEEL_BINARY PYTHON   (needs DATABASE_URL)
set -euo pipefail
cd "$(dirname "$0")/.."
keel="$1"
python="$2"
# shellcheck source=scripts/lib/serve.sh
source scripts/lib/serve.sh
command -v chromium >/dev/null || die "chromium is not installed (apt-get install chromium)"
serve_keel "$keel"

email="docs-browser@example.com"
password="swagger ui passphrase"
create_admin "$keel" "$email" "$password"
"$python" scripts/docs_browser_test.py "$base" "$email" "$password"
