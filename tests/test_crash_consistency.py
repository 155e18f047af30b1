"""kill -9 under load: no acknowledged write is lost, no batch is half written, and no
answer was sent without its audit event. A real `ledger serve` on PostgreSQL, killed and
restarted while clients file batches and query risk."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.audit.models import AuditEventRow
from ledger.clock import FrozenClock
from ledger.config import Settings
from ledger.reports.models import Report
from ledger.runtime import Runtime
from tests.api.test_reports import payload, pseudonym
from tests.factories import make_credential
from tests.ledger.audit.test_verify import run_verify
from tests.live import free_port
from tests.test_end_to_end import LEDGER

pytestmark = pytest.mark.slow

ROUNDS = 3
LOAD_SECONDS = 1.5
WORKERS = 8
BATCH = 5


@dataclass
class Ledger:
    """A `ledger serve` process that can be killed and started again."""

    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.env['LEDGER_PORT']}"

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([LEDGER, "serve"], env=self.env, stdout=out, stderr=out)
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            assert self.proc.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, "the server did not become ready"
            time.sleep(0.1)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)


@pytest.fixture
def ledger(settings: Settings, database_url: str, tmp_path: Path) -> Iterator[Ledger]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env |= {
        "LEDGER_DATA_DIR": str(settings.data_dir),
        "LEDGER_DATABASE_URL": database_url,
        "LEDGER_PORT": str(free_port()),
        "LEDGER_ARGON2_TIME_COST": "1",
        "LEDGER_ARGON2_MEMORY_COST_KIB": "64",
        "LEDGER_ARGON2_PARALLELISM": "1",
        "LEDGER_AUDIT_CHECKPOINT_EVERY_SECONDS": "0.5",
    }
    server = Ledger(env, tmp_path / "serve.log")
    yield server
    if server.proc is not None and server.proc.poll() is None:
        server.kill()


@dataclass
class Seen:
    batches: list[list[str]] = field(default_factory=list)  # every batch sent: its case_refs
    filed: set[str] = field(default_factory=set)  # report ids acknowledged
    answered: set[int] = field(default_factory=set)  # audit event ids of risk answers


async def _load(base: str, token: str, clock: FrozenClock, seen: Seen, until: float) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    subject = pseudonym()

    async def worker(n: int) -> None:
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=5) as http:
            i = 0
            while time.monotonic() < until:
                i += 1
                try:
                    if i % 2:
                        reports: list[dict[str, Any]] = [
                            payload(clock, subject=subject) for _ in range(BATCH)
                        ]
                        seen.batches.append([r["case_ref"] for r in reports])
                        key = {"Idempotency-Key": f"crash-{n}-{i}-{os.urandom(3).hex()}"}
                        answer = await http.post(
                            "/v1/reports:batch", json={"reports": reports}, headers=key
                        )
                        if answer.status_code == 200:
                            seen.filed |= {it["report_id"] for it in answer.json()["items"]}
                    else:
                        body = {"subject": subject, "purpose": "refund_review", "reference": "r"}
                        answer = await http.post("/v1/risk/query", json=body)
                        if answer.status_code == 200:
                            seen.answered.add(answer.json()["audit_event_id"])
                except httpx.TransportError:
                    await asyncio.sleep(0.05)  # the server is down: its answer never came

    await asyncio.gather(*(worker(n) for n in range(WORKERS)))


async def test_kill_9_under_load_loses_nothing_acknowledged(
    ledger: Ledger,
    session: AsyncSession,
    runtime: Runtime,
    clock: FrozenClock,
    backend: str,
) -> None:
    if backend != "postgresql":
        pytest.skip("the crash rounds run on PostgreSQL, the production database")
    credential = await make_credential(session, runtime)
    seen = Seen()
    for _ in range(ROUNDS):
        await asyncio.to_thread(ledger.start)
        token = (
            await asyncio.to_thread(
                httpx.post,
                f"{ledger.url}/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(credential.client_id, credential.secret),
            )
        ).json()["access_token"]
        load = asyncio.create_task(
            _load(ledger.url, token, clock, seen, time.monotonic() + LOAD_SECONDS + 1)
        )
        await asyncio.sleep(LOAD_SECONDS)
        ledger.kill()  # mid-load: requests in flight, a batch or a checkpoint half done
        await load
    assert seen.filed
    assert seen.answered

    async with runtime.read_sessionmaker() as read:
        reports = {
            case_ref: (str(rid), event)
            for case_ref, rid, event in await read.execute(
                sa.select(Report.case_ref, Report.id, Report.audit_event_id)
            )
        }
        events = set(await read.scalars(sa.select(AuditEventRow.id)))
    # Every acknowledged report is there, with its audit event.
    stored_ids = {rid for rid, _ in reports.values()}
    assert seen.filed <= stored_ids
    assert all(event in events for _, event in reports.values())
    # A batch is one transaction: all of it, or none of it.
    for batch in seen.batches:
        assert sum(case_ref in reports for case_ref in batch) in {0, BATCH}, batch
    # No risk answer went out without its audit event, committed.
    assert seen.answered <= events
    # And the log that survived three crashes verifies.
    await runtime.audit.checkpoint()
    report = await run_verify(runtime)
    assert report.ok, report.problems
