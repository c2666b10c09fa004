"""Password hashing (argon2id via pwdlib) and the password policy."""
