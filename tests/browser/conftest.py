"""What the browser tests share: Debian's Chromium, headless, driven by Playwright,
against the ledger served over a real socket.

Screenshots go to ``LEDGER_SCREENSHOT_DIR`` when it is set (docs/console.md shows the
ones in docs/console/), else to the test's temporary directory.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from playwright.async_api import Browser, async_playwright

from ledger.config import Settings
from tests.live import serving

CHROMIUM = "/usr/bin/chromium"
# As the machine's notes advise: no background traffic to a closed network.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

SKIP_WITHOUT_CHROMIUM = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("LEDGER_TEST_REQUIRE_BROWSER"),
    reason="Debian's chromium is not installed (apt-get install chromium)",
)
HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(item.path).parents:
            item.add_marker(SKIP_WITHOUT_CHROMIUM)


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    """The browser tests are about the pages: one database is enough for them."""
    value: str = request.param
    return value


@pytest.fixture
def live(settings: Settings) -> Iterator[tuple[str, FastAPI]]:
    with serving(settings) as served:
        yield served


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    target = Path(os.environ.get("LEDGER_SCREENSHOT_DIR") or tmp_path / "shots")
    target.mkdir(parents=True, exist_ok=True)
    return target
