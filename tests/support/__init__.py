"""Test support shared by the test packages: databases, tokens, SMTP, real processes."""
