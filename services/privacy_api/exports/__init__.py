"""Access and portability exports: NDJSON parts from every service, assembled into one ZIP."""
