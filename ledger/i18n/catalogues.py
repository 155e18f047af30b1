"""Keeping the catalogues: extract, update, compile, and check.

    python -m ledger.i18n.catalogues update    # after changing texts (make catalogues)
    python -m ledger.i18n.catalogues compile   # the .mo files (make install does it)
    python -m ledger.i18n.catalogues check     # every message translated, placeholders kept

English is the source language: its catalogue's translations are the message ids
themselves, filled in by ``update``, so that both catalogues hold every message. The
Chinese is written by people, in the .po file; ``update`` keeps it and marks changed
messages fuzzy, and ``check`` refuses fuzzy or missing ones.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from babel.messages.catalog import Catalog, Message
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

from ledger.i18n import DIRECTORY, DOMAIN, LOCALES, folder

ROOT = DIRECTORY.parents[2]
TEMPLATE = DIRECTORY / f"{DOMAIN}.pot"
KEYWORDS = ("N_", "gettext:2", "plural:2,3", "_", "ngettext:1,2")
# %(name)s / %(num)d (python-format) and {name} (format strings).
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]|\{(\w+)\}")


def po_path(locale: str) -> Path:
    return DIRECTORY / folder(locale) / "LC_MESSAGES" / f"{DOMAIN}.po"


def message_ids(path: Path = TEMPLATE) -> set[str]:
    return {m.id if isinstance(m.id, str) else m.id[0] for m in _read(path) if m.id}


def _read(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as f:
        return read_po(f, locale=locale)


def _write(path: Path, catalog: Catalog) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        write_po(f, catalog, width=88, omit_header=False, sort_output=True, no_location=True)


def extract(output: Path = TEMPLATE) -> None:
    keywords = [arg for k in KEYWORDS for arg in ("-k", k)]
    subprocess.run(  # noqa: S603  (our own interpreter, fixed arguments)
        [sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "babel.cfg",
         "--no-default-keywords", *keywords, "--no-location", "--sort-output",
         "--project", "refund-ledger", "--omit-header", "-o", str(output), "."],
        cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip


def update() -> None:
    """Extract, then bring each catalogue up to the template (English filled in)."""
    extract()
    template = _read(TEMPLATE)
    for locale in LOCALES:
        path = po_path(locale)
        catalog = _read(path, folder(locale)) if path.exists() else Catalog(folder(locale))
        catalog.update(template, update_creation_date=False)
        catalog.obsolete.clear()
        catalog.project, catalog.version = "refund-ledger", "0.1"
        catalog.msgid_bugs_address = ""
        catalog.copyright_holder = "the refund-ledger authors"
        catalog.last_translator = "the refund-ledger authors"
        catalog.language_team = folder(locale)
        catalog.fuzzy = False
        if locale == "en":
            for message in catalog:
                if message.id:
                    message.string = message.id
                    message.flags.discard("fuzzy")
        _write(path, catalog)


def compile_all() -> None:
    for locale in LOCALES:
        catalog = _read(po_path(locale), folder(locale))
        with po_path(locale).with_suffix(".mo").open("wb") as f:
            write_mo(f, catalog)


def _placeholders(text: str) -> set[str]:
    return {a or b for a, b in PLACEHOLDER.findall(text)}


def _strings(message: Message) -> list[str]:
    value = message.string
    if isinstance(value, tuple | list):
        return [v or "" for v in value]
    return [value or ""]


def problems() -> list[str]:
    """What stops the catalogues from being complete: a message without a translation
    in some locale, a fuzzy one, or a translation whose placeholders differ."""
    found: list[str] = []
    ids = {m.id for m in _read(TEMPLATE) if m.id}
    for locale in LOCALES:
        catalog = _read(po_path(locale), folder(locale))
        have = {m.id: m for m in catalog if m.id}
        found += [f"{locale}: no entry for {m!r}" for m in sorted(ids - have.keys(), key=str)]
        for message_id, message in have.items():
            source = message_id if isinstance(message_id, str) else message_id[0]
            wanted = _placeholders(source)
            if message.fuzzy:
                found.append(f"{locale}: fuzzy {source!r}")
            for text in _strings(message):
                if not text:
                    found.append(f"{locale}: untranslated {source!r}")
                elif _placeholders(text) != wanted:
                    found.append(f"{locale}: placeholders differ in {source!r}")
    return found


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "check"
    if command == "update":
        update()
    elif command == "compile":
        compile_all()
    elif command == "check":
        found = problems()
        sys.stdout.write("".join(f"{problem}\n" for problem in found))
        return 1 if found else 0
    else:
        sys.stderr.write(__doc__ or "")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
