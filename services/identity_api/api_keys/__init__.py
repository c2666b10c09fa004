"""API keys of partner webshops: created and revoked by the account holder, checked by every
service through identity's introspection."""
