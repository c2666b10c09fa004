"""Load with nothing lost: ``python -m bench.load`` runs wrk against the whole platform (Caddy
and the three services on PostgreSQL) and checks afterwards that every shipment answered ``201``
is stored, and nothing else; it reports the status counts and the latency percentiles."""
