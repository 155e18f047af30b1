"""The member SDK as members get it: its wheel built from ./client, installed alone in a
virtual environment of its own (no server, no photo libraries), and its own tests
(client/tests) run there against this ledger, served on a real socket.

The environment is kept in .venv-client between runs (made once, from the package
index); the wheel is rebuilt and reinstalled every time."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.access.permissions import Scope
from ledger.config import Settings
from ledger.runtime import Runtime
from tests.factories import make_credential
from tests.live import serving

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv-client"
# The same test tools as the ledger's suite (pyproject.toml's dev extra).
TOOLS = ["pytest==9.2.0", "pytest-asyncio==1.5.0"]


def _run(*command: str | Path) -> None:
    done = subprocess.run(
        [str(c) for c in command], capture_output=True, text=True, check=False, timeout=900
    )
    assert done.returncode == 0, f"{' '.join(map(str, command))}\n{done.stdout}\n{done.stderr}"


def client_environment(wheels: Path) -> Path:
    """The isolated environment's python, with the freshly built wheel in it."""
    _run(
        sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
        "--wheel-dir", wheels, ROOT / "client",
    )  # fmt: skip
    (wheel,) = wheels.glob("refund_ledger_client-*.whl")
    python = VENV / "bin" / "python"
    if not python.exists():
        _run(sys.executable, "-m", "venv", VENV)
    _run(python, "-m", "pip", "install", "--quiet", wheel, *TOOLS)
    _run(python, "-m", "pip", "install", "--quiet", "--force-reinstall", "--no-deps", wheel)
    return python


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite"])
async def test_the_sdk_package_passes_its_own_tests_against_a_live_ledger(
    settings: Settings, session: AsyncSession, runtime: Runtime, tmp_path: Path
) -> None:
    python = await asyncio.to_thread(client_environment, tmp_path / "wheels")
    full = await make_credential(session, runtime)
    narrow = await make_credential(session, runtime, scopes=frozenset({Scope.RISK_READ}))
    with serving(settings) as (url, _app):
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", str(tmp_path)),
            "LEDGER_URL": url,
            "LEDGER_CLIENT_ID": full.client_id,
            "LEDGER_CLIENT_SECRET": full.secret,
            "LEDGER_NARROW_CLIENT_ID": narrow.client_id,
            "LEDGER_NARROW_CLIENT_SECRET": narrow.secret,
        }
        done = await asyncio.to_thread(
            subprocess.run,
            [str(python), "-m", "pytest", "-q", "tests"],
            cwd=ROOT / "client",
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    print(done.stdout[-3000:])  # noqa: T201 - shown with -s, and in CI logs on failure
    assert " passed" in done.stdout
