"""deploy/compose.yaml, carried out here as compose would, without containers: the
PostgreSQL init script, the setup service, then the witness, the sequencer, the webhook
worker and the API (four workers) as real processes with the services' own commands and
environments.
Only what containers would give differently is rewritten: the services' host names
(postgres, redis, witness) become loopback, the volumes temporary directories, the
database and role names unique ones, and the sequencer signs every second.

Then, as an operator would: a member and a credential from the CLI, risk queries
through the SDK, a checkpoint cosigned by the witness, /metrics added up over the
workers, rate limits counted in Redis, a member's ping delivered by the webhooks
service; and a backup (pg_dump of the database, a copy
of the key directory) restored into a fresh database, where `ledger audit verify`
passes (docs/operations.md)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from refund_ledger_client import Checkpoint, LedgerClient, LedgerError

from tests.databases import POSTGRES_URL
from tests.live import free_port
from tests.webhook_receiver import Receiver, receiving

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent
SCOPES = "risk:read pseudonyms:evaluate reports:write webhooks:manage"
REDIS_DB = 7  # not the one other tests or a local ledger may use

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(POSTGRES_URL is None, reason="needs LEDGER_TEST_POSTGRES_URL"),
]


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text("utf-8"))
    return loaded


def substitute(text: str, values: dict[str, str]) -> str:
    """Compose's ${NAME}, ${NAME:-default} and ${NAME:?error}."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        if name in values:
            return values[name]
        if op == ":-":
            return arg or ""
        raise AssertionError(f"compose needs {name}: {arg}")

    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", one, text)


class Host:
    """Where the containers' names and paths land on this machine."""

    def __init__(self, tmp: Path) -> None:
        self.suffix = uuid.uuid4().hex[:8]
        self.db, self.owner, self.app = (
            f"ledger_{self.suffix}",
            f"lo_{self.suffix}",
            f"la_{self.suffix}",
        )
        self.data, self.witness = tmp / "ledger", tmp / "witness"
        self.data.mkdir(mode=0o700)
        self.witness.mkdir(mode=0o700)
        self.api_port, self.witness_port = free_port(), free_port()
        self.values = {
            "LEDGER_APP_PASSWORD": "app-secret",
            "LEDGER_OWNER_PASSWORD": "owner-secret",
            "POSTGRES_PASSWORD": "postgres-secret",
        }

    def rewrite(self, text: str) -> str:
        text = substitute(text, self.values)
        for before, after in [
            ("ledger_app:", f"{self.app}:"),
            ("ledger_owner:", f"{self.owner}:"),
            ("@postgres:5432/ledger", f"@127.0.0.1:5432/{self.db}"),
            ("redis://redis:6379/0", f"redis://127.0.0.1:6379/{REDIS_DB}"),
            ("http://witness:7380", f"http://127.0.0.1:{self.witness_port}"),
            ("--port=7380", f"--port={self.witness_port}"),
            ("--host=0.0.0.0", "--host=127.0.0.1"),
            ("/var/lib/ledger-witness", str(self.witness)),
            ("/var/lib/ledger", str(self.data)),
        ]:
            text = text.replace(before, after)
        return text

    def env(self, service: dict[str, Any]) -> dict[str, str]:
        """The service's environment, as the image (Dockerfile ENV) and compose give it."""
        env = {
            "PATH": f"{BIN}:{os.environ['PATH']}",
            "HOME": str(self.data),
            "LEDGER_DATA_DIR": str(self.data),
            "LEDGER_HOST": "127.0.0.1",
            "LEDGER_PORT": str(self.api_port),
        }
        env |= {k: self.rewrite(str(v)) for k, v in service.get("environment", {}).items()}
        return env

    def command(self, service: dict[str, Any]) -> list[str]:
        entrypoint = service.get("entrypoint", ["ledger"])
        return [self.rewrite(part) for part in [*entrypoint, *service["command"]]]


