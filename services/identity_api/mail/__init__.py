"""Outgoing mail through a durable outbox, and the messages identity sends."""
