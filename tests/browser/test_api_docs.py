"""The API's readers in a real browser, with every request off this machine refused:
Swagger UI and ReDoc render from the ledger's own files, and Swagger UI offers to
authorize with the ledger's two schemes."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from playwright.async_api import Browser, Route, expect


async def _offline(route: Route) -> None:
    if route.request.url.startswith("http://127.0.0.1:"):
        await route.continue_()
    else:
        await route.abort()


async def test_swagger_ui_and_redoc_work_with_no_internet(
    live: tuple[str, FastAPI], browser: Browser, shots: Path
) -> None:
    base, _ = live
    context = await browser.new_context()
    await context.route("**/*", _offline)  # what would leave the machine is refused
    page = await context.new_page()
    refused: list[str] = []
    page.on("requestfailed", lambda r: refused.append(f"{r.url} {r.failure}"))

    await page.goto(f"{base}/docs")
    await expect(page.locator(".swagger-ui .info .title")).to_contain_text("Refund-abuse ledger")
    await expect(page.locator("#operations-risk-risk_query")).to_be_visible()
    await page.get_by_role("button", name="Authorize").first.click()
    dialog = page.locator(".dialog-ux")
    await expect(dialog).to_contain_text("memberClient")
    await expect(dialog).to_contain_text("consoleUser")
    await page.screenshot(path=shots / "api-docs-authorize.png", full_page=False)

    await page.goto(f"{base}/redoc")
    await expect(page.get_by_text("Score a buyer before an automatic refund").first).to_be_visible()
    await page.screenshot(path=shots / "api-redoc.png", full_page=False)
    # ReDoc asks a CDN for its "powered by" logo; the page's policy stops the request
    # before it leaves the browser. Nothing else is asked of another site.
    assert [r for r in refused if not r.endswith(" csp")] == []
