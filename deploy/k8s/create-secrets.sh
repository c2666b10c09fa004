#!/bin/sh
# Creates (or updates) the Secrets the Parcel Pro pods mount, from the files that
# deploy/generate-secrets.sh writes, in namespace NAMESPACE:
#
#   PARCELPRO_DB_HOST=db.internal deploy/generate-secrets.sh deploy/secrets-prod
#   SMTP_URL=smtp://user:pass@smtp.example.nl:587 deploy/k8s/create-secrets.sh parcelpro deploy/secrets-prod
#
# Each service gets only its own secrets; the migration Job gets the schema owners' URLs (and
# reads the services' Secrets, decision 0806). Pods read secrets at start: after changing one,
# restart the pods that use it (kubectl rollout restart deployment/<name>). Clusters with an external secret store create
# the same Secrets (same names and keys) from there instead.
set -eu

namespace=${1:?usage: create-secrets.sh NAMESPACE [SECRETS_DIR]}
dir=${2:-$(dirname "$0")/../secrets}
: "${SMTP_URL:?set SMTP_URL (smtp://user:password@host:587)}"

apply() {
    name=$1
    shift
    kubectl create secret generic "$name" --namespace "$namespace" "$@" \
        --dry-run=client --output yaml | kubectl apply --filename -
}

# Keys are the file names the pods' *_FILE variables point at (/run/secrets/parcelpro/<key>);
# the values are generate-secrets.sh's files, the same ones docker-compose.yml mounts.
apply identity-secrets \
    --from-file=database_url="$dir/identity_database_url" \
    --from-file=redis_url="$dir/redis_url" \
    --from-file=service_clients="$dir/identity_service_clients" \
    --from-file=field_encryption_keys="$dir/identity_field_encryption_keys" \
    --from-file=field_encryption_active_key="$dir/identity_field_encryption_active_key" \
    --from-file=hash_key="$dir/identity_hash_key"
apply shipping-secrets \
    --from-file=database_url="$dir/shipping_database_url" \
    --from-file=redis_url="$dir/redis_url" \
    --from-file=service_client_secret="$dir/shipping_service_client_secret" \
    --from-file=blind_index_key="$dir/shipping_blind_index_key" \
    --from-file=webhook_secret_key="$dir/shipping_webhook_secret_key" \
    --from-file=webhook_secret_previous_keys="$dir/shipping_webhook_secret_previous_keys" \
    --from-file=carrier_secrets="$dir/shipping_carrier_secrets"
apply privacy-secrets \
    --from-file=database_url="$dir/privacy_database_url" \
    --from-file=redis_url="$dir/redis_url" \
    --from-file=service_client_secret="$dir/privacy_service_client_secret" \
    --from-file=blind_index_key="$dir/privacy_blind_index_key"
apply parcelpro-migration \
    --from-file=identity_database_url="$dir/identity_migration_database_url" \
    --from-file=shipping_database_url="$dir/shipping_migration_database_url" \
    --from-file=privacy_database_url="$dir/privacy_migration_database_url"
apply parcelpro-smtp --from-literal=smtp_url="$SMTP_URL"
