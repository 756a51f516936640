# shellcheck shell=bash
# A live `keel serve` on a free loopback port against $DATABASE_URL, for the scripts that drive
# the real server from outside (contract-test, docs-browser-test). Sourced, not run.
#
#   serve_keel KEEL      starts it, waits until it is healthy; sets $port, $base and $server_log
#                        and stops it when the script exits
#   create_admin KEEL EMAIL PASSWORD
#                        makes the account with `keel users create-admin`
# shellcheck source=scripts/lib/log.sh
source "${BASH_SOURCE[0]%/*}/log.sh"

serve_keel() {
	local keel="$1"
	: "${DATABASE_URL:?needs DATABASE_URL (run it through scripts/with-postgres.sh)}"
	port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
	# shellcheck disable=SC2034  # read by the sourcing script
	base="http://127.0.0.1:${port}"
	server_log="$(mktemp)"
	APP_ENV=test APP__SERVER__PORT="$port" APP__DATABASE__URL="$DATABASE_URL" \
		APP__TELEMETRY__LOG_FILTER=info "$keel" serve >"$server_log" 2>&1 &
	server_pid=$!
	trap stop_keel EXIT
	local _
	for _ in $(seq 1 100); do
		if APP__SERVER__PORT="$port" "$keel" healthcheck --timeout 1s 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	log "keel serve never became ready; its log:"
	tail -n 30 "$server_log" >&2
	exit 1
}

# shellcheck disable=SC2317  # called by the EXIT trap
stop_keel() {
	kill -TERM "$server_pid" 2>/dev/null || true
	wait "$server_pid" 2>/dev/null || true
	rm -f "$server_log"
}

create_admin() {
	local keel="$1" email="$2" password="$3"
	printf '%s\n' "$password" | APP_ENV=test APP__DATABASE__URL="$DATABASE_URL" \
		"$keel" users create-admin --email "$email"
}
