#!/bin/sh
# Entry point of the postgres image (Debian's PostgreSQL 15), honouring the environment of the official image:
#   POSTGRES_PASSWORD       the superuser's password (required for a new data directory, unless
#                           POSTGRES_HOST_AUTH_METHOD=trust)
#   POSTGRES_USER           the superuser (default postgres)
#   POSTGRES_DB             a database created with the data directory (default: POSTGRES_USER)
#   PGDATA                  the data directory (default /var/lib/postgresql/data)
#   POSTGRES_INITDB_ARGS    more arguments for initdb, e.g. --data-checksums
#   POSTGRES_HOST_AUTH_METHOD  authentication over TCP (default scram-sha-256)
# An empty data directory is initialised (initdb, the database, then any /docker-entrypoint-initdb.d/*.sql or *.sh);
# then the server runs in the foreground listening on every address, with password authentication over TCP.
# Run as root it makes the data directory postgres's (uid 999) and drops to that user. Arguments starting with "-"
# are passed to postgres; any other command runs as given.
set -eu

fail() {
  echo "postgres-entrypoint: $*" >&2
  exit 1
}

: "${PGDATA:=/var/lib/postgresql/data}"
export PGDATA
SOCKET_DIR=/var/run/postgresql

if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
  set -- postgres "$@"
fi
if [ "$1" != postgres ]; then
  exec "$@"
fi
shift

if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" "$SOCKET_DIR"
  chown postgres:postgres "$PGDATA" "$SOCKET_DIR"
  chmod 0700 "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" postgres "$@"
fi

[ -d "$PGDATA" ] || mkdir -p "$PGDATA" 2>/dev/null || fail "PGDATA=$PGDATA does not exist and cannot be created by uid $(id -u)"
[ -w "$PGDATA" ] || fail "PGDATA=$PGDATA is not writable by uid $(id -u): give the directory to that user (chown $(id -u) $PGDATA)"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  user=${POSTGRES_USER:-postgres}
  db=${POSTGRES_DB:-$user}
  method=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
  if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$method" != trust ]; then
    fail "the data directory $PGDATA is empty and POSTGRES_PASSWORD is not set: set it (or POSTGRES_HOST_AUTH_METHOD=trust for a throw-away database)"
  fi
  if [ -n "$(ls -A "$PGDATA" 2>/dev/null)" ]; then
    fail "$PGDATA holds files but no PG_VERSION: it is not a PostgreSQL data directory; point PGDATA at an empty directory"
  fi
  echo "postgres-entrypoint: initialising $PGDATA (superuser $user, database $db)"
  pwfile=$(mktemp)
  trap 'rm -f "$pwfile"' EXIT
  printf '%s\n' "${POSTGRES_PASSWORD:-}" > "$pwfile"
  # shellcheck disable=SC2086  # POSTGRES_INITDB_ARGS is a list of arguments
  initdb --username="$user" --pwfile="$pwfile" --auth-local=trust --auth-host="$method" ${POSTGRES_INITDB_ARGS:-} >/dev/null
  rm -f "$pwfile"
  printf '\n# Any address, with a password (the image'"'"'s entry point).\nhost all all all %s\n' "$method" >> "$PGDATA/pg_hba.conf"

  pg_ctl -D "$PGDATA" -w -s -o "-c listen_addresses='' -c unix_socket_directories=$SOCKET_DIR" start
  if [ "$db" != postgres ]; then
    psql -v ON_ERROR_STOP=1 -q -h "$SOCKET_DIR" -U "$user" -d postgres -c "CREATE DATABASE \"$db\"" \
      || fail "cannot create the database $db"
  fi
  for script in /docker-entrypoint-initdb.d/*; do
    case "$script" in
      *.sql) psql -v ON_ERROR_STOP=1 -q -h "$SOCKET_DIR" -U "$user" -d "$db" -f "$script" ;;
      *.sh) . "$script" ;;
    esac
  done
  pg_ctl -D "$PGDATA" -m fast -w -s stop
  echo "postgres-entrypoint: $PGDATA initialised"
fi

exec postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories="$SOCKET_DIR" "$@"
