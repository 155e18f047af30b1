"""The compliance console: server-rendered pages for auditors and operators, under the
same app and through the same services as the API (docs/console.md)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.console import account_routes, audit_routes, operator_routes, session_routes
from api.console.web import (
    ConsoleError,
    SignInRequired,
    StepFirst,
    console_error,
    sign_in_required,
    step_first_handler,
)


def install(app: FastAPI) -> None:
    app.include_router(session_routes.router)
    app.include_router(account_routes.router)
    app.include_router(audit_routes.router)
    app.include_router(operator_routes.router)
    app.mount(
        "/console/static",
        StaticFiles(directory=Path(__file__).parent / "static"),
        name="console-static",
    )
    app.add_exception_handler(ConsoleError, console_error)
    app.add_exception_handler(SignInRequired, sign_in_required)
    app.add_exception_handler(StepFirst, step_first_handler)
