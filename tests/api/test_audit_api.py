"""The audit API: auditors read and export everything (and are audited doing so),
operators cannot, members get receipts for their own events that verify offline."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from refund_ledger_client import merkle
from refund_ledger_client.proofs import Invalid, verify_receipt
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.access.permissions import Role
from ledger.members import service as members
from ledger.runtime import Runtime
from tests.factories import Credential, bearer, get_token, make_credential, make_user, op

PASSWORD = "correct horse battery staple"


async def sign_in(client: httpx.AsyncClient, username: str, password: str = PASSWORD) -> str:
    response = await client.post(
        "/v1/auth/token", json={"username": username, "password": password}
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


@pytest.fixture
async def auditor(client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime) -> str:
    await make_user(session, runtime, username="audrey", role=Role.AUDITOR)
    return await sign_in(client, "audrey")


@pytest.fixture
async def operator(client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime) -> str:
    await make_user(session, runtime, username="olga", role=Role.OPERATOR)
    return await sign_in(client, "olga")


async def events(client: httpx.AsyncClient, token: str, **params: Any) -> dict[str, Any]:
    response = await client.get("/v1/audit/events", params=params, headers=bearer(token))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_sign_in_gives_a_role_token_and_wrong_passwords_are_refused(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime, auditor: str
) -> None:
    wrong = await client.post("/v1/auth/token", json={"username": "audrey", "password": "nope"})
    assert wrong.status_code == 401
    assert wrong.json()["type"] == "/problems/invalid-credentials"
    unknown = await client.post("/v1/auth/token", json={"username": "nobody", "password": "x"})
    assert unknown.json()["detail"] == wrong.json()["detail"]
    listed = await events(client, auditor, tag="auth:user:refused")
    reasons = [e["event"]["body"]["reason"] for e in listed["events"]]
    assert sorted(reasons) == ["unknown_user", "wrong username or password"]


async def test_auditors_list_events_with_filters_and_cursor_pagination(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime, auditor: str
) -> None:
    credential = await make_credential(session, runtime)
    for _ in range(3):
        await get_token(client, credential)
    member = str(credential.member.id)
    first = await events(client, auditor, member_id=member, tag="oauth:token:issued", limit=2)
    assert len(first["events"]) == 2
    assert first["next_cursor"]
    second = await events(
        client,
        auditor,
        member_id=member,
        tag="oauth:token:issued",
        limit=2,
        cursor=first["next_cursor"],
    )
    assert len(second["events"]) == 1
    assert second["next_cursor"] is None
    ids = [e["event"]["id"] for e in first["events"] + second["events"]]
    assert ids == sorted(ids, reverse=True)  # newest first, no repeats
    assert all(e["event"]["actor"]["member_id"] == member for e in first["events"])

    # The listing itself was recorded, with the filters used.
    reads = await events(client, auditor, tag="audit:events:listed")
    assert reads["events"][0]["event"]["body"]["member_id"] == member


async def test_auditors_export_json_lines(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime, auditor: str
) -> None:
    await make_credential(session, runtime)
    response = await client.get(
        "/v1/audit/events:export", params={"tag": "member:client:issued"}, headers=bearer(auditor)
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/jsonl")
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert [line["event"]["tag"] for line in lines] == ["member:client:issued"]
    exported = await events(client, auditor, tag="audit:events:exported")
    assert exported["events"][0]["event"]["body"] == {
        "tag": "member:client:issued",
        "format": "jsonl",
    }


@pytest.mark.parametrize(
    "params",
    [
        {"subject": "+8613800138000"},
        {"tag": "no:such:tag"},
        {"since": "2026-01-01T00:00:00"},
        {"cursor": "garbage"},
        {"limit": "0"},
    ],
)
async def test_bad_filters_are_clear_errors_that_echo_nothing(
    client: httpx.AsyncClient, auditor: str, params: dict[str, str]
) -> None:
    response = await client.get("/v1/audit/events", params=params, headers=bearer(auditor))
    assert response.status_code in {400, 422}
    assert response.headers["content-type"] == "application/problem+json"
    assert "8613800138000" not in response.text


async def test_operators_and_members_cannot_read_the_audit_log(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime, operator: str, auditor: str
) -> None:
    credential = await make_credential(session, runtime)
    member_token = await get_token(client, credential)
    for token in (operator, member_token):
        for path in ("/v1/audit/events", "/v1/audit/events:export"):
            response = await client.get(path, headers=bearer(token))
            assert response.status_code == 403, (path, response.text)
    refused = await events(client, auditor, tag="access:request:refused")
    assert {e["event"]["actor"]["type"] for e in refused["events"]} == {"user", "client"}


async def test_a_disabled_users_token_is_refused_at_once(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime, auditor: str
) -> None:
    await members.disable_user(session, op(runtime), "audrey")
    await session.commit()
    response = await client.get("/v1/audit/events", headers=bearer(auditor))
    assert response.status_code == 401


async def _token_event(client: httpx.AsyncClient, auditor: str, credential: Credential) -> int:
    listed = await events(
        client, auditor, member_id=str(credential.member.id), tag="oauth:token:issued"
    )
    event_id: int = listed["events"][0]["event"]["id"]
    return event_id


async def test_members_get_receipts_for_their_own_events_that_verify_offline(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime, auditor: str, tmp_path: Path
) -> None:
    mine = await make_credential(session, runtime)
    theirs = await make_credential(session, runtime)
    token = await get_token(client, mine)
    await get_token(client, theirs)
    my_event = await _token_event(client, auditor, mine)
    their_event = await _token_event(client, auditor, theirs)

    pending = await client.get(f"/v1/audit/events/{my_event}/receipt", headers=bearer(token))
    assert pending.status_code == 409
    assert pending.json()["current_state"] == "pending"
    assert pending.headers["retry-after"] == "1"
    await runtime.audit.integrate()
    # In the tree, but no checkpoint signs it yet: "come back", not "not yours" (404).
    unsigned = await client.get(f"/v1/audit/events/{my_event}/receipt", headers=bearer(token))
    assert unsigned.status_code == 409, unsigned.text
    assert unsigned.headers["retry-after"] == "60"

    await runtime.audit.checkpoint()
    response = await client.get(f"/v1/audit/events/{my_event}/receipt", headers=bearer(token))
    assert response.status_code == 200, response.text
    receipt = response.json()
    keys = (await client.get("/v1/audit/keys")).json()
    verifier_key = keys["keys"][0]["verifier_key"]
    event = verify_receipt(receipt, verifier_key)
    assert event["id"] == my_event
    assert event["actor"] == {
        "type": "client",
        "member_id": str(mine.member.id),
        "client_id": mine.client_id,
        "user_id": None,
    }

    tampered = dict(receipt, leaf_index=receipt["leaf_index"] ^ 1)
    with pytest.raises(Invalid):
        verify_receipt(tampered, verifier_key)
    # RFC 9162's checks on the inputs: integers in range, 32-byte hashes, the right types.
    short_hash = base64.b64encode(b"\x00" * 31).decode()
    malformed: list[object] = [
        dict(receipt, leaf_index=-128),
        dict(receipt, leaf_index=str(receipt["leaf_index"])),
        dict(receipt, leaf_index=receipt["leaf_index"] + 0.9),
        dict(receipt, leaf_index=True),
        dict(receipt, leaf_index=receipt["tree_size"]),
        dict(receipt, tree_size=str(receipt["tree_size"])),
        dict(receipt, inclusion_proof=[short_hash, *receipt["inclusion_proof"]]),
        dict(receipt, inclusion_proof="nope"),
        dict(receipt, leaf_hash="***"),
        {k: v for k, v in receipt.items() if k != "checkpoint"},
        [receipt],
    ]
    for bad in malformed:
        with pytest.raises(Invalid):
            verify_receipt(bad, verifier_key)
    for bad_key in ["", "no-plus-signs", verifier_key[:-4] + "AAAA", 7]:
        with pytest.raises(Invalid):
            verify_receipt(receipt, bad_key)
    # The command line: one line either way, no warning, no traceback.
    good_file, bad_file = tmp_path / "receipt.json", tmp_path / "bad.json"
    good_file.write_text(json.dumps(receipt))
    bad_file.write_text(json.dumps(dict(receipt, leaf_index=-128)))
    command = [sys.executable, "-W", "error", "-m", "refund_ledger_client.receipts"]
    for path, code, start in [(good_file, 0, "OK: "), (bad_file, 1, "INVALID: ")]:
        run = await asyncio.to_thread(
            subprocess.run,
            [*command, str(path), verifier_key],
            capture_output=True,
            text=True,
            check=False,
        )
        assert run.returncode == code, run.stderr
        output = (run.stdout + run.stderr).splitlines()
        assert len(output) == 1, output
        assert output[0].startswith(start), output

    other = await client.get(f"/v1/audit/events/{their_event}/receipt", headers=bearer(token))
    assert other.status_code == 404  # another member's event does not exist for this one
    by_leaf = await client.get(
        f"/v1/audit/leaves/{receipt['leaf_index']}/receipt", headers=bearer(auditor)
    )
    assert by_leaf.json()["event"] == receipt["event"]


async def test_checkpoints_and_consistency_proofs(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime, auditor: str
) -> None:
    await make_credential(session, runtime)
    first, _ = await runtime.audit.checkpoint()
    await make_credential(session, runtime)
    second, _ = await runtime.audit.checkpoint()
    latest = (await client.get("/v1/audit/checkpoints/latest", headers=bearer(auditor))).json()
    assert latest["tree_size"] == second.tree_size
    history = (await client.get("/v1/audit/checkpoints", headers=bearer(auditor))).json()
    assert [c["tree_size"] for c in history["checkpoints"]] == [second.tree_size, first.tree_size]
    at = await client.get(f"/v1/audit/checkpoints/{first.tree_size}", headers=bearer(auditor))
    assert at.json()["note"] == first.note
    response = await client.get(
        "/v1/audit/consistency",
        params={"old_size": first.tree_size, "new_size": second.tree_size},
        headers=bearer(auditor),
    )
    assert response.status_code == 200
    proof = [base64.b64decode(p) for p in response.json()["proof"]]
    merkle.verify_consistency(
        first.tree_size, second.tree_size, first.root_hash, second.root_hash, proof
    )
    bad = await client.get(
        "/v1/audit/consistency", params={"old_size": 5, "new_size": 10**9}, headers=bearer(auditor)
    )
    assert bad.status_code == 422


async def test_a_read_that_cannot_be_audited_is_not_answered(
    client: httpx.AsyncClient, runtime: Runtime, auditor: str
) -> None:
    await runtime.audit.writer.stop()
    response = await client.get("/v1/audit/events", headers=bearer(auditor))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert "events" not in response.json()
