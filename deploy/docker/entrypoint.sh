#!/bin/sh
# Entry point of the Parcel Pro image: the first argument picks the process.
#
#   identity|shipping|privacy <command> [options]   python -m services.<svc>_api <command> ...
#                                                    (serve, migrate, purge-request-log, purge,
#                                                    worker, deadlines, ...)
#   gateway [run|validate] [--config FILE]           Caddy, via python -m services.gateway
#   migrate                                          migrate identity, shipping, privacy in turn
#   anything else                                    executed as given (python, sh, ...)
#
# Secrets never live in the image: every variable NAME_FILE=/path is turned into NAME=<contents
# of /path> (Docker and Kubernetes secrets are files), so IDENTITY_DATABASE_URL_FILE provides
# IDENTITY_DATABASE_URL. Setting both NAME and NAME_FILE is refused.
set -eu

load_secret_files() {
    for name in $(env | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)_FILE=.*/\1/p'); do
        path=""
        eval "path=\${${name}_FILE}"
        eval "already=\${${name}+set}"
        if [ "${already:-}" = "set" ]; then
            echo "entrypoint: both $name and ${name}_FILE are set; use one" >&2
            exit 64
        fi
        if [ ! -r "$path" ]; then
            echo "entrypoint: ${name}_FILE=$path is not a readable file" >&2
            exit 66
        fi
        # $(...) drops trailing newlines, which secret files often end with.
        value=$(cat "$path")
        export "$name=$value"
        unset "${name}_FILE"
    done
}

load_secret_files

if [ "$#" -eq 0 ]; then
    set -- --help
fi

case "$1" in
    identity | shipping | privacy)
        service=$1
        shift
        exec python -m "services.${service}_api" "$@"
        ;;
    gateway)
        shift
        if [ "$#" -eq 0 ]; then
            set -- run
        fi
        exec python -m services.gateway "$@"
        ;;
    migrate)
        shift
        # Each service migrates its own schema, in the order the others depend on it.
        for service in identity shipping privacy; do
            python -m "services.${service}_api" migrate "$@"
        done
        ;;
    -h | --help | help)
        sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
        ;;
    *)
        exec "$@"
        ;;
esac
