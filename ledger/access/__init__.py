"""Who may do what: permissions, principals, secrets, signing keys and access tokens."""
