"""Generating and checking secrets: client secrets and user passwords, argon2id only.

Hashing costs ~100 ms of CPU and tens of MiB by design, so it never runs on the event
loop: each call runs in a worker thread, and a semaphore bounds how many run at once.
"""

from __future__ import annotations

import asyncio
import secrets

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

CLIENT_ID_PREFIX = "cl_"
CLIENT_SECRET_PREFIX = "lsk_"  # noqa: S105  (a public prefix, not a secret)


def generate_client_id() -> str:
    """A public client identifier: a prefix and 128 random bits."""
    return CLIENT_ID_PREFIX + secrets.token_urlsafe(16)


def generate_client_secret() -> str:
    """A client secret: a recognisable prefix (for secret scanners) and 256 random bits."""
    return CLIENT_SECRET_PREFIX + secrets.token_urlsafe(32)


class SecretHasher:
    """argon2id hashing and verification off the event loop."""

    def __init__(
        self,
        *,
        time_cost: int,
        memory_cost_kib: int,
        parallelism: int,
        max_concurrent: int = 2,
    ) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_cost_kib,
            parallelism=parallelism,
            type=Type.ID,
        )
        self._slots = asyncio.Semaphore(max_concurrent)
        # Verified against when the claimed identity does not exist, so that an unknown
        # client id costs the same time as a wrong secret.
        self._decoy = self._hasher.hash(secrets.token_urlsafe(16))

    async def hash(self, secret: str) -> str:
        """The argon2id hash of ``secret`` (PHC string format)."""
        async with self._slots:
            return await asyncio.to_thread(self._hasher.hash, secret)

    async def verify(self, stored_hash: str, secret: str) -> bool:
        """Whether ``secret`` matches ``stored_hash``; malformed hashes never match."""
        async with self._slots:
            return await asyncio.to_thread(self._verify, stored_hash, secret)

    async def verify_decoy(self, secret: str) -> None:
        """Spend the time of one verification, for an identity that does not exist."""
        await self.verify(self._decoy, secret)

    def needs_rehash(self, stored_hash: str) -> bool:
        """Whether ``stored_hash`` was made with other parameters than the current ones."""
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return True

    def _verify(self, stored_hash: str, secret: str) -> bool:
        try:
            return self._hasher.verify(stored_hash, secret)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
