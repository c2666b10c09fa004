#!/bin/sh
# Creates the secret files docker-compose.yml mounts (default: deploy/secrets/), one value each.
# Existing files are kept, so running it again only adds what is missing; to rotate a value,
# delete its file (see docs/operations.md for the order of steps per secret).
#
#   deploy/generate-secrets.sh [DIR]
#
# Environment: PARCELPRO_DB_HOST (postgres), PARCELPRO_DB_PORT (5432), PARCELPRO_DB_NAME
# (parcelpro), PARCELPRO_REDIS_HOST (redis), PARCELPRO_ROLE_PREFIX (none) shape the URLs.
#
# The directory is private to its owner (0700); the files in it are 0644 because Docker mounts
# compose secrets with the host file's mode and the containers run as other users (10001 for
# Parcel Pro, 999 for PostgreSQL and Redis).
set -eu

dir=${1:-$(dirname "$0")/secrets}
db_host=${PARCELPRO_DB_HOST:-postgres}
db_port=${PARCELPRO_DB_PORT:-5432}
db_name=${PARCELPRO_DB_NAME:-parcelpro}
redis_host=${PARCELPRO_REDIS_HOST:-redis}
prefix=${PARCELPRO_ROLE_PREFIX:-}

mkdir -p "$dir"
chmod 0700 "$dir"
umask 022

# 32 random bytes, URL-safe base64 without padding (fits in URLs, env vars and JSON as is).
token() {
    head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'
}

# write NAME VALUE: creates DIR/NAME unless it exists.
write() {
    if [ ! -e "$dir/$1" ]; then
        printf '%s\n' "$2" > "$dir/$1"
        echo "created $dir/$1"
    fi
}

read_secret() {
    head -n 1 "$dir/$1"
}

write postgres_password "$(token)"
write redis_password "$(token)"
write redis_url "redis://:$(read_secret redis_password)@${redis_host}:6379/0"

for service in identity shipping privacy; do
    write "${service}_owner_password" "$(token)"
    write "${service}_app_password" "$(token)"
    # The running service connects as <svc>_app; the migration step as the schema owner.
    write "${service}_database_url" \
        "postgresql+asyncpg://${prefix}${service}_app:$(read_secret "${service}_app_password")@${db_host}:${db_port}/${db_name}"
    write "${service}_migration_database_url" \
        "postgresql+asyncpg://${prefix}${service}_owner:$(read_secret "${service}_owner_password")@${db_host}:${db_port}/${db_name}"
    write "${service}_service_client_secret" "$(token)"
done

# identity checks the client credentials of every service against this map (decision 0003).
write identity_service_clients "$(printf '{"identity_api": "%s", "shipping_api": "%s", "privacy_api": "%s"}' \
    "$(read_secret identity_service_client_secret)" \
    "$(read_secret shipping_service_client_secret)" \
    "$(read_secret privacy_service_client_secret)")"
# Field-encryption keys (IBAN at rest): "<key id>:<base64url 32-byte key>", comma-separated,
# the first one encrypts, all of them decrypt (rotation: put a new key first, re-encrypt, drop).
write identity_field_encryption_keys "k$(date -u +%Y%m%d):$(token)"
# Keyed blind index of recipients' e-mail and phone (decision 0004).
write shipping_blind_index_key "$(token)"
# Carrier API credentials and webhook signing secrets, per carrier code.
write shipping_carrier_secrets "$(printf '{"sandbox": "%s"}' "$(token)")"
