#!/usr/bin/env bash
# Makes sure the PostgreSQL and Redis that `make test`, `make run` and
# `make bench` use are up on 127.0.0.1: starts them when they are installed
# and stopped, and says what is missing otherwise.
#
# Also installs the programs some tests start on their own (Dovecot, poppler) when
# they are missing and the script runs as root on Debian.
#
# Usage: scripts/services.sh [postgres] [redis] [dovecot] [poppler] [chromium]   (default: postgres redis)
set -euo pipefail

wants=("$@")
[ ${#wants[@]} -eq 0 ] && wants=(postgres redis)

wait_for() { # what, check command...
  local what=$1; shift
  for _ in $(seq 1 60); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  echo "services: $what did not come up within 30 s" >&2
  return 1
}

postgres() {
  if [ -n "${SB_TEST_DATABASE_URL:-}" ]; then return 0; fi # tests use another server
  if pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then return 0; fi
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    local version
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    echo "services: starting PostgreSQL $version"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start
  elif command -v pg_ctl >/dev/null 2>&1 && [ -n "${PGDATA:-}" ]; then
    echo "services: starting PostgreSQL in $PGDATA"
    pg_ctl -D "$PGDATA" -l "$PGDATA/server.log" start
  else
    echo "services: PostgreSQL is not running on 127.0.0.1:5432 and no local server is installed." >&2
    echo "  Install it (Debian: apt-get install postgresql), start yours, or point the tests at one" >&2
    echo "  with SB_TEST_DATABASE_URL=postgres://user:password@host:5432/postgres" >&2
    return 1
  fi
  wait_for PostgreSQL pg_isready -h 127.0.0.1 -p 5432 -q
}

redis() {
  if [ -n "${SB_TEST_REDIS_URL:-}" ]; then return 0; fi # tests use another server
  if redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; then return 0; fi
  if command -v redis-server >/dev/null 2>&1; then
    echo "services: starting Redis"
    local dir=/var/lib/redis log=/var/log/redis/ci.log
    [ -w "$dir" ] || dir=$(mktemp -d)
    [ -w "$(dirname "$log")" ] || log="$dir/redis.log"
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir "$dir" --logfile "$log"
  else
    echo "services: Redis is not running on 127.0.0.1:6379 and redis-server is not installed." >&2
    echo "  Install it (Debian: apt-get install redis-server), start yours, or point the tests at one" >&2
    echo "  with SB_TEST_REDIS_URL=redis://host:6379/0" >&2
    return 1
  fi
  wait_for Redis sh -c 'redis-cli -h 127.0.0.1 -p 6379 ping | grep -q PONG'
}

# dovecot: the email connector's test against a real IMAP server starts its
# own Dovecot (connectors/email/dovecot_test.go); only the binary is needed.
dovecot() {
  if [ -x /usr/sbin/dovecot ]; then return 0; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "services: installing Dovecot (dovecot-imapd) for the email connector's tests"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q dovecot-imapd >/dev/null ||
      { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q dovecot-imapd >/dev/null; }
  else
    echo "services: /usr/sbin/dovecot is missing: install it (Debian: apt-get install dovecot-imapd) for the email connector's tests" >&2
    return 1
  fi
}

# poppler: the inbox's PDF export tests read the PDFs back with pdftotext
# and pdfinfo (services/inbox/export_test.go); only the binaries are needed.
poppler() {
  if command -v pdftotext >/dev/null 2>&1 && command -v pdfinfo >/dev/null 2>&1; then return 0; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "services: installing poppler-utils (pdftotext, pdfinfo) for the inbox's PDF export tests"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q poppler-utils >/dev/null ||
      { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q poppler-utils >/dev/null; }
  else
    echo "services: pdftotext and pdfinfo are missing: install them (Debian: apt-get install poppler-utils) for the inbox's PDF export tests" >&2
    return 1
  fi
}

# chromium: the console's browser tests (web/console/e2e) drive Debian's
# Chromium at /usr/bin/chromium (SB_CHROMIUM for another); Playwright's own
# browser download is not used. (Not `command -v chromium`: that finds this
# function.)
chromium() {
  if [ -x "${SB_CHROMIUM:-/usr/bin/chromium}" ]; then return 0; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "services: installing Chromium for the console's browser tests"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null ||
      { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }
  else
    echo "services: chromium is missing: install it (Debian: apt-get install chromium) for the console's browser tests" >&2
    return 1
  fi
}

for w in "${wants[@]}"; do "$w"; done
