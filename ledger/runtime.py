"""The long-lived parts a running ledger needs, built once from the settings."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field

from limits.aio.strategies import SlidingWindowCounterRateLimiter
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from ledger.access.keys import KeyRingSource
from ledger.access.secrets import SecretHasher
from ledger.access.sign_in_guard import SignInGuard
from ledger.access.state_cache import AccessCache, AccessListener
from ledger.access.tokens import TokenIssuer, TokenVerifier
from ledger.audit.cosigning import WitnessPeer
from ledger.audit.service import AuditLog
from ledger.clock import Clock, SystemClock
from ledger.config import Settings
from ledger.db import create_engine, create_sessionmaker, postgres_dsn
from ledger.evidence import keys as fingerprint_keys
from ledger.evidence.keys import FingerprintKey
from ledger.evidence.service import EvidenceChecks
from ledger.jobs import Jobs
from ledger.maintenance import MaintenanceLoop
from ledger.members import sealing
from ledger.members.sealing import SealingKey
from ledger.metrics import Operational, Sampler
from ledger.pseudonyms import keys as pseudonym_keys
from ledger.pseudonyms.keys import KEY_DIR as PSEUDONYM_KEY_DIR
from ledger.pseudonyms.keys import PseudonymKey, load_key
from ledger.pseudonyms.limits import EvaluationLimiter
from ledger.rate_limits import DATABASE, sliding_window
from ledger.reports.policy import ReportPolicy
from ledger.scoring.live import LiveListener, LiveSubjects
from ledger.scoring.policies import PolicySource
from ledger.scoring.service import PostgresReports, RiskQueries
from ledger.webhooks.delivery import DeliveryConfig, DeliveryWorker

TOKEN_RING = "token"  # noqa: S105  (a directory name, not a secret)
CHECKPOINT_RING = "checkpoint"
KEY_RINGS = (TOKEN_RING, CHECKPOINT_RING)
# The keys made once, each a module with KEY_DIR, KEY_FILE, ensure_key and load_key.
KEY_FILES = (pseudonym_keys, fingerprint_keys, sealing)


def make_hasher(settings: Settings) -> SecretHasher:
    return SecretHasher(
        time_cost=settings.argon2_time_cost,
        memory_cost_kib=settings.argon2_memory_cost_kib,
        parallelism=settings.argon2_parallelism,
        max_concurrent=settings.argon2_max_concurrent,
    )


@dataclass
class Runtime:
    settings: Settings
    clock: Clock
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    read_sessionmaker: async_sessionmaker[AsyncSession]
    hasher: SecretHasher
    token_keys: KeyRingSource
    issuer: TokenIssuer
    verifier: TokenVerifier
    audit: AuditLog
    policy: ReportPolicy
    maintenance: MaintenanceLoop
    access_cache: AccessCache
    access_listener: AccessListener | None
    # The risk query, on PostgreSQL's hot read where there is one.
    risk: RiskQueries
    # Evidence checks: near copies of claim photos (ledger/evidence/service.py).
    evidence: EvidenceChecks
    pseudonym_key: PseudonymKey
    fingerprint_key: FingerprintKey
    second_factor_key: SealingKey  # seals console users' TOTP secrets
    evaluation_limiter: EvaluationLimiter
    sign_in_guard: SignInGuard
    token_guard: SignInGuard
    # Rate-limit counters in the database commit on their own, outside any request's
    # transaction (a refusal must be counted though its request rolls back): a pool of
    # their own, so they never wait for a connection a request holds.
    limits_engine: AsyncEngine | None
    limiter: SlidingWindowCounterRateLimiter
    # Background jobs of this process (a verification started from the console).
    jobs: Jobs = field(default_factory=Jobs)
    # The figures operators alert on (ledger/metrics.py), and their sampler.
    metrics: Operational = field(default_factory=Operational)
    sampler: Sampler | None = None
    deliveries: DeliveryWorker | None = None  # webhooks, when this process sends them
    deliveries_task: asyncio.Task[None] | None = None
    # The subjects that may count, kept current by notifications (ledger/scoring/live.py).
    live_listener: LiveListener | None = None

    @classmethod
    def build(cls, settings: Settings, *, clock: Clock | None = None) -> Runtime:
        clock = clock or SystemClock()
        engine = create_engine(
            settings.resolved_database_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout_seconds,
        )
        # The audit log has its own small pool. Requests hold a pooled connection while
        # they wait for their audit event to commit; if the writer drew from the same
        # pool, a full pool would wait on itself.
        audit_engine = create_engine(settings.resolved_database_url, pool_size=3)
        keys = KeyRingSource(settings.resolved_key_dir / TOKEN_RING)
        policy = settings.report_policy()
        audit = AuditLog(
            engine=audit_engine,
            clock=clock,
            keys=KeyRingSource(settings.resolved_key_dir / CHECKPOINT_RING),
            origin=settings.audit_origin,
            checkpoint_every_leaves=settings.audit_checkpoint_every_leaves,
            checkpoint_every_seconds=settings.audit_checkpoint_every_seconds,
            interval_seconds=settings.audit_sequencer_interval_seconds,
            gap_grace=dt.timedelta(seconds=settings.audit_gap_grace_seconds),
            witnesses=[WitnessPeer.configured(peer) for peer in settings.audit_witnesses],
        )
        dsn = postgres_dsn(settings.resolved_database_url)
        access_cache = AccessCache()
        limits_engine = (
            create_engine(settings.resolved_database_url, pool_size=2)
            if settings.rate_limit_storage == DATABASE
            else None
        )
        limiter = sliding_window(settings.rate_limit_storage, limits_engine)
        read_sessionmaker = create_sessionmaker(engine, read_only=True)
        scoring_policies = PolicySource()  # one cache, for the risk and evidence queries
        hot = PostgresReports(dsn, size=settings.risk_pool_size) if dsn else None
        live = (
            LiveSubjects(held_capacity=settings.risk_held_subjects)
            if hot is not None and settings.live_subjects_enabled
            else None
        )
        fingerprint_key = fingerprint_keys.load_key(
            settings.resolved_key_dir / fingerprint_keys.KEY_DIR
        )
        return cls(
            settings=settings,
            clock=clock,
            engine=engine,
            sessionmaker=create_sessionmaker(engine),
            read_sessionmaker=read_sessionmaker,
            hasher=make_hasher(settings),
            token_keys=keys,
            issuer=TokenIssuer(
                keys=keys,
                issuer=settings.base_url,
                audience=settings.token_audience,
                ttl_seconds=settings.token_ttl_seconds,
                clock=clock,
            ),
            verifier=TokenVerifier(
                keys=keys,
                issuer=settings.base_url,
                audience=settings.token_audience,
                leeway_seconds=settings.token_leeway_seconds,
                max_lifetime_seconds=settings.token_ttl_seconds,
                clock=clock,
                cache_size=settings.token_cache_size,
            ),
            audit=audit,
            policy=policy,
            maintenance=MaintenanceLoop(
                create_sessionmaker(engine),
                clock=clock,
                policy=policy,
                interval_seconds=settings.maintenance_interval_seconds,
            ),
            access_cache=access_cache,
            access_listener=(
                AccessListener(dsn, access_cache)
                if dsn is not None and settings.access_cache_enabled
                else None
            ),
            risk=RiskQueries(
                sessionmaker=read_sessionmaker,
                hot=hot,
                report_policy=policy,
                scoring_policies=scoring_policies,
                live=live,
            ),
            live_listener=(
                LiveListener(dsn, live, hot.connection)
                if dsn is not None and hot is not None and live is not None
                else None
            ),
            evidence=EvidenceChecks(
                sessionmaker=read_sessionmaker,
                key=fingerprint_key,
                report_policy=policy,
                policies=scoring_policies,
                dsn=dsn,
            ),
            pseudonym_key=load_key(settings.resolved_key_dir / PSEUDONYM_KEY_DIR),
            fingerprint_key=fingerprint_key,
            second_factor_key=sealing.load_key(settings.resolved_key_dir / sealing.KEY_DIR),
            evaluation_limiter=EvaluationLimiter(
                settings.pseudonym_rate_limit,
                settings.pseudonym_rate_limits_by_member,
                limiter=limiter,
            ),
            sign_in_guard=SignInGuard(
                settings.sign_in_failures_per_account,
                settings.sign_in_failures_per_address,
                limiter=limiter,
            ),
            token_guard=SignInGuard(
                settings.token_failures_per_client,
                settings.token_failures_per_address,
                limiter=limiter,
                namespace="token",
            ),
            limits_engine=limits_engine,
            limiter=limiter,
        )

    def start(self) -> None:
        """Start the background work (audit writer and sequencer); needs a running loop."""
        self.audit.writer.on_batch = self.metrics.audit_batch_done
        engines = {"main": self.engine, "audit": self.audit.engine}
        if self.limits_engine is not None:
            engines["limits"] = self.limits_engine
        self.sampler = Sampler(
            self.metrics,
            queue_length=lambda: self.audit.writer.queue_length,
            engines=engines,
            live=self.risk.live,
        )
        self.sampler.start()
        self.audit.start(sequencer=self.settings.audit_sequencer_enabled)
        if self.settings.maintenance_enabled:
            self.maintenance.start()
        if self.settings.webhook_delivery_enabled:
            self.deliveries = DeliveryWorker(
                self.sessionmaker,
                self.second_factor_key,
                clock=self.clock,
                config=DeliveryConfig.of(self.settings),
                poll_seconds=self.settings.webhook_poll_seconds,
            )
            self.deliveries_task = asyncio.create_task(self.deliveries.run())
        if self.access_listener is not None:
            self.access_listener.start()
        if self.live_listener is not None:
            self.live_listener.start()
        self.evidence.indexes.start()

    async def close(self) -> None:
        if self.deliveries is not None:
            self.deliveries.stop()
            if self.deliveries_task is not None:
                await self.deliveries_task
            await self.deliveries.close()
        if self.sampler is not None:
            await self.sampler.stop()
        if self.access_listener is not None:
            await self.access_listener.stop()
        if self.live_listener is not None:
            await self.live_listener.stop()
        await self.jobs.close()
        await self.risk.close()
        await self.evidence.indexes.close()
        await self.maintenance.stop()
        await self.audit.stop()
        await self.audit.engine.dispose()
        if self.limits_engine is not None:
            await self.limits_engine.dispose()
        await self.engine.dispose()
