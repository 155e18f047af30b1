"""Versioned scoring policies: an append-only history; the newest version is in force.

Changing the policy is an operator action (`ledger policy set FILE`), audited. Every
answer names the version that produced it, so any past answer can be explained with
the policy then in force.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from ledger.audit.log import record
from ledger.audit.tags import Tag
from ledger.context import Operation
from ledger.db import Base
from ledger.errors import Conflict, InvalidInput
from ledger.reports.policy import Category
from ledger.scoring.score import ScoringPolicy
from ledger.single_flight import SingleFlight
from ledger.types import UTCDateTime


class StoredPolicy(Base):
    __tablename__ = "scoring_policies"

    version: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    document: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)


class PolicyDocument(BaseModel):
    """The policy file an operator writes. Every field is required."""

    model_config = ConfigDict(extra="forbid")

    version: str = Field(pattern=r"^[A-Za-z0-9._-]{1,32}$")
    weights: dict[Category, float]
    half_life_days: int = Field(ge=30, le=3650)
    per_category_cap: int = Field(ge=1, le=100)
    member_cap: float = Field(gt=0)
    scale: float = Field(gt=0)
    corroboration: int = Field(
        ge=2, description="distinct members needed for the top bands; never fewer than 2"
    )
    thresholds: tuple[int, int, int, int]
    # Evidence checks: optional, so that a policy written before them still reads.
    match_distance: int = Field(
        default=31, ge=0, le=47, description="bits of 256 within which photos match"
    )
    match_quality: int = Field(
        default=50, ge=50, le=100, description="the lowest PDQ quality matched on"
    )
    match_other_listings: bool = Field(
        default=False, description="match other members' listing photos too"
    )

    @field_validator("weights")
    @classmethod
    def _every_category(cls, value: dict[Category, float]) -> dict[Category, float]:
        missing = sorted(c.value for c in Category if c not in value)
        if missing:
            raise ValueError(f"weights needs every category; missing: {', '.join(missing)}")
        if any(not 0 < w <= 100 for w in value.values()):
            raise ValueError("weights are above 0 and at most 100")
        return value

    @field_validator("thresholds")
    @classmethod
    def _increasing(cls, value: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        if not 1 <= value[0] < value[1] < value[2] < value[3] <= 100:
            raise ValueError("thresholds rise strictly, from at least 1 to at most 100")
        return value

    def policy(self) -> ScoringPolicy:
        return ScoringPolicy(
            version=self.version,
            weights=dict(self.weights),
            half_life=dt.timedelta(days=self.half_life_days),
            per_category_cap=self.per_category_cap,
            member_cap=self.member_cap,
            scale=self.scale,
            corroboration=self.corroboration,
            thresholds=self.thresholds,
            match_distance=self.match_distance,
            match_quality=self.match_quality,
            match_other_listings=self.match_other_listings,
        )


def document_of(policy: ScoringPolicy) -> dict[str, Any]:
    return {
        "version": policy.version,
        "weights": {c.value: w for c, w in policy.weights.items()},
        "half_life_days": policy.half_life.days,
        "per_category_cap": policy.per_category_cap,
        "member_cap": policy.member_cap,
        "scale": policy.scale,
        "corroboration": policy.corroboration,
        "thresholds": list(policy.thresholds),
        "match_distance": policy.match_distance,
        "match_quality": policy.match_quality,
        "match_other_listings": policy.match_other_listings,
    }


def parse(text: str) -> PolicyDocument:
    try:
        return PolicyDocument.model_validate_json(text)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'policy'}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidInput(f"the policy file is not valid: {problems}") from None


async def set_policy(session: AsyncSession, op: Operation, text: str) -> ScoringPolicy:
    """Put a new policy version in force. Versions are never reused or changed."""
    document = parse(text)
    if await session.get(StoredPolicy, document.version) is not None:
        raise Conflict(f"policy version {document.version!r} exists: versions never change")
    session.add(
        StoredPolicy(
            version=document.version,
            document=json.dumps(document.model_dump(mode="json"), sort_keys=True),
            created_at=op.now,
        )
    )
    await record(
        session,
        op.event(Tag.POLICY_SET, body={"version": document.version}),
        now=op.now,
    )
    await session.flush()
    return document.policy()


async def active(session: AsyncSession) -> ScoringPolicy:
    """The newest policy version, or the built-in default if none was ever set."""
    row = await session.scalar(
        sa.select(StoredPolicy).order_by(StoredPolicy.created_at.desc()).limit(1)
    )
    return ScoringPolicy() if row is None else parse(row.document).policy()


async def history(session: AsyncSession) -> list[dict[str, Any]]:
    rows = await session.scalars(sa.select(StoredPolicy).order_by(StoredPolicy.created_at))
    return [
        {"version": r.version, "created_at": r.created_at, **json.loads(r.document)} for r in rows
    ]


class PolicySource:
    """The policy in force, re-read at most every ``ttl`` seconds (a change made by
    `ledger policy set` is in force everywhere within that time). When it expires, the
    requests that find it so share one read."""

    def __init__(self, ttl: float = 5.0) -> None:
        self._ttl = ttl
        self._policy: ScoringPolicy | None = None
        self._read_at = 0.0
        self._reads: SingleFlight[None, ScoringPolicy] = SingleFlight()

    async def get(self, sessionmaker: async_sessionmaker[AsyncSession]) -> ScoringPolicy:
        """The policy in force; a session is opened only when it must be re-read."""
        if self._policy is not None and time.monotonic() - self._read_at < self._ttl:
            return self._policy
        return await self._reads.run(None, lambda: self._read(sessionmaker))

    async def _read(self, sessionmaker: async_sessionmaker[AsyncSession]) -> ScoringPolicy:
        started = time.monotonic()
        async with sessionmaker() as session:
            self._policy = await active(session)
        self._read_at = started
        return self._policy
