"""The internal data-subject API (decision 0004): privacy's answers for its own data."""
