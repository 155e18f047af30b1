#!/bin/sh
# The ledger's two PostgreSQL roles and its database (docs/operations.md): the owner
# migrates, the service role owns nothing. Run once by the postgres image's entrypoint
# (docker-entrypoint-initdb.d), or by hand: PGHOST=… PGUSER=postgres sh postgres-init.sh
set -eu
db="${LEDGER_DB_NAME:-ledger}"
owner="${LEDGER_OWNER_ROLE:-ledger_owner}"
app="${LEDGER_APP_ROLE:-ledger_app}"
psql -v ON_ERROR_STOP=1 --no-psqlrc -q \
  -v owner="$owner" -v app="$app" -v db="$db" \
  -v owner_password="${LEDGER_OWNER_PASSWORD:?}" -v app_password="${LEDGER_APP_PASSWORD:?}" <<'SQL'
CREATE ROLE :"owner" LOGIN PASSWORD :'owner_password';
CREATE ROLE :"app" LOGIN PASSWORD :'app_password';
CREATE DATABASE :"db" OWNER :"owner";
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"db" TO :"app";
SQL
