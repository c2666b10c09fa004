#!/bin/sh
# Creates the secret files docker-compose.yml mounts (default: deploy/secrets/), one value each,
# in the formats the services read (services/*/settings.py; the table in docs/operations.md).
#
#   deploy/generate-secrets.sh [DIR]
#
# Random secrets are created once: existing files are kept, so running it again only adds what
# is missing. Files made from others follow them: a URL gets the current password of its role
# (host, database and options stay as written), identity's map of service clients the current
# client secrets. So after deleting a password or a client secret to rotate it, one run makes
# every file agree again (docs/operations.md gives the order of steps per secret).
#
# Environment, for URLs created by this run: PARCELPRO_DB_HOST (postgres), PARCELPRO_DB_PORT
# (5432), PARCELPRO_DB_NAME (parcelpro), PARCELPRO_DB_OPTIONS (query string, e.g. "ssl=require"),
# PARCELPRO_REDIS_HOST (redis), PARCELPRO_ROLE_PREFIX (none). To move to another host, delete
# the URL files and run again with the new values.
#
# The directory is private to its owner (0700); the files in it are 0644 because Docker mounts
# compose secrets with the host file's mode and the containers run as other users (10001 for
# Parcel Pro, 999 for PostgreSQL and Redis).
set -eu

dir=${1:-$(dirname "$0")/secrets}
db_host=${PARCELPRO_DB_HOST:-postgres}
db_port=${PARCELPRO_DB_PORT:-5432}
db_name=${PARCELPRO_DB_NAME:-parcelpro}
db_options=${PARCELPRO_DB_OPTIONS:+?${PARCELPRO_DB_OPTIONS}}
redis_host=${PARCELPRO_REDIS_HOST:-redis}
prefix=${PARCELPRO_ROLE_PREFIX:-}

mkdir -p "$dir"
chmod 0700 "$dir"
umask 022

# 32 random bytes, URL-safe base64 without padding: 43 characters that fit in URLs, environment
# variables and JSON as they are (the services want 32+ characters for their HMAC keys).
token() {
    head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'
}

# 32 random bytes in standard, padded base64: an AES-256 or HMAC key the services decode.
key32() {
    head -c 32 /dev/urandom | base64 | tr -d '\n'
}

# write NAME VALUE: creates DIR/NAME unless it exists (a random secret is made once).
write() {
    if [ ! -e "$dir/$1" ]; then
        printf '%s\n' "$2" > "$dir/$1"
        echo "created $dir/$1"
    fi
}

# derive NAME VALUE: DIR/NAME holds VALUE, rewritten when it differs (made from other files).
derive() {
    if [ ! -e "$dir/$1" ]; then
        printf '%s\n' "$2" > "$dir/$1"
        echo "created $dir/$1"
    elif [ "$(cat "$dir/$1")" != "$2" ]; then
        printf '%s\n' "$2" > "$dir/$1"
        echo "updated $dir/$1"
    fi
}

read_secret() {
    head -n 1 "$dir/$1"
}

# url NAME PASSWORD NEW_URL: DIR/NAME is NEW_URL when missing; otherwise its password (between
# "user:" and "@") becomes PASSWORD. Passwords are URL-safe base64, safe in sed and in URLs.
url() {
    if [ -e "$dir/$1" ]; then
        derive "$1" "$(read_secret "$1" | sed "s|^\([a-z+]*://[^:/@]*:\)[^@]*@|\1$2@|")"
    else
        derive "$1" "$3"
    fi
}

# --- PostgreSQL and Redis -------------------------------------------------------------------
write postgres_password "$(token)"
write redis_password "$(token)"
password=$(read_secret redis_password)
url redis_url "$password" "redis://:${password}@${redis_host}:6379/0"

for service in identity shipping privacy; do
    write "${service}_owner_password" "$(token)"
    write "${service}_app_password" "$(token)"
    # The running service connects as <svc>_app; the migration step as the schema owner.
    for role in app owner; do
        name="${service}_database_url"
        [ "$role" = owner ] && name="${service}_migration_database_url"
        password=$(read_secret "${service}_${role}_password")
        url "$name" "$password" \
            "postgresql+asyncpg://${prefix}${service}_${role}:${password}@${db_host}:${db_port}/${db_name}${db_options}"
    done
done

# --- Service clients (decision 0003) --------------------------------------------------------
# SHIPPING_SERVICE_CLIENT_SECRET / PRIVACY_SERVICE_CLIENT_SECRET: what each service presents to
# identity's token endpoint as client "<svc>_api". Identity calls no other service, so it has
# no client secret of its own.
write shipping_service_client_secret "$(token)"
write privacy_service_client_secret "$(token)"
# IDENTITY_SERVICE_CLIENTS: the same secrets on identity's side, with each client's scopes
# (the grants of services/identity_api/settings.py).
derive identity_service_clients "$(printf '{"shipping_api": {"secret": "%s", "scopes": ["internal:introspect", "internal:accounts.read", "internal:consents.read", "internal:accounts.notify"]}, "privacy_api": {"secret": "%s", "scopes": ["internal:introspect", "internal:accounts.read", "internal:subjects"]}}' \
    "$(read_secret shipping_service_client_secret)" \
    "$(read_secret privacy_service_client_secret)")"

# --- identity ---------------------------------------------------------------------------------
# IDENTITY_FIELD_ENCRYPTION_KEYS: JSON {"<key id>": "<base64 32-byte key>"} (IBANs and the
# signing keys' private halves at rest); IDENTITY_FIELD_ENCRYPTION_ACTIVE_KEY names the key that
# seals new values. Both change only by the rotation steps in docs/operations.md.
if [ ! -e "$dir/identity_field_encryption_keys" ]; then
    kid="k$(date -u +%Y%m%d)"
    write identity_field_encryption_keys "$(printf '{"%s": "%s"}' "$kid" "$(key32)")"
    write identity_field_encryption_active_key "$kid"
fi
# IDENTITY_HASH_KEY: base64 HMAC key (32 bytes) of API-key, refresh-token and mail-token hashes.
write identity_hash_key "$(key32)"

# --- shipping ---------------------------------------------------------------------------------
# SHIPPING_BLIND_INDEX_KEY: the keyed blind index over recipients' e-mail and phone.
write shipping_blind_index_key "$(token)"
# SHIPPING_WEBHOOK_SECRET_KEY: seals the webhook endpoints' signing secrets at rest.
write shipping_webhook_secret_key "$(token)"
# SHIPPING_WEBHOOK_SECRET_PREVIOUS_KEYS: JSON list of earlier webhook-secret keys, which only
# open; empty except while a key rotation is under way (docs/operations.md).
write shipping_webhook_secret_previous_keys "[]"
# SHIPPING_CARRIER_SECRETS: per carrier, the HMAC secret its pushed status events are signed
# with (agreed with the carrier: give them these, or replace them with theirs).
write shipping_carrier_secrets "$(printf '{"postnl": "%s", "dhl": "%s", "dpd": "%s", "gls": "%s", "ups": "%s"}' \
    "$(token)" "$(token)" "$(token)" "$(token)" "$(token)")"

# --- privacy ----------------------------------------------------------------------------------
# PRIVACY_BLIND_INDEX_KEY: blind indexes of requesters' e-mail and phone, verification codes.
write privacy_blind_index_key "$(token)"
