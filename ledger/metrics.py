"""The metrics operators alert on (Prometheus naming), beside the HTTP ones of
api/middleware.py. docs/operations.md lists them with example alert rules.

Two kinds:

- **Of this process**, kept current as things happen or sampled every second by
  ``Sampler``: the audit writer's queue and batch sizes, the database pools' connections
  in use and callers waiting for one, rate-limit and lockout refusals.
- **Of the ledger**, read from the database when /metrics is scraped (``ledger_state``),
  so any process answers the same: audit events waiting for the tree (the sequencer's
  lag), the age of the newest checkpoint, dispute items past their deadline. Each is one
  indexed read, bounded however large the ledger grows.

With several worker processes (``ledger serve --workers N``), prometheus_client's
multiprocess mode adds up the per-process figures: ``ledger serve`` sets
``PROMETHEUS_MULTIPROC_DIR`` for its workers, and the gauges say how to combine
(``livesum``: the sum over live processes).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from ledger.audit.models import AuditCheckpoint, AuditEventRow, AuditSequencerState
from ledger.disputes.models import Dispute, DisputeItem, Resolution
from ledger.scoring.live import LiveSubjects
from ledger.webhooks.models import DeliveryState, EndpointState, WebhookDelivery, WebhookEndpoint

log = logging.getLogger("ledger.metrics")

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Counting waiting events stops here: past it the alert has long fired.
LAG_CAP = 1_000_000


class Operational:
    """The process's own figures, in a registry of their own."""

    def audit_batch_done(self, size: int, committed: bool) -> None:  # noqa: FBT001
        if committed:
            self.audit_batch.observe(size)
        else:
            self.audit_batch_failures.inc()

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.audit_queue = Gauge(
            "ledger_audit_writer_queue_length",
            "Audit events waiting for the writer's next batch (sampled every second).",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.audit_batch = Histogram(
            "ledger_audit_writer_batch_size",
            "Events per committed audit batch (group commit: one commit per batch).",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
            registry=r,
        )
        self.audit_batch_failures = Counter(
            "ledger_audit_writer_batch_failures_total",
            "Audit batches that failed to commit (their requests were answered 503).",
            registry=r,
        )
        self.pool_in_use = Gauge(
            "ledger_db_pool_connections_in_use",
            "Database connections checked out, by pool (sampled every second).",
            ["pool"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.pool_size = Gauge(
            "ledger_db_pool_size",
            "Connections a pool keeps, by pool.",
            ["pool"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.pool_waiting = Gauge(
            "ledger_db_pool_waiting",
            "Callers waiting for a database connection, by pool (sampled every second).",
            ["pool"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.live_subjects = Gauge(
            "ledger_risk_live_subjects",
            "Subjects with anything that may count in the last load of the live set, "
            "ledger/scoring/live.py (the fewest of any process; sampled every second).",
            registry=r,
            multiprocess_mode="livemin",
        )
        self.live_off = Gauge(
            "ledger_risk_live_subjects_off",
            "Processes whose live-subject set is off (loading, or its listening connection "
            "lost): every risk query there reads the database.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.answered_without_read = Counter(
            "ledger_risk_answered_without_read_total",
            "Risk answers for subjects with nothing that may count, given without a read.",
            registry=r,
        )
        self.answered_from_held = Counter(
            "ledger_risk_answered_from_held_total",
            "Risk answers for subjects with reports or a marker, scored from the rows this "
            "process held since its last read of them (no read: nothing changed since).",
            registry=r,
        )
        self.held_subjects = Gauge(
            "ledger_risk_held_subjects",
            "Subjects whose rows a process holds for the risk query (the most of any "
            "process; bounded by LEDGER_RISK_HELD_SUBJECTS).",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.rate_limited = Counter(
            "ledger_rate_limit_refusals_total",
            "Requests refused by a rate limit (429), by limit.",
            ["limit"],
            registry=r,
        )
        self.lockouts = Counter(
            "ledger_lockout_refusals_total",
            "Authentication attempts refused because an account, client or address is "
            "locked after too many failures, by kind and what is locked.",
            ["kind", "scope"],
            registry=r,
        )


def pool_figures(engine: AsyncEngine) -> tuple[int, int, int] | None:
    """(size, in use, waiting) of a queue pool; None for pools without a queue (SQLite's).
    Waiting is read from the pool's asyncio queue: SQLAlchemy counts it nowhere else."""
    pool: Any = engine.sync_engine.pool
    if not hasattr(pool, "checkedout"):
        return None
    queue = getattr(getattr(pool, "_pool", None), "_queue", None)
    waiting = len(getattr(queue, "_getters", ()))
    return pool.size(), pool.checkedout(), waiting


class Sampler:
    """Every second, copies the process's gauges from what they measure."""

    def __init__(
        self,
        metrics: Operational,
        *,
        queue_length: Callable[[], int],
        engines: dict[str, AsyncEngine],
        live: LiveSubjects | None = None,
        interval: float = 1.0,
    ) -> None:
        self.metrics = metrics
        self.queue_length = queue_length
        self.engines = engines
        self.live = live
        self._without_read = 0
        self._from_held = 0
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    def sample(self) -> None:
        self.metrics.audit_queue.set(self.queue_length())
        for name, engine in self.engines.items():
            figures = pool_figures(engine)
            if figures is not None:
                size, in_use, waiting = figures
                self.metrics.pool_size.labels(name).set(size)
                self.metrics.pool_in_use.labels(name).set(in_use)
                self.metrics.pool_waiting.labels(name).set(waiting)
        if self.live is not None:
            self.metrics.live_subjects.set(self.live.stats.loaded)
            self.metrics.live_off.set(0 if self.live.enabled else 1)
            answered, self._without_read = self._without_read, self.live.answered_without_read
            self.metrics.answered_without_read.inc(self._without_read - answered)
            answered, self._from_held = self._from_held, self.live.answered_from_held
            self.metrics.answered_from_held.inc(self._from_held - answered)
            self.metrics.held_subjects.set(self.live.held_count)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="metrics-sampler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if os.environ.get(MULTIPROCESS_ENV):
            from prometheus_client import multiprocess  # noqa: PLC0415

            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]  # its live gauges stop counting

    async def _run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self.interval)


async def ledger_state(session: AsyncSession, now: dt.datetime) -> list[GaugeMetricFamily]:
    """The ledger-wide gauges, read now (one indexed read each)."""
    floor = await session.scalar(sa.select(AuditSequencerState.floor_event_id))
    waiting = sa.select(AuditEventRow.id).where(AuditEventRow.id > (floor or 0)).limit(LAG_CAP)
    lag = await session.scalar(sa.select(sa.func.count()).select_from(waiting.subquery()))
    newest = await session.scalar(
        sa.select(AuditCheckpoint.created_at).order_by(AuditCheckpoint.tree_size.desc()).limit(1)
    )
    overdue = await session.scalar(
        sa.select(sa.func.count())
        .select_from(DisputeItem)
        .join(Dispute, Dispute.id == DisputeItem.dispute_id)
        .where(DisputeItem.resolution == Resolution.OPEN, Dispute.deadline < now)
    )
    pending = await session.scalar(
        sa.select(sa.func.count())
        .select_from(DisputeItem)
        .where(DisputeItem.resolution == Resolution.OPEN)
    )
    # The oldest delivery due and not sent to an endpoint that is on: how far behind the
    # webhook workers are (an endpoint turned off holds its deliveries on purpose).
    oldest_due = await session.scalar(
        sa.select(sa.func.min(WebhookDelivery.next_attempt_at))
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(
            WebhookDelivery.state == DeliveryState.PENDING,
            WebhookDelivery.next_attempt_at <= now,
            WebhookEndpoint.state == EndpointState.ENABLED,
        )
    )
    turned_off = await session.scalar(
        sa.select(sa.func.count())
        .select_from(WebhookEndpoint)
        .where(
            WebhookEndpoint.state == EndpointState.DISABLED,
            WebhookEndpoint.disabled_reason == "failing",
            WebhookEndpoint.removed_at.is_(None),
        )
    )
    return [
        _gauge(
            "ledger_webhook_oldest_due_seconds",
            "Seconds the oldest webhook delivery due has waited (0 when none waits).",
            (now - oldest_due).total_seconds() if oldest_due is not None else 0.0,
        ),
        _gauge(
            "ledger_webhook_endpoints_turned_off",
            "Members' event endpoints the ledger turned off after sustained failure.",
            turned_off or 0,
        ),
        _gauge(
            "ledger_audit_events_unsequenced",
            "Audit events recorded but not yet in the Merkle tree (the sequencer's lag).",
            lag or 0,
        ),
        _gauge(
            "ledger_audit_checkpoint_age_seconds",
            "Seconds since the newest signed checkpoint (NaN before the first).",
            (now - newest).total_seconds() if newest is not None else float("nan"),
        ),
        _gauge(
            "ledger_disputes_overdue",
            "Disputed reports unanswered past their deadline and not yet suppressed.",
            overdue or 0,
        ),
        _gauge("ledger_disputes_pending", "Disputed reports awaiting an answer.", pending or 0),
    ]


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


class Families(Collector):
    """Metric families computed beforehand (the database is read asynchronously, and a
    collector is called synchronously)."""

    def __init__(self, families: Iterable[GaugeMetricFamily]) -> None:
        self.families = list(families)

    def collect(self) -> Iterable[GaugeMetricFamily]:
        return self.families


def registry_of(collector: Collector) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(collector)
    return registry


def prepare_multiprocess_dir(data_dir: Path) -> Path:
    """A fresh directory for the workers' metric files (old ones would be added in)."""
    folder = data_dir / "metrics"
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()
    return folder
