"""Helpers for the benchmarks: a real `ledger serve` in a scratch directory, wrk runs,
and process memory. Everything runs on loopback and stops by itself."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy.engine import make_url

LEDGER = str(Path(sys.executable).parent / "ledger")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    base: str
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.proc.pid

    def restart(self, *, ready_within: float = 600) -> float:
        """Stop and start the server again on the same data; seconds until it is ready
        (it loads what the database holds, e.g. its fingerprint index)."""
        self.proc.terminate()
        self.proc.wait(timeout=60)
        started = time.monotonic()
        self.proc = _start(self.env, self.base, self.log, ready_within)
        return time.monotonic() - started

    def ledger(self, *args: str, stdin: str | None = None) -> object:
        out = subprocess.run(
            [LEDGER, *args], env=self.env, input=stdin, capture_output=True, text=True, check=True
        )
        return json.loads(out.stdout)

    def issue_client(self, member_id: str, scope: str) -> tuple[str, str]:
        """(client_id, client_secret) of a new credential, through `ledger clients issue`."""
        issued = self.ledger("clients", "issue", "--member", member_id, "--scope", scope)
        assert isinstance(issued, dict)
        return str(issued["client_id"]), str(issued["client_secret"])

    def token(self, member_id: str, scope: str) -> str:
        """An access token of a new credential holding ``scope``."""
        response = httpx.post(
            f"{self.base}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=self.issue_client(member_id, scope),
        )
        return str(response.json()["access_token"])

    def rss_mib(self) -> tuple[float, float]:
        """(current, peak) resident memory of the server process, in MiB."""
        status = Path(f"/proc/{self.pid}/status").read_text()
        rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
        hwm = int(re.search(r"VmHWM:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
        return rss / 1024, hwm / 1024


@contextmanager
def running_server(extra_env: dict[str, str] | None = None) -> Iterator[Server]:
    """`ledger init` and `ledger serve` in a scratch data directory."""
    scratch = Path(tempfile.mkdtemp(prefix="ledger-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env.update({"LEDGER_DATA_DIR": str(scratch / "data"), "LEDGER_PORT": str(free_port())})
    env["LEDGER_LOG_LEVEL"] = "WARNING"  # access lines would cost the server CPU here
    env.update(extra_env or {})
    subprocess.run([LEDGER, "init", "--allow-superuser"], env=env, capture_output=True, check=True)
    base = f"http://127.0.0.1:{env['LEDGER_PORT']}"
    server = Server(
        base=base,
        env=env,
        log=scratch / "serve.log",
        proc=_start(env, base, scratch / "serve.log", 30),
    )
    try:
        yield server
    finally:
        server.proc.terminate()
        server.proc.wait(timeout=60)
        if os.environ.get("BENCH_KEEP_LOG"):
            print(server.log.read_text()[-5000:])
        shutil.rmtree(scratch, ignore_errors=True)


def _start(
    env: dict[str, str], base: str, log_path: Path, ready_within: float
) -> subprocess.Popen[bytes]:
    """`ledger serve`, once /readyz answers 200. uvicorn runs the app in this child
    when workers == 1."""
    with log_path.open("a") as log:
        proc = subprocess.Popen([LEDGER, "serve"], env=env, stderr=log)
    deadline = time.monotonic() + ready_within
    while True:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.terminate()
            raise RuntimeError("the server did not start")
        time.sleep(0.1)


@dataclass
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    requests: int  # answered in the run

    def row(self, name: str) -> str:
        return (
            f"| {name} | {self.requests_per_second:,.0f} | {self.p50_ms:.2f} | {self.p99_ms:.2f} "
            f"| {self.non_2xx} |"
        )


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise ValueError(f"unexpected wrk latency {text!r}")
    value, unit = match.groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def wrk(
    url: str,
    *,
    connections: int = 64,
    threads: int = 2,
    seconds: int = 10,
    headers: dict[str, str] | None = None,
    script: str | None = None,
) -> WrkResult:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    args = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for name, value in (headers or {}).items():
        args += ["-H", f"{name}: {value}"]
    if script is not None:
        args += ["-s", script]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    if "Requests/sec" not in out or "50%" not in out:
        raise RuntimeError(f"wrk printed no figures:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return WrkResult(rps, p50, p99, int(bad.group(1)) if bad else 0, total)


@contextmanager
def scratch_postgres(admin_url: str, keep: str | None = None) -> Iterator[str]:
    """A new, empty PostgreSQL database for one run; dropped afterwards.

    With ``keep``, the database of that name is made if missing and kept, so that a
    seeded database can serve several runs.
    """
    name = keep or f"ledger_bench_{os.getpid()}"
    admin = make_url(admin_url).set(drivername="postgresql").render_as_string(hide_password=False)

    async def execute(sql: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def exists() -> bool:
        conn = await asyncpg.connect(admin)
        try:
            return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
        finally:
            await conn.close()

    if not (keep and asyncio.run(exists())):
        asyncio.run(execute(f'CREATE DATABASE "{name}"'))
    try:
        yield (
            make_url(admin_url)
            .set(drivername="postgresql", database=name)
            .render_as_string(hide_password=False)
        )
    finally:
        if not keep:
            asyncio.run(execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
