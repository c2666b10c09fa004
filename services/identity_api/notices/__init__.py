"""Notices other services ask identity to mail an account holder (decision 0112); the route is
``POST /internal/v1/accounts/{account_id}/notices`` in ``accounts/endpoints.py``."""
