"""The console tests read English pages (the language switch's cookie says so); the
Chinese pages are tested on their own (test_languages.py)."""

from __future__ import annotations

import httpx
import pytest

from api.console.web import LOCALE_COOKIE


@pytest.fixture(autouse=True)
def english(client: httpx.AsyncClient) -> None:
    client.cookies.set(LOCALE_COOKIE, "en")
