"""Pseudonymous buyer identities: RFC 9497 VOPRF (ristretto255-SHA512)."""
