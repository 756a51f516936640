#!/usr/bin/env bash
# Entrypoint of the local keel-postgres image (see scripts/pg-image.sh).
# Behaves like the official `postgres` image where clients rely on it:
#   POSTGRES_USER (default postgres), POSTGRES_PASSWORD (required unless
#   POSTGRES_HOST_AUTH_METHOD=trust), POSTGRES_DB (default = user),
#   POSTGRES_INITDB_ARGS, PGDATA (default /var/lib/postgresql/data),
#   /docker-entrypoint-initdb.d/*.sh|*.sql, and extra container arguments
#   (`-c key=value`) passed on to postgres.
# Logging: the "database system is ready to accept connections" line is
# printed exactly once, on stderr, by the final server (listening on all
# addresses). The init-time server only has a unix socket and its log goes
# to a file that is shown only if initialisation fails.
set -Eeuo pipefail

log() { printf 'docker-entrypoint: %s\n' "$*" >&2; }
die() { printf 'docker-entrypoint: error: %s\n' "$*" >&2; exit 1; }

# Newest versioned PostgreSQL binaries in the image.
PGBIN="$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
[ -x "$PGBIN/postgres" ] || die "no PostgreSQL server binaries under /usr/lib/postgresql"

# `docker run IMAGE -c fsync=off` → `postgres -c fsync=off`
if [ "${1:-}" = "" ] || [ "${1:0:1}" = "-" ]; then
	set -- postgres "$@"
fi
# Anything else (e.g. `bash`, `psql`) runs as given.
if [ "$1" != "postgres" ]; then
	exec "$@"
fi
shift

export PGDATA="${PGDATA:-/var/lib/postgresql/data}"

if [ "$(id -u)" = "0" ]; then
	mkdir -p "$PGDATA" /var/run/postgresql
	chown postgres:postgres /var/run/postgresql
	chmod 2775 /var/run/postgresql
	find "$PGDATA" \! -user postgres -exec chown postgres:postgres '{}' +
	chmod 700 "$PGDATA"
	if command -v gosu >/dev/null 2>&1; then
		exec gosu postgres "${BASH_SOURCE[0]}" postgres "$@"
	fi
	exec setpriv --reuid=postgres --regid=postgres --init-groups \
		"${BASH_SOURCE[0]}" postgres "$@"
fi

init_database() {
	local user="${POSTGRES_USER:-postgres}"
	local db="${POSTGRES_DB:-$user}"
	local auth="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"
	local -a initdb_args=()
	local -a psql
	local pwfile initlog f

	if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$auth" != "trust" ]; then
		die "database is uninitialized and POSTGRES_PASSWORD is not set (set it, or POSTGRES_HOST_AUTH_METHOD=trust)"
	fi
	if [ -n "${POSTGRES_INITDB_ARGS:-}" ]; then
		read -r -a initdb_args <<<"$POSTGRES_INITDB_ARGS"
	fi

	pwfile="$(mktemp)"
	initlog="$(mktemp)"
	# shellcheck disable=SC2064 # expand the paths now
	trap "rm -f '$pwfile'; sed 's/^/init-server: /' '$initlog' >&2 2>/dev/null || :; rm -f '$initlog'" EXIT
	if [ -n "${POSTGRES_PASSWORD:-}" ]; then
		printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
		initdb_args+=("--pwfile=$pwfile")
	fi

	log "initializing database in $PGDATA ($("$PGBIN/postgres" --version))"
	# --no-sync: throwaway test containers need no fsync of the fresh cluster.
	"$PGBIN/initdb" -D "$PGDATA" --username="$user" --encoding=UTF8 --no-sync \
		--auth-local=trust --auth-host="$auth" "${initdb_args[@]}"
	rm -f "$pwfile"

	printf '\nhost all all all %s\n' "$auth" >>"$PGDATA/pg_hba.conf"
	printf "\nlisten_addresses = '*'\n" >>"$PGDATA/postgresql.conf"

	# Temporary server: unix socket only, log to a file, so nobody can connect
	# early and the ready line is not printed for it.
	"$PGBIN/pg_ctl" -D "$PGDATA" -w -l "$initlog" \
		-o "$(printf '%q ' -c listen_addresses='' -p "${PGPORT:-5432}" "$@")" start >/dev/null

	psql=("$PGBIN/psql" -v ON_ERROR_STOP=1 --no-psqlrc --no-password
		--username "$user" --port "${PGPORT:-5432}")
	if [ "$db" != "postgres" ]; then
		"${psql[@]}" --dbname postgres --set db="$db" -q <<-'SQL'
			CREATE DATABASE :"db";
		SQL
	fi
	for f in /docker-entrypoint-initdb.d/*; do
		[ -e "$f" ] || continue
		case "$f" in
		*.sh)
			log "running $f"
			# shellcheck disable=SC1090
			if [ -x "$f" ]; then "$f"; else . "$f"; fi
			;;
		*.sql)
			log "running $f"
			"${psql[@]}" --dbname "$db" -f "$f"
			;;
		*) log "ignoring $f" ;;
		esac
	done

	"$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
	trap - EXIT
	rm -f "$initlog"
	log "init complete; starting PostgreSQL"
}

if [ ! -s "$PGDATA/PG_VERSION" ]; then
	init_database "$@"
fi

# Final server in the foreground as PID 1: signals reach it directly
# (the image's STOPSIGNAL is SIGINT = fast shutdown).
exec "$PGBIN/postgres" "$@"
