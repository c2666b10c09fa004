#!/usr/bin/env bash
# Roles and schemas of Parcel Pro in one PostgreSQL database.
#
# Per service (identity, shipping, privacy):
#   <svc>_owner  owns schema <svc>; the migration step connects as it (DDL only happens there);
#   <svc>_app    the running service: USAGE on its own schema and SELECT/INSERT/UPDATE/DELETE on
#                its tables, nothing on any other schema, no DDL, so one service can neither read
#                another's data nor change its own schema.
#
# Run by the postgres image on first start (/docker-entrypoint-initdb.d) and safe to run again
# (roles are created when missing; passwords and grants are re-applied, which is how passwords
# are rotated). Passwords come from <SVC>_OWNER_PASSWORD / <SVC>_APP_PASSWORD or, preferably,
# from the files named by <SVC>_OWNER_PASSWORD_FILE / <SVC>_APP_PASSWORD_FILE. Connection: the
# usual libpq variables (PGHOST, PGPORT, ...) plus POSTGRES_USER and POSTGRES_DB.
# PARCELPRO_ROLE_PREFIX (default empty) prefixes the role names, for clusters shared by several
# installations.
set -euo pipefail

database="${POSTGRES_DB:?POSTGRES_DB must name the database}"
admin="${POSTGRES_USER:-postgres}"
prefix="${PARCELPRO_ROLE_PREFIX:-}"

secret() {
    local name=$1 file_var="${1}_FILE"
    if [[ -n "${!file_var:-}" ]]; then
        local value
        value=$(<"${!file_var}")
        printf '%s' "$value"
    elif [[ -n "${!name:-}" ]]; then
        printf '%s' "${!name}"
    else
        echo "10-parcelpro-roles: set $name or $file_var" >&2
        return 1
    fi
}

psql_admin() {
    psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet --username "$admin" --dbname "$database" "$@"
}

psql_admin -v dbname="$database" <<'SQL'
-- Nobody gets into this database or the public schema unless granted below.
REVOKE ALL ON DATABASE :"dbname" FROM PUBLIC;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
SQL

for service in identity shipping privacy; do
    upper=${service^^}
    owner_password=$(secret "${upper}_OWNER_PASSWORD")
    app_password=$(secret "${upper}_APP_PASSWORD")
    # Passwords travel in the environment of psql, not on its command line (visible in ps).
    PARCELPRO_OWNER_PASSWORD="$owner_password" PARCELPRO_APP_PASSWORD="$app_password" \
        psql_admin \
        -v dbname="$database" \
        -v schema="$service" \
        -v owner="${prefix}${service}_owner" \
        -v app="${prefix}${service}_app" <<'SQL'
\getenv owner_password PARCELPRO_OWNER_PASSWORD
\getenv app_password PARCELPRO_APP_PASSWORD

SELECT format('CREATE ROLE %I', :'owner')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'owner') \gexec
SELECT format('CREATE ROLE %I', :'app')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app') \gexec
ALTER ROLE :"owner" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
    PASSWORD :'owner_password';
ALTER ROLE :"app" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
    PASSWORD :'app_password';
ALTER ROLE :"owner" SET search_path = :"schema";
ALTER ROLE :"app" SET search_path = :"schema";

GRANT CONNECT, TEMPORARY ON DATABASE :"dbname" TO :"owner", :"app";
-- The migration environment runs CREATE SCHEMA IF NOT EXISTS, which PostgreSQL checks against
-- CREATE on the database even when the schema exists. Only the owner (migration) role has it.
GRANT CREATE ON DATABASE :"dbname" TO :"owner";
CREATE SCHEMA IF NOT EXISTS :"schema" AUTHORIZATION :"owner";
ALTER SCHEMA :"schema" OWNER TO :"owner";
REVOKE ALL ON SCHEMA :"schema" FROM PUBLIC;
GRANT USAGE ON SCHEMA :"schema" TO :"app";

-- Tables the migrations create later, and those that exist already (re-runs).
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA :"schema"
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"app";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA :"schema"
    GRANT USAGE, SELECT ON SEQUENCES TO :"app";
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA :"schema" TO :"app";
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA :"schema" TO :"app";
SQL
    echo "10-parcelpro-roles: ${prefix}${service}_owner and ${prefix}${service}_app ready on schema ${service}"
done
