"""Checkpoints kept outside the ledger: a cosigning witness (C2SP tlog-witness) over real
HTTP, cosignatures served with the checkpoint, and a deleted tail named by verify."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from refund_ledger_client import merkle

from api.app import create_app
from api.witness import create_witness_app
from ledger.access.keys import KeyRing
from ledger.audit import notes
from ledger.audit.events import Actor, AuditEvent
from ledger.audit.tags import Tag
from ledger.audit.verify import kept_checkpoints, verify
from ledger.audit.witness import (
    SIZE_TYPE,
    Witness,
    cosign,
    cosigner_key_id,
    cosigner_verifier_key,
    parse_cosigner_key,
    request_body,
    verify_cosignature,
)
from ledger.cli import main
from ledger.clock import FrozenClock
from ledger.config import Settings
from ledger.db import create_snapshot_sessionmaker
from ledger.runtime import CHECKPOINT_RING, Runtime
from tests.live import serving_app
from tests.tampering import tamper

ORIGIN = "refund-ledger/audit"


def test_cosignatures_follow_c2sp_tlog_cosignature_v1() -> None:
    key = Ed25519PrivateKey.generate()
    body = f"{ORIGIN}\n7\n{base64.b64encode(bytes(32)).decode()}\n"
    line = cosign(body, "w.example/1", key, 1_679_315_147)
    assert line.startswith("\u2014 w.example/1 ")
    raw = base64.b64decode(line.split(" ")[2])
    assert raw[:4] == cosigner_key_id("w.example/1", key.public_key())
    assert int.from_bytes(raw[4:12], "big") == 1_679_315_147
    # The signed message: the header line, the time line, then the checkpoint's body.
    key.public_key().verify(raw[12:], b"cosignature/v1\ntime 1679315147\n" + body.encode())
    assert verify_cosignature(body, line, "w.example/1", key.public_key()) == 1_679_315_147
    with pytest.raises(ValueError, match="does not verify"):
        verify_cosignature(body.replace("\n7\n", "\n8\n"), line, "w.example/1", key.public_key())


@dataclass
class Log:
    """A toy log, signed by a real key, to drive a witness with."""

    key: Ed25519PrivateKey
    tree: merkle.MemoryTree

    @property
    def verifier_key(self) -> str:
        return notes.verifier_key(ORIGIN, self.key.public_key())

    def checkpoint(self, size: int, *, root: bytes | None = None) -> str:
        encoded = base64.b64encode(root or self.tree.root(size)).decode()
        text = f"{ORIGIN}\n{size}\n{encoded}\ntime 2026-12-01T00:00:00Z\n"
        return notes.sign(text, ORIGIN, self.key)


@pytest.fixture
def toy() -> Log:
    tree = merkle.MemoryTree()
    for n in range(20):
        tree.append_data(f"leaf {n}".encode())
    return Log(Ed25519PrivateKey.generate(), tree)


@pytest.fixture
def witness(tmp_path: Path, toy: Log) -> Witness:
    Witness.create_key(tmp_path / "w")
    return Witness.load(tmp_path / "w", name="w.example/1", logs={ORIGIN: toy.verifier_key})


def _proof(toy: Log, old: int, new: int) -> list[bytes]:
    return merkle.consistency_proof(toy.tree.get, old, new)


async def test_a_witness_cosigns_only_consistent_extensions(witness: Witness, toy: Log) -> None:
    first = await witness.add_checkpoint(request_body(0, [], toy.checkpoint(5)))
    assert first.status == 200, first.body
    stale = await witness.add_checkpoint(request_body(0, [], toy.checkpoint(9)))
    assert (stale.status, stale.body, stale.content_type) == (409, "5\n", SIZE_TYPE)
    grown = await witness.add_checkpoint(request_body(5, _proof(toy, 5, 9), toy.checkpoint(9)))
    assert grown.status == 200, grown.body
    # A fork: a size-12 tree whose proof from 9 does not hold.
    forged = await witness.add_checkpoint(
        request_body(9, _proof(toy, 9, 12), toy.checkpoint(12, root=bytes(32)))
    )
    assert forged.status == 422
    # The same size with another root is a fork too.
    same = await witness.add_checkpoint(request_body(9, [], toy.checkpoint(9, root=bytes(32))))
    assert same.status == 409
    shrunk = await witness.add_checkpoint(request_body(9, [], toy.checkpoint(4)))
    assert shrunk.status == 400
    assert "\n9\n" in (witness.latest(ORIGIN) or "")  # still what it last cosigned


async def test_a_witness_refuses_unknown_logs_bad_signatures_and_garbage(
    witness: Witness, toy: Log
) -> None:
    stranger = Log(Ed25519PrivateKey.generate(), toy.tree)
    assert (await witness.add_checkpoint(request_body(0, [], stranger.checkpoint(3)))).status == 403
    other = notes.sign(
        "other/log\n3\n" + base64.b64encode(bytes(32)).decode() + "\n", "other/log", toy.key
    )
    assert (await witness.add_checkpoint(request_body(0, [], other))).status == 404
    for garbage in ["", "old x\n\n", "old 01\n\n" + toy.checkpoint(3), "old 0\nnot-base64!\n\n"]:
        assert (await witness.add_checkpoint(garbage)).status == 400


@pytest.fixture
def witness_url(tmp_path: Path, settings: Settings) -> Iterator[tuple[str, str]]:
    """A witness of this ledger, over a real socket: (URL, its verifier key)."""
    ring = KeyRing.load(settings.resolved_key_dir / CHECKPOINT_RING)
    vkey = notes.verifier_key(settings.audit_origin, ring.signing_key.private_key.public_key())
    directory = tmp_path / "witness"
    Witness.create_key(directory)
    witness = Witness.load(
        directory, name="regulator.example/w", logs={settings.audit_origin: vkey}
    )
    with serving_app(create_witness_app(witness)) as url:
        yield url, witness.verifier_key


@pytest.fixture
async def witnessed(
    settings: Settings, clock: FrozenClock, witness_url: tuple[str, str]
) -> AsyncIterator[FastAPI]:
    url, key = witness_url
    app = create_app(
        settings.model_copy(update={"audit_witnesses": [{"url": url, "key": key}]}), clock=clock
    )
    async with app.router.lifespan_context(app):
        yield app


async def _events(runtime: Runtime, n: int) -> None:
    for i in range(n):
        await runtime.audit.writer.write(
            AuditEvent(tag=Tag.AUDIT_PROOF_READ, actor=Actor.system(), body={"n": i})
        )


async def test_checkpoints_are_cosigned_and_a_deleted_tail_is_named(
    witnessed: FastAPI, witness_url: tuple[str, str], database_url: str, tmp_path: Path
) -> None:
    runtime: Runtime = witnessed.state.runtime
    url, key = witness_url
    name, public = parse_cosigner_key(key)
    await _events(runtime, 7)
    first, _ = await runtime.audit.checkpoint()
    assert len(first.cosignatures) == 1
    await _events(runtime, 6)
    second, _ = await runtime.audit.checkpoint()  # sent with a proof from the first
    assert len(second.cosignatures) == 1
    body = second.note.rpartition("\n\n")[0] + "\n"
    verify_cosignature(body, second.cosignatures[0], name, public)

    transport = httpx.ASGITransport(app=witnessed)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        keys = (await http.get("/v1/audit/keys")).json()
    vkey = keys["keys"][0]["verifier_key"]
    served = second.cosigned_note
    notes.open_note(served, *notes.parse_verifier_key(vkey))  # still the ledger's valid note
    assert served.count("\u2014 ") == 2

    ring = KeyRing.load(runtime.audit.keys.directory)
    origin = runtime.settings.audit_origin

    async def check(kept_text: str | None) -> list[str]:
        kept = (
            kept_checkpoints(kept_text, ring=ring, origin=origin, source="the witness")
            if kept_text
            else []
        )
        async with create_snapshot_sessionmaker(runtime.engine)() as session:
            report = await verify(
                session, ring=ring, origin=origin, now=runtime.clock.now(), kept=kept
            )
        return [p.what for p in report.problems]

    async with httpx.AsyncClient() as http:
        witnessed_text = (await http.get(f"{url}/checkpoint", params={"origin": origin})).text
    assert await check(witnessed_text) == []

    # The operator deletes the newest checkpoint and everything after the first one.
    size = first.tree_size
    await tamper(
        database_url,
        [
            f"DELETE FROM audit_checkpoints WHERE tree_size > {size}",
            f"DELETE FROM audit_cosignatures WHERE tree_size > {size}",
            f"DELETE FROM audit_events WHERE id IN (SELECT event_id FROM audit_leaves "
            f"WHERE leaf_index >= {size})",
            f"DELETE FROM audit_nodes WHERE (idx + 1) * (1 << level) > {size}",
            f"DELETE FROM audit_leaves WHERE leaf_index >= {size}",
        ],
    )
    assert await check(None) == []  # the database alone cannot tell
    problems = await check(witnessed_text)
    assert len(problems) == 1
    assert f"holds {size} leaves" in problems[0]
    assert f"size {second.tree_size}" in problems[0]
    assert "tail of the log was deleted" in problems[0]

    # The same from the command line, against the witness's URL.
    env = {
        "LEDGER_DATA_DIR": str(runtime.settings.data_dir),
        "LEDGER_DATABASE_URL": database_url,
    }
    result = await asyncio.to_thread(
        CliRunner(env=env).invoke, main, ["audit", "verify", "--against", url]
    )
    assert result.exit_code == 1, result.output
    assert "tail of the log was deleted" in result.stderr
    saved = tmp_path / "kept.json"
    saved.write_text(json.dumps({"checkpoint": {"note": served}}))
    result = await asyncio.to_thread(
        CliRunner(env=env).invoke, main, ["audit", "verify", "--against", str(saved)]
    )
    assert result.exit_code == 1
    assert "tail of the log was deleted" in result.stderr


async def test_a_witness_that_is_down_costs_only_its_cosignature(
    settings: Settings, clock: FrozenClock
) -> None:
    key = Witness.create_key(settings.data_dir / "gone")
    peer = {"url": "http://127.0.0.1:9", "key": cosigner_verifier_key("gone/w", key.public_key())}
    app = create_app(settings.model_copy(update={"audit_witnesses": [peer]}), clock=clock)
    async with app.router.lifespan_context(app):
        runtime: Runtime = app.state.runtime
        await _events(runtime, 3)
        view, created = await runtime.audit.checkpoint()
    assert created
    assert view.cosignatures == ()
