"""Login and tokens: the OAuth2 token endpoint, refresh-token rotation, logout, e-mail
verification and password reset."""
