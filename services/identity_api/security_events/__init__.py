"""The security event log an account holder can read."""
