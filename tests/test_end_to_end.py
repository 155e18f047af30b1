"""The README's first steps against a real `ledger serve` process over a real socket."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyotp
import pytest

from tests.live import free_port

LEDGER = str(Path(sys.executable).parent / "ledger")


@pytest.fixture
def fresh_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env["LEDGER_PORT"] = str(free_port())
    return env


@pytest.fixture
def server(tmp_path: Path, fresh_env: dict[str, str]) -> Iterator[tuple[str, str, Path]]:
    """`ledger init --demo` then `ledger serve`, in a fresh directory, as `make run` does."""
    init = subprocess.run(
        [LEDGER, "init", "--demo"],
        cwd=tmp_path,
        env=fresh_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [LEDGER, "serve"], cwd=tmp_path, env=fresh_env, stdout=log, stderr=log
        )
    base = f"http://127.0.0.1:{fresh_env['LEDGER_PORT']}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "server did not become ready"
            time.sleep(0.1)
        yield base, init.stdout, log_path
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.slow
def test_readme_walkthrough_over_a_real_socket(
    server: tuple[str, str, Path], tmp_path: Path
) -> None:
    base, init_output, log_path = server
    (command,) = [
        line.strip() for line in init_output.splitlines() if line.strip().startswith("curl ")
    ]
    assert base + "/oauth/token" in command

    # Paste the printed command, as the README says.
    token_out = subprocess.run(
        shlex.split(command), capture_output=True, text=True, timeout=30, check=True
    )
    token = json.loads(token_out.stdout)
    assert token["token_type"] == "Bearer"

    me_out = subprocess.run(
        ["curl", "-s", "-H", f"Authorization: Bearer {token['access_token']}", f"{base}/v1/me"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    me = json.loads(me_out.stdout)
    assert me["member"]["name"] == "demo"
    assert "risk:read" in me["token"]["scopes"]

    refused = httpx.get(f"{base}/v1/me", timeout=5)
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"

    # Logs are JSON lines with request ids, and carry neither the secret nor the token.
    secret = re.search(r"lsk_[A-Za-z0-9_-]+", command)
    assert secret is not None
    time.sleep(0.2)
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "ledger.access"]
    assert {line["route"] for line in access} >= {"/oauth/token", "/v1/me"}
    assert all(len(line["request_id"]) == 32 for line in access)
    text = log_path.read_text()
    assert secret.group(0) not in text
    assert token["access_token"] not in text

    # The console accounts printed by init sign in to the console.
    accounts = re.findall(r"console user (demo-\w+) \((\w+)\), password (\S+)", init_output)
    assert {role for _, role, _ in accounts} == {"operator", "auditor"}
    with httpx.Client(base_url=base, timeout=10) as browser:
        form = browser.get("/console/sign-in").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
        assert csrf is not None
        username, _, password = accounts[0]
        signed_in = browser.post(
            "/console/sign-in",
            data={"csrf_token": csrf.group(1), "username": username, "password": password},
        )
        assert signed_in.status_code == 303
        # A printed password is for choosing one's own, and for nothing else.
        first = browser.get("/console")
        assert first.status_code == 303
        assert first.headers["location"].startswith("/console/password")
        change = browser.get("/console/password").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', change)
        assert csrf is not None
        changed = browser.post(
            "/console/password",
            data={
                "csrf_token": csrf.group(1),
                "next": "/console",
                "current_password": password,
                "new_password": "a password of my own choosing",
                "new_password_again": "a password of my own choosing",
            },
        )
        assert changed.status_code == 303
        # An operator (as shipped, LEDGER_SECOND_FACTOR_ROLES=operator) then sets up a
        # second factor, with a code from the key the page shows.
        assert username == "demo-operator"
        setup = browser.get("/console")
        assert setup.headers["location"].startswith("/console/second-factor")
        page = browser.get("/console/second-factor").text
        key = re.search(r'<code id="totp-key">([A-Z2-7 ]+)</code>', page)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert key is not None
        assert csrf is not None
        code = pyotp.TOTP(key.group(1).replace(" ", "")).now()
        done = browser.post(
            "/console/second-factor", data={"csrf_token": csrf.group(1), "code": code}
        )
        assert "Your recovery codes" in done.text or "您的恢复码" in done.text
        assert browser.get("/console").status_code == 200

    # Data is reused: a second start prints no new secret.
    again = subprocess.run(
        [LEDGER, "init", "--demo"],
        cwd=tmp_path,
        env={**os.environ, "LEDGER_PORT": base.rsplit(":", 1)[1]},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "lsk_" not in again.stdout
    assert "password" not in again.stdout
