"""The audit log: every state change and every read of subject data, append-only,
integrated into an RFC 6962 Merkle tree and checkpointed with Ed25519 signatures."""
