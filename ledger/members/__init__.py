"""Member platforms, their client credentials, and the ledger's human users."""
