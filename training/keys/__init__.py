"""`ankang keys ...`: API keys for the service (stored as salted SHA-256 digests in var/api_keys.json)."""