@contextmanager
def running(commands: dict[str, tuple[list[str], dict[str, str]]], logs: Path) -> Iterator[None]:
    processes = {}
    outputs = []
    try:
        for name, (command, env) in commands.items():
            outputs.append((logs / f"{name}.log").open("wb"))
            processes[name] = subprocess.Popen(
                command,
                env=env,
                stdout=outputs[-1],
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        yield
    finally:
        for process in processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for name, process in processes.items():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
                pytest.fail(f"{name} did not stop on SIGTERM")
        for output in outputs:
            output.close()


def wait_for(what: str, check: Any, logs: Path, seconds: float = 90) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            found = check()
        except (httpx.HTTPError, LedgerError):
            found = None
        if found:
            return found
        time.sleep(0.5)
    said = "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(logs.glob("*.log")))
    pytest.fail(f"{what} did not happen\n{said}")


def psql(sql: str, database: str = "postgres") -> None:
    subprocess.run(
        [
            "psql",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            database,
            "-v",
            "ON_ERROR_STOP=1",
            "-qc",
            sql,
        ],
        check=True,
        capture_output=True,
    )


def redis_cli(*args: str) -> str:
    done = subprocess.run(
        ["redis-cli", "-n", str(REDIS_DB), *args], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def run(command: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, check=False, timeout=300
    )
    assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def delivered_by_the_webhooks_service(
    member_id: str, issued: dict[str, Any], url: str, env: dict[str, str], logs: Path
) -> None:
    """A member's endpoint (registered by the operator's CLI; loopback HTTP allowed for
    that one command, as the receiver here is on loopback) gets a signed ping from the
    webhooks service's own process."""
    with receiving(Receiver(port=free_port())) as receiver:
        added = json.loads(
            run(
                ["ledger", "webhooks", "add", "--member", member_id, "--url", receiver.url],
                env | {"LEDGER_WEBHOOK_ALLOW_LOOPBACK_HTTP": "true"},
            )
        )
        receiver.secrets.append(added["secret"])
        token = httpx.post(
            f"{url}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(issued["client_id"], issued["client_secret"]),
        ).json()["access_token"]
        pinged = httpx.post(
            f"{url}/v1/webhooks/endpoints/{added['id']}/ping",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert pinged.status_code == 202, pinged.text
        got = wait_for("the ping delivered", receiver.delivered, logs)
        assert got[0].verified
        assert got[0].body["type"] == "webhook.ping"


def test_the_compose_services_run_and_a_backup_restores(tmp_path: Path) -> None:
    host = Host(tmp_path)
    services = compose()["services"]
    logs = tmp_path / "logs"
    logs.mkdir()
    redis_cli("flushdb")
    init_env = {
        **os.environ,
        "PGHOST": "127.0.0.1",
        "PGUSER": "postgres",
        "LEDGER_DB_NAME": host.db,
        "LEDGER_OWNER_ROLE": host.owner,
        "LEDGER_APP_ROLE": host.app,
        **host.values,
    }
    run(["sh", str(DEPLOY / "postgres-init.sh")], init_env)
    restored = f"{host.db}_restored"
    try:
        run(host.command(services["setup"]), host.env(services["setup"]))
        assert (host.witness / "verifier.key").exists()
        assert (host.witness / "log.key").read_text().startswith("ledger.example/audit+")
        sequencer_env = host.env(services["sequencer"]) | {
            "LEDGER_AUDIT_CHECKPOINT_EVERY_SECONDS": "1"
        }
        api_env = host.env(services["api"])
        assert api_env["LEDGER_AUDIT_SEQUENCER_ENABLED"] == "false"
        commands = {
            "witness": (host.command(services["witness"]), host.env(services["witness"])),
            "sequencer": (host.command(services["sequencer"]), sequencer_env),
            "api": (host.command(services["api"]), api_env),
            # The test's receiver is on loopback, which compose's worker refuses to call.
            "webhooks": (
                host.command(services["webhooks"]),
                host.env(services["webhooks"]) | {"LEDGER_WEBHOOK_ALLOW_LOOPBACK_HTTP": "true"},
            ),
        }
        assert api_env["LEDGER_WEBHOOK_DELIVERY_ENABLED"] == "false"
        url = f"http://127.0.0.1:{host.api_port}"
        with running(commands, logs):
            wait_for("the API ready", lambda: httpx.get(f"{url}/readyz").status_code == 200, logs)
            member = json.loads(run(["ledger", "members", "create", "--name", "acme"], api_env))
            issued = json.loads(
                run(
                    ["ledger", "clients", "issue", "--member", member["id"], "--scope", SCOPES],
                    api_env,
                )
            )
            log_key = (host.witness / "log.key").read_text().strip()
            with LedgerClient(
                url, issued["client_id"], issued["client_secret"], deadline=30
            ) as sdk:
                subject = sdk.pseudonymize("phone", "13800138000")
                for n in range(20):
                    sdk.query_risk(subject, reference=f"refund-{n}")

                def cosigned() -> Checkpoint | None:
                    # Checked by the SDK against the log's key, as a member would.
                    seen = sdk.latest_checkpoint(log_key)
                    return seen if seen.tree_size >= 20 and seen.cosignatures else None

                checkpoint = wait_for("a checkpoint cosigned by the witness", cosigned, logs)
            assert "ledger.example/witness" in checkpoint.cosignatures[0]
            text = httpx.get(f"{url}/metrics").text
            answered = sum(
                s.value
                for family in text_string_to_metric_families(text)
                for s in family.samples
                if s.name == "ledger_http_requests_total"
                and s.labels.get("route") == "/v1/risk/query"
                and s.labels.get("status") == "200"
            )
            assert answered == 20  # every worker's count, added up
            assert "ledger_audit_checkpoint_age_seconds" in text
            assert redis_cli("--scan", "--pattern", "LIMITS*")  # the limits are counted in Redis
            delivered_by_the_webhooks_service(member["id"], issued, url, api_env, logs)

        # Backup: the database as its owner, and the key directory; restore both.
        dump = tmp_path / "ledger.dump"
        owner_url = api_env["LEDGER_MIGRATION_DATABASE_URL"]
        run(["pg_dump", "--format=custom", f"--file={dump}", owner_url], api_env)
        keys_copy = tmp_path / "restored-data"
        shutil.copytree(host.data, keys_copy, ignore=shutil.ignore_patterns("metrics"))
        psql(f'CREATE DATABASE "{restored}" OWNER "{host.owner}"')
        restored_owner = owner_url.replace(f"/{host.db}", f"/{restored}")
        run(
            [
                "pg_restore",
                "--no-owner",
                f"--role={host.owner}",
                f"--dbname={restored_owner}",
                str(dump),
            ],
            api_env,
        )
        restored_env = api_env | {
            "LEDGER_DATA_DIR": str(keys_copy),
            "LEDGER_MIGRATION_DATABASE_URL": restored_owner,
            "LEDGER_DATABASE_URL": api_env["LEDGER_DATABASE_URL"].replace(
                f"/{host.db}", f"/{restored}"
            ),
        }
        psql(f'GRANT CONNECT ON DATABASE "{restored}" TO "{host.app}"')
        run(["ledger", "init"], restored_env)  # the service role's grants, renewed
        verified = json.loads(run(["ledger", "audit", "verify"], restored_env))
        assert verified["ok"] is True, verified
        assert verified["leaves"] >= 20
    finally:
        for database in (restored, host.db):
            psql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        psql(f'DROP ROLE IF EXISTS "{host.app}"; DROP ROLE IF EXISTS "{host.owner}"')
        redis_cli("flushdb")
