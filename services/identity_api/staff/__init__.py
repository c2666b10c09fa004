"""Staff users, their roles, and audited staff access to account holders' data."""
