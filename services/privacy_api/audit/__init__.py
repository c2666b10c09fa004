"""The append-only audit log of staff actions in this service."""
