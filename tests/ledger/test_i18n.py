"""The catalogues are complete and current, and the reader's language is chosen as
RFC 9110 §12.5.4 says."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger import i18n
from ledger.i18n import catalogues
from ledger.scoring import explanations


def test_every_message_has_both_translations_with_the_same_placeholders() -> None:
    assert catalogues.problems() == []


def test_the_catalogues_hold_every_text_the_code_marks(tmp_path: Path) -> None:
    """A text added to the code without `make catalogues` would be shown in English."""
    fresh = tmp_path / "fresh.pot"
    catalogues.extract(fresh)
    assert catalogues.message_ids(fresh) == catalogues.message_ids()


def test_a_changed_placeholder_is_caught(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check can fail: a translation that drops %(num)d is reported."""
    original = catalogues.po_path("zh-CN").read_text(encoding="utf-8")
    broken = original.replace("该买家有 %(num)d 起", "该买家有若干起", 1)
    assert broken != original
    copy = tmp_path / "zh_CN" / "LC_MESSAGES" / "ledger.po"
    copy.parent.mkdir(parents=True)
    copy.write_text(broken, encoding="utf-8")
    real = catalogues.po_path
    monkeypatch.setattr(
        catalogues, "po_path", lambda locale: copy if locale == "zh-CN" else real(locale)
    )
    assert any("placeholders differ" in p for p in catalogues.problems())


def test_the_texts_come_in_chinese_and_english() -> None:
    chinese = i18n.gettext("zh-CN", explanations.DECISION)
    assert "退款账本" in chinese
    assert i18n.gettext("en", explanations.DECISION) == explanations.DECISION
    one = i18n.plural("en", "It was reported by %(num)d platform.",
                        "They were reported by %(num)d platforms.", 1)  # fmt: skip
    assert one == "It was reported by %(num)d platform."


@pytest.mark.parametrize(
    ("header", "chosen"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"),  # a Chinese browser
        ("en-US,en;q=0.9", "en"),
        ("da, en-gb;q=0.8, en;q=0.7", "en"),  # RFC 9110's example: Danish is not had
        ("zh", "zh-CN"),
        ("zh-Hans-CN", "zh-CN"),
        ("zh-TW", "zh-CN"),  # the only Chinese the ledger has
        ("fr-FR, en;q=0.5", "en"),
        ("en;q=0.2, zh-CN;q=0.9", "zh-CN"),  # by weight, not order
        ("en;q=0, zh", "zh-CN"),  # q=0: not acceptable
        ("en;q=0", "zh-CN"),  # nothing acceptable: the default
        ("fr", "zh-CN"),
        ("*", "zh-CN"),
        ("", "zh-CN"),
        (None, "zh-CN"),
        ("EN", "en"),  # case-insensitive
        ("en;q=abc, zh-CN;q=0.1", "zh-CN"),  # an unreadable weight rules its range out
    ],
)
def test_accept_language_is_negotiated(header: str | None, chosen: str) -> None:
    assert i18n.negotiate(header) == chosen


def test_an_explicit_choice_wins_and_the_default_is_configurable() -> None:
    assert i18n.choose("en", "zh-CN", "zh-CN") == "en"
    assert i18n.choose(None, "fr", "en") == "en"
