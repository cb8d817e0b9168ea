#!/usr/bin/env bash
# Runs every test of the workspace on this machine.
#
# The store tests run against SQLite and against a real PostgreSQL on 127.0.0.1:5432, so
# this script makes sure one is there: it installs PostgreSQL if it is missing, starts the
# local cluster if it is stopped, and creates the test role (with CREATEDB: each test
# makes its own database) and its database. Override the server with ISPVM_TEST_PG_URL.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_ROLE=ispvm
PG_PASSWORD=ispvm
PG_DB=ispvm_test
export ISPVM_TEST_PG_URL="${ISPVM_TEST_PG_URL:-postgres://$PG_ROLE:$PG_PASSWORD@127.0.0.1:5432/$PG_DB}"

as_postgres() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi
}

ensure_postgres() {
    if ! command -v pg_ctlcluster >/dev/null 2>&1; then
        echo "== installing PostgreSQL"
        apt-get install -y -q postgresql >/dev/null
    fi
    if ! pg_isready -q -h 127.0.0.1 -p 5432; then
        local version cluster
        read -r version cluster _ < <(pg_lsclusters --no-header | head -n 1)
        echo "== starting PostgreSQL $version/$cluster"
        pg_ctlcluster "$version" "$cluster" start
        for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
    fi
    if [ "$(as_postgres psql -tAc "SELECT 1 FROM pg_roles WHERE rolname = '$PG_ROLE'")" != 1 ]; then
        as_postgres psql -q -c "CREATE ROLE $PG_ROLE LOGIN PASSWORD '$PG_PASSWORD' CREATEDB"
    fi
    if [ "$(as_postgres psql -tAc "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")" != 1 ]; then
        as_postgres psql -q -c "CREATE DATABASE $PG_DB OWNER $PG_ROLE"
    fi
}

# Only the default URL is ours to set up; a given one is the caller's.
case "$ISPVM_TEST_PG_URL" in
    *@127.0.0.1:5432/*) ensure_postgres ;;
esac

# agent/tests/librouteros.rs checks the simulator with librouteros, an independent
# RouterOS API client from PyPI, and server/tests/notify.rs sends mail to aiosmtpd, a real
# SMTP server from PyPI; both installed (pinned) in a virtual environment of its own so
# the system Python stays untouched; the test runs the interpreter named by ISPVM_PYTHON.
VENV="${ISPVM_PY_VENV:-/var/tmp/ispvm-pyenv}"
if [ ! -x "$VENV/bin/python" ]; then
    echo "== creating the Python environment $VENV"
    python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import librouteros, aiosmtpd" 2>/dev/null; then
    echo "== installing librouteros and aiosmtpd"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check librouteros==4.2.2 aiosmtpd==1.4.6
fi
export ISPVM_PYTHON="$VENV/bin/python"

echo "== cargo test"
cargo test --workspace --all-targets
cargo test --workspace --doc
