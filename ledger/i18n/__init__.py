"""Texts for people in zh-CN and en: gettext catalogues managed with Babel.

Messages are written in English in the code, marked with ``N_`` where they are defined
and looked up with ``gettext(locale, message)`` where they are shown, so that a module
constant is translated for each reader, not once. The catalogues live in
``ledger/i18n/locales/<locale>/LC_MESSAGES/ledger.po``; ``make catalogues`` extracts,
updates and compiles them (``make install`` compiles). A checkout whose ``.mo`` files
are missing or older than the ``.po`` files compiles them in memory at first use, so a
text is never shown untranslated for want of a build step.

Which locale: an explicit choice (a request's ``locale`` field, the console's switch)
first, then the request's ``Accept-Language`` (RFC 9110 §12.5.4), then the ledger's
default (``zh-CN``: the buyers and the compliance officers read Chinese).
"""

from __future__ import annotations

import datetime as dt
import functools
import gettext as _gettext
import io
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

from babel import dates, numbers, units
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

DOMAIN: Final = "ledger"
LOCALES: Final = ("zh-CN", "en")
DEFAULT_LOCALE: Final = "zh-CN"
DIRECTORY: Final = Path(__file__).parent / "locales"


def N_(message: str) -> str:  # noqa: N802  (gettext's name for "mark, do not translate yet")
    """Mark a message for extraction; it is translated where it is shown."""
    return message


def folder(locale: str) -> str:
    """gettext's directory name for a locale: zh-CN → zh_CN."""
    return locale.replace("-", "_")


@functools.cache
def translations(locale: str) -> _gettext.GNUTranslations:
    if locale not in LOCALES:
        raise ValueError(f"no catalogue for {locale!r}: the ledger has {', '.join(LOCALES)}")
    base = DIRECTORY / folder(locale) / "LC_MESSAGES"
    po, mo = base / f"{DOMAIN}.po", base / f"{DOMAIN}.mo"
    if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
        with mo.open("rb") as f:
            return _gettext.GNUTranslations(f)
    with po.open("rb") as f:
        catalog = read_po(f, locale=folder(locale), domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return _gettext.GNUTranslations(compiled)


def gettext(locale: str, message: str) -> str:
    return translations(locale).gettext(message)


def plural(locale: str, singular: str, plural: str, n: int) -> str:
    return translations(locale).ngettext(singular, plural, n)


@functools.lru_cache(maxsize=512)
def negotiate(accept_language: str | None, default: str = DEFAULT_LOCALE) -> str:
    """The supported locale a reader prefers, from an ``Accept-Language`` value.

    Ranges are taken by weight (``q``, 1 when absent; ties keep their order); ``q=0``
    rules a language out. A range matches a locale when equal to it or to its start
    (``zh`` and ``zh-CN`` match zh-CN, ``en-GB`` and ``en`` match en), and any other
    Chinese range (``zh-Hans``, ``zh-TW``) matches zh-CN, the only Chinese the ledger
    has; ``*`` matches the default. Nothing acceptable: the default.
    """
    if not accept_language:
        return default
    ranges: list[tuple[float, int, str]] = []
    for n, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if tag and weight > 0:
            ranges.append((-weight, n, tag.strip().lower()))
    for _, _, tag in sorted(ranges):
        if tag == "*":
            return default
        for locale in LOCALES:
            lowered = locale.lower()
            if tag == lowered or lowered.startswith(tag + "-") or tag.startswith(lowered + "-"):
                return locale
        if tag.split("-")[0] == "zh":
            return "zh-CN"
    return default


def choose(explicit: str | None, accept_language: str | None, default: str) -> str:
    """An explicit, supported choice, else what ``Accept-Language`` prefers."""
    if explicit in LOCALES:
        return explicit
    return negotiate(accept_language, default)


def babel_locale(locale: str) -> str:
    """Babel's (and CLDR's) name for a locale: zh-CN → zh_Hans_CN."""
    return "zh_Hans_CN" if locale == "zh-CN" else folder(locale)


def format_day(at: dt.datetime, locale: str, zone: str) -> str:
    """A date as a reader of ``locale`` writes it, in the time zone ``zone``:
    2026年12月15日, December 15, 2026."""
    return dates.format_date(at.astimezone(ZoneInfo(zone)).date(), "long", babel_locale(locale))


def format_time(at: dt.datetime, locale: str, zone: str) -> str:
    """A date and time as a reader of ``locale`` writes it, in ``zone``."""
    local = at.astimezone(ZoneInfo(zone))
    return dates.format_datetime(local, "medium", tzinfo=local.tzinfo, locale=babel_locale(locale))


def format_number(value: float, locale: str, digits: int = 0) -> str:
    """A number as a reader of ``locale`` writes it (grouping, decimal mark)."""
    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    return numbers.format_decimal(value, pattern, locale=babel_locale(locale))


def format_amount(minor: int, currency: str, locale: str) -> str:
    """An amount in minor units (fen for CNY) as money: ¥129.00."""
    major = numbers.get_currency_precision(currency)
    return numbers.format_currency(
        minor / 10**major, currency, locale=babel_locale(locale), currency_digits=True
    )


def format_duration(span: dt.timedelta, locale: str) -> str:
    """A length of time in words, rounded to its largest unit: 3 minutes, 3分钟."""
    return dates.format_timedelta(span, threshold=1.0, locale=babel_locale(locale))


def format_time_left(span: dt.timedelta, locale: str) -> str:
    """Time left before a deadline in whole days (never rounded up, never into weeks:
    a 20-day deadline reads "20 days", 20天), or whole hours in its last day."""
    if span >= dt.timedelta(days=1):
        return units.format_unit(span.days, "duration-day", locale=babel_locale(locale))
    hours = max(0, int(span.total_seconds() // 3600))
    return units.format_unit(hours, "duration-hour", locale=babel_locale(locale))
