"""Durable outgoing mail: decided inside a transaction, sent after it commits."""
