"""The Ed25519 keys that sign access tokens, their rotation and the published JWKS."""
