#!/usr/bin/env bash
# Runs a command with a PostgreSQL it can use, exported as DATABASE_URL and APP__DATABASE__URL.
#
# When APP__DATABASE__URL (or DATABASE_URL) is already set, that server is used as is.
# Otherwise a disposable container is started from the image scripts/pg-image.sh provides
# (pulled, or built from Debian packages where no registry is reachable) and removed when the
# command ends, is interrupted (Ctrl-C) or terminated.
#
# Usage: scripts/with-postgres.sh COMMAND [ARGS...]
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $# -eq 0 ]]; then
  echo "usage: scripts/with-postgres.sh COMMAND [ARGS...]" >&2
  exit 2
fi

url="${APP__DATABASE__URL:-${DATABASE_URL:-}}"
if [[ -n "$url" ]]; then
  export DATABASE_URL="$url" APP__DATABASE__URL="$url"
  exec "$@"
fi

image="$(scripts/pg-image.sh)"
name="keel-pg-$$-$RANDOM"
cleanup() {
  docker rm -f "$name" >/dev/null 2>&1 || true
}
trap cleanup EXIT
# Interrupted: stop the command's process group politely, then clean up via the EXIT trap.
trap 'exit 130' INT
trap 'exit 143' TERM

docker run -d --name "$name" --label keel.disposable=true \
  -e POSTGRES_USER=keel -e POSTGRES_PASSWORD=keel -e POSTGRES_DB=keel \
  -p 127.0.0.1::5432 "$image" -c fsync=off -c synchronous_commit=off >/dev/null
port="$(docker port "$name" 5432/tcp | head -n 1 | sed 's/.*://')"

# Only a login over TCP proves the final server is up (init-time servers listen on a socket).
for _ in $(seq 1 300); do
  if docker exec -e PGPASSWORD=keel "$name" psql -h 127.0.0.1 -U keel -d keel -qtAc 'SELECT 1' >/dev/null 2>&1; then
    ready=1
    break
  fi
  sleep 0.1
done
if [[ -z "${ready:-}" ]]; then
  echo "with-postgres: PostgreSQL in container $name did not become ready; its log:" >&2
  docker logs "$name" 2>&1 | tail -n 20 >&2
  exit 1
fi

export DATABASE_URL="postgres://keel:keel@127.0.0.1:${port}/keel"
export APP__DATABASE__URL="$DATABASE_URL"
echo "with-postgres: PostgreSQL ready at 127.0.0.1:${port} (container ${name}, removed on exit)" >&2
# Not exec: the EXIT trap must outlive the command to remove the container.
"$@"
