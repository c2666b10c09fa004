"""Account holders: registration, their own account, password changes, sender details."""
