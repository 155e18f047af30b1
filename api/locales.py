"""Which language an answer's texts for people are in, and saying so (RFC 9110
§12.5.4 Accept-Language, §8.5 Content-Language)."""

from __future__ import annotations

from typing import Literal

from fastapi import Request
from pydantic import Field

from ledger import i18n

Locale = Literal["zh-CN", "en"]

LOCALE_FIELD = Field(
    default=None,
    description="the language of the texts meant for the buyer (zh-CN or en); without "
    "it, the request's Accept-Language decides, then the ledger's default (zh-CN)",
)


def locale_of(request: Request, explicit: str | None) -> str:
    """The explicit choice, else the Accept-Language header, else the default."""
    default: str = request.app.state.runtime.settings.default_locale
    return i18n.choose(explicit, request.headers.get("accept-language"), default)


def language_headers(locale: str) -> dict[str, str]:
    """Say which language the answer is in, and that the header chose it."""
    return {"Content-Language": locale, "Vary": "Accept-Language"}
