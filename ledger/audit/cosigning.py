"""The ledger's side of witnessing: send each checkpoint to the witnesses, keep their
cosignatures (ledger/audit/witness.py has the protocol and the witness itself).

A witness that is down, slow or refuses costs nothing but its cosignature: the
checkpoint stands, the failure is logged, and the next checkpoint is sent again with a
consistency proof from the last size that witness cosigned.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.audit.checkpoints import CheckpointView
from ledger.audit.models import AuditCosignature
from ledger.audit.tree import consistency_proof
from ledger.audit.witness import (
    SIZE_TYPE,
    CosignatureError,
    parse_cosigner_key,
    request_body,
    verify_cosignature,
)

log = logging.getLogger("ledger.audit.witness")

TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class WitnessPeer:
    """A witness the ledger sends its checkpoints to."""

    url: str  # its submission prefix: ``<url>/add-checkpoint``
    key: str  # its cosigner verifier key, ``<name>+<key id>+<base64 key>``

    @property
    def name(self) -> str:
        return parse_cosigner_key(self.key)[0]

    @classmethod
    def configured(cls, entry: dict[str, str]) -> WitnessPeer:
        """From a ``LEDGER_AUDIT_WITNESSES`` entry: ``{"url", "key"}``, or ``{"url",
        "key_file"}`` naming a file that holds the key (a witness's ``verifier.key``)."""
        if "key_file" in entry:
            key = Path(entry["key_file"]).read_text(encoding="utf-8").strip()
            return cls(url=entry["url"], key=key)
        return cls(url=entry["url"], key=entry["key"])


class WitnessRefused(Exception):
    """The witness answered, but not with a cosignature."""


async def collect(
    session: AsyncSession,
    peers: list[WitnessPeer],
    checkpoint: CheckpointView,
    *,
    now: dt.datetime,
    transport: httpx.AsyncBaseTransport | None = None,
) -> int:
    """Ask every peer that has not cosigned ``checkpoint`` yet; store what comes back.
    Returns how many cosignatures were added."""
    have = set(
        await session.scalars(
            sa.select(AuditCosignature.witness).where(
                AuditCosignature.tree_size == checkpoint.tree_size
            )
        )
    )
    added = 0
    async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS, transport=transport) as http:
        for peer in peers:
            if peer.name in have:
                continue
            try:
                line = await _ask(session, http, peer, checkpoint)
            except (httpx.HTTPError, WitnessRefused, CosignatureError, ValueError) as exc:
                log.warning(
                    "witness did not cosign", extra={"witness": peer.name, "error": str(exc)}
                )
                continue
            session.add(
                AuditCosignature(
                    tree_size=checkpoint.tree_size, witness=peer.name, line=line, received_at=now
                )
            )
            added += 1
    await session.flush()
    return added


async def _ask(
    session: AsyncSession, http: httpx.AsyncClient, peer: WitnessPeer, checkpoint: CheckpointView
) -> str:
    name, key = parse_cosigner_key(peer.key)
    old = int(
        await session.scalar(
            sa.select(sa.func.max(AuditCosignature.tree_size)).where(
                AuditCosignature.witness == name
            )
        )
        or 0
    )
    for _ in range(2):  # the second time from the size the witness says it holds
        if old > checkpoint.tree_size:
            raise WitnessRefused(f"the witness holds a larger tree ({old}) than this checkpoint")
        proof = (
            await consistency_proof(session, old, checkpoint.tree_size)
            if 0 < old < checkpoint.tree_size
            else []
        )
        response = await http.post(
            f"{peer.url.rstrip('/')}/add-checkpoint",
            content=request_body(old, proof, checkpoint.note).encode(),
        )
        if response.status_code == 409 and response.headers.get("content-type", "").startswith(
            SIZE_TYPE
        ):
            old = int(response.text.strip())
            continue
        if response.status_code != 200:
            raise WitnessRefused(f"{response.status_code}: {response.text.strip()[:200]}")
        body = checkpoint.note.rpartition("\n\n")[0] + "\n"
        for line in response.text.splitlines(keepends=True):
            try:
                verify_cosignature(body, line, name, key)
            except CosignatureError:
                continue  # another key's line: ignored, as the protocol says
            return line
        raise WitnessRefused("no valid cosignature by the witness's key in its answer")
    raise WitnessRefused("the witness's size kept changing")
