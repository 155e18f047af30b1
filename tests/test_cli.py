"""The `ledger` command: JSON out for scripts, errors on stderr with a non-zero exit."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from ledger.cli import main
from tests.tampering import tamper


@pytest.fixture
def env(tmp_path: Path, database_url: str) -> dict[str, str]:
    return {
        "LEDGER_DATA_DIR": str(tmp_path / "data"),
        "LEDGER_DATABASE_URL": database_url,
        "LEDGER_ARGON2_TIME_COST": "1",
        "LEDGER_ARGON2_MEMORY_COST_KIB": "64",
        "LEDGER_ARGON2_PARALLELISM": "1",
    }


def run(env: dict[str, str], *args: str, stdin: str | None = None) -> Result:
    return CliRunner(env=env).invoke(main, list(args), input=stdin)


def ok(env: dict[str, str], *args: str, stdin: str | None = None) -> Any:
    result = run(env, *args, stdin=stdin)
    assert result.exit_code == 0, result.output + result.stderr
    return json.loads(result.stdout)


def test_init_makes_private_keys_and_migrates(env: dict[str, str], tmp_path: Path) -> None:
    result = run(env, "init", "--allow-superuser")
    assert result.exit_code == 0, result.stderr
    ring = tmp_path / "data" / "keys" / "token"
    assert stat.S_IMODE(ring.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in ring.iterdir())
    for made_once in ("pseudonym", "evidence", "second-factor"):
        key = tmp_path / "data" / "keys" / made_once / "key.json"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    current = ok(env, "db", "current")
    assert current["revision"] == current["head"]


def test_init_demo_prints_the_secret_once(env: dict[str, str]) -> None:
    first = run(env, "init", "--demo", "--allow-superuser")
    assert first.exit_code == 0, first.stderr
    assert "curl -s -u cl_" in first.stdout
    second = run(env, "init", "--demo", "--allow-superuser")
    assert second.exit_code == 0
    assert "lsk_" not in second.stdout
    assert "no demo member created" in second.stdout


def test_members_clients_and_keys_walk(env: dict[str, str]) -> None:
    run(env, "init", "--allow-superuser")
    member = ok(env, "members", "create", "--name", "acme", "--display-name", "艾克米商城")
    assert (member["name"], member["display_name"]) == ("acme", "艾克米商城")
    assert member["status"] == "active"
    assert [m["id"] for m in ok(env, "members", "list")] == [member["id"]]

    issued = ok(
        env, "clients", "issue", "--member", member["id"], "--scope", "reports:write risk:read"
    )
    assert issued["client_id"].startswith("cl_")
    assert issued["client_secret"].startswith("lsk_")
    assert issued["scopes"] == ["reports:write", "risk:read"]
    listed = ok(env, "clients", "list", "--member", member["id"])
    assert [c["client_id"] for c in listed] == [issued["client_id"]]
    assert "client_secret" not in listed[0]
    assert "secret_hash" not in listed[0]

    revoked = ok(env, "clients", "revoke", issued["client_id"])
    assert revoked["revoked_at"] is not None
    assert ok(env, "members", "suspend", member["id"])["status"] == "suspended"
    assert ok(env, "members", "reinstate", member["id"])["status"] == "active"

    (first,) = ok(env, "keys", "list")
    rotated = ok(env, "keys", "rotate")
    rows = ok(env, "keys", "list")
    assert [(r["kid"], r["signing"]) for r in rows] == [
        (first["kid"], False),
        (rotated["kid"], True),
    ]
    rows = ok(env, "keys", "retire", "--", first["kid"])
    assert rows[0]["retired_at"] is not None


def test_webhook_endpoints_from_the_command_line(env: dict[str, str]) -> None:
    run(env, "init", "--allow-superuser")
    member = ok(env, "members", "create", "--name", "hooked")
    added = ok(
        env,
        "webhooks", "add", "--member", member["id"],
        "--url", "https://risk.example.com/ledger-events", "--events", "dispute.opened",
    )  # fmt: skip
    assert added["secret"].startswith("whsec_")
    assert added["event_types"] == ["dispute.opened"]
    (listed,) = ok(env, "webhooks", "list", "--member", member["id"])
    assert listed["id"] == added["id"]
    assert "secret" not in listed
    rotated = ok(env, "webhooks", "rotate", "--member", member["id"], added["id"])
    assert rotated["secret"] != added["secret"]
    assert rotated["previous_secret_until"] is not None
    off = ok(env, "webhooks", "disable", "--member", member["id"], added["id"])
    assert (off["state"], off["disabled_reason"]) == ("disabled", "by_member")
    assert ok(env, "webhooks", "enable", "--member", member["id"], added["id"])["state"] == (
        "enabled"
    )
    replayed = ok(
        env, "webhooks", "replay", "--member", member["id"],
        "--since", "2026-01-01T00:00:00+00:00", added["id"],
    )  # fmt: skip
    assert replayed == {"replayed": 0, "last_event_id": None}
    assert ok(env, "webhooks", "deliveries", "--member", member["id"]) == []
    refused = run(
        env, "webhooks", "add", "--member", member["id"], "--url", "http://risk.example.com/x"
    )
    assert refused.exit_code == 1
    assert "https://" in refused.stderr
    ok(env, "webhooks", "remove", "--member", member["id"], added["id"])
    assert ok(env, "webhooks", "list", "--member", member["id"]) == []


def test_users_create_reads_the_password_from_stdin(env: dict[str, str]) -> None:
    run(env, "init", "--allow-superuser")
    user = ok(
        env,
        "users",
        "create",
        "--username",
        "olga",
        "--role",
        "operator",
        "--password-stdin",
        stdin="a long enough password\n",
    )
    assert user["role"] == "operator"
    assert "a long enough password" not in json.dumps(user)
    assert "password_hash" not in json.dumps(user)
    assert user["must_change_password"] is True  # chosen for her: she changes it first
    assert [u["username"] for u in ok(env, "users", "list")] == ["olga"]
    reset = ok(env, "users", "reset-password", "--username", "olga")
    assert reset["username"] == "olga"
    assert len(reset["password"]) >= 24
    removed = ok(env, "users", "reset-second-factor", "--username", "olga")
    assert removed["second_factor"] is False
    assert ok(env, "users", "disable", "olga")["disabled_at"] is not None
    help_text = run(env, "users", "create", "--help").output
    assert "Prompts for a first password" in help_text
    assert "--password-stdin" in help_text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["members", "suspend", "not-a-uuid"], "UUID"),
        (["members", "suspend", "00000000-0000-0000-0000-000000000000"], "no member"),
        (["members", "create", "--name", "Bad Name"], "lowercase"),
        (
            [
                "clients",
                "issue",
                "--member",
                "00000000-0000-0000-0000-000000000000",
                "--scope",
                "admin",
            ],
            "unknown scope",
        ),
        (["clients", "revoke", "cl_nothing"], "no client"),
        (["keys", "retire", "nope"], "no key"),
        # Key ids are base64url and may start with '-': after '--' that is an id.
        (["keys", "retire", "--", "-Tnot-a-key"], "no key"),
    ],
)
def test_errors_go_to_stderr_with_a_nonzero_exit(
    env: dict[str, str], args: list[str], message: str
) -> None:
    run(env, "init", "--allow-superuser")
    result = run(env, *args)
    assert result.exit_code != 0
    assert message in result.stderr
    assert result.stdout == ""


def test_a_duplicate_member_is_an_error(env: dict[str, str]) -> None:
    run(env, "init", "--allow-superuser")
    ok(env, "members", "create", "--name", "acme")
    result = run(env, "members", "create", "--name", "acme")
    assert result.exit_code == 1
    assert "already exists" in result.stderr


def test_db_downgrade_and_upgrade(env: dict[str, str]) -> None:
    run(env, "init", "--allow-superuser")
    assert ok(env, "db", "downgrade", "base")["revision"] is None
    assert ok(env, "db", "upgrade")["revision"] == ok(env, "db", "current")["head"]


def test_serve_refuses_to_start_without_keys(env: dict[str, str]) -> None:
    result = run(env, "serve")
    assert result.exit_code == 1
    assert "ledger init" in result.stderr


def test_serve_refuses_per_process_limits_with_several_workers(env: dict[str, str]) -> None:
    run(env, "init", "--allow-superuser")
    result = run({**env, "LEDGER_RATE_LIMIT_STORAGE": "memory://"}, "serve", "--workers", "2")
    assert result.exit_code == 1
    assert "2 times every limit" in result.stderr


def test_audit_checkpoint_and_verify(env: dict[str, str], database_url: str) -> None:
    run(env, "init", "--allow-superuser")
    member = ok(env, "members", "create", "--name", "acme")
    ok(env, "members", "suspend", member["id"])
    checkpoint = ok(env, "audit", "checkpoint")
    assert checkpoint["created"] is True
    assert checkpoint["tree_size"] == 2  # the two operator actions, audited
    assert checkpoint["note"].startswith("refund-ledger/audit\n2\n")
    assert ok(env, "audit", "checkpoint")["created"] is False

    verified = run(env, "audit", "verify")
    report = json.loads(verified.stdout)
    assert report["ok"] is True
    assert (report["leaves"], report["checkpoints"]) == (2, 1)
    # Not a terminal: progress as JSON lines on stderr, the last one the run's end.
    progress = [json.loads(line) for line in verified.stderr.splitlines() if line.strip()]
    assert progress[-1]["state"] == "done"
    assert (progress[-1]["checked"], progress[-1]["total"]) == (2, 2)

    asyncio.run(tamper(database_url, ["UPDATE audit_events SET outcome = 'refused' WHERE id = 1"]))
    result = run(env, "audit", "verify")
    assert result.exit_code == 1
    assert "event 1 (leaf 0)" in result.stderr
    assert json.loads(result.stdout)["problems"][0]["event_id"] == 1


def test_the_checkpoint_key_ring_rotates_and_keeps_old_keys(env: dict[str, str]) -> None:
    run(env, "init", "--allow-superuser")
    (first,) = ok(env, "keys", "list", "--ring", "checkpoint")
    ok(env, "keys", "rotate", "--ring", "checkpoint")
    rows = ok(env, "keys", "retire", "--ring", "checkpoint", "--", first["kid"])
    assert [r["retired_at"] is not None for r in rows] == [True, False]
    # The token ring was not touched.
    assert len(ok(env, "keys", "list")) == 1


def test_audit_retention_below_three_years_is_refused(env: dict[str, str]) -> None:
    result = run({**env, "LEDGER_AUDIT_RETENTION_DAYS": "365"}, "init", "--allow-superuser")
    assert result.exit_code == 1
    assert "LEDGER_AUDIT_RETENTION_DAYS" in result.stderr
    assert "1095" in result.stderr


def test_retention_run_reports_what_it_did(env: dict[str, str]) -> None:
    run(env, "init", "--allow-superuser")
    assert ok(env, "retention", "run") == {
        "disputes_unanswered": 0,
        "disputes_reminded": 0,
        "reports_suspended": 0,
        "reports_purged": 0,
        "rate_counters_purged": 0,
        "webhook_events_purged": 0,
    }


POLICY = {
    "version": "2026-12-01.1",
    "weights": {
        "forged_evidence": 40,
        "empty_box": 30,
        "false_non_receipt": 25,
        "wardrobing": 15,
        "other": 10,
    },
    "half_life_days": 180,
    "per_category_cap": 3,
    "member_cap": 45,
    "scale": 60,
    "corroboration": 2,
    "thresholds": [1, 30, 60, 85],
}


def test_policy_set_show_and_history(env: dict[str, str], tmp_path: Path) -> None:
    run(env, "init", "--allow-superuser")
    assert ok(env, "policy", "show")["version"] == "2026-11-23.1"  # the built-in default
    file = tmp_path / "policy.json"
    file.write_text(json.dumps(POLICY))
    assert ok(env, "policy", "set", str(file))["version"] == "2026-12-01.1"
    shown = ok(env, "policy", "show")
    assert (shown["version"], shown["half_life_days"]) == ("2026-12-01.1", 180)
    assert [p["version"] for p in ok(env, "policy", "history")] == ["2026-12-01.1"]
    again = run(env, "policy", "set", str(file))
    assert again.exit_code == 1
    assert "never change" in again.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"corroboration": 1}, "corroboration"),
        ({"thresholds": [1, 60, 30, 85]}, "thresholds"),
        ({"weights": {"forged_evidence": 30}}, "missing"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_a_policy_that_breaks_the_rules_is_refused(
    env: dict[str, str], tmp_path: Path, change: dict[str, object], message: str
) -> None:
    run(env, "init", "--allow-superuser")
    file = tmp_path / "policy.json"
    file.write_text(json.dumps({**POLICY, **change}))
    result = run(env, "policy", "set", str(file))
    assert result.exit_code == 1
    assert message in result.stderr


def test_the_audit_sequencer_runs_on_its_own_until_stopped(env: dict[str, str]) -> None:
    """Servers started without a sequencer leave events waiting; `ledger audit sequencer`,
    a process of its own, integrates and signs them, and stops cleanly on SIGTERM."""
    run(env, "init", "--allow-superuser")
    ok(env, "members", "create", "--name", "acme")  # one audited event, not yet a leaf
    assert ok(env, "audit", "verify")["pending"] == 1
    quick = {
        **os.environ,
        **env,
        "LEDGER_AUDIT_SEQUENCER_INTERVAL_SECONDS": "0.05",
        "LEDGER_AUDIT_CHECKPOINT_EVERY_LEAVES": "1",
    }
    sequencer = subprocess.Popen(
        [sys.executable, "-m", "ledger", "audit", "sequencer"],
        env=quick,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while (report := ok(env, "audit", "verify"))["checkpoints"] == 0:
            assert sequencer.poll() is None, sequencer.communicate()[1]
            assert time.monotonic() < deadline, "no checkpoint was signed"
            time.sleep(0.1)
        assert report["ok"] is True
        assert report["leaves"] >= 1
    finally:
        sequencer.send_signal(signal.SIGTERM)
        _, stderr = sequencer.communicate(timeout=30)
    assert sequencer.returncode == 0, stderr
    assert [json.loads(line)["msg"] for line in stderr.splitlines()] == [
        "audit sequencer started",
        "audit sequencer stopped",
    ]
