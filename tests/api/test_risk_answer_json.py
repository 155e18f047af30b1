"""The answer most risk queries share is spliced from a template: byte-equal to the JSON
the model writes, in every locale, and only for that answer."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from api.routers.risk import answer_json
from api.schemas.risk import RiskAnswer
from ledger.i18n import LOCALES
from ledger.scoring import explanations
from ledger.scoring.score import ScoringPolicy
from ledger.scoring.service import NOTHING, MarkerRow, assessed, is_shared
from ledger.scoring.service import RiskAnswer as CoreAnswer

NOW = dt.datetime(2026, 12, 4, 8, 0, tzinfo=dt.UTC)


def _answer(policy: ScoringPolicy, locale: str, subject: str, event_id: int) -> CoreAnswer:
    assessment = assessed(NOTHING, now=NOW, report_policy=None, policy=policy)  # type: ignore[arg-type]
    return CoreAnswer(
        subject=subject,
        assessment=assessment,
        reasons=explanations.reasons(assessment, locale),
        explanation=explanations.explain(assessment, locale),
        locale=locale,
        audit_event_id=event_id,
    )


def _model_json(answer: CoreAnswer) -> bytes:
    return RiskAnswer.of(answer).model_dump_json().encode()


@pytest.mark.parametrize("locale", LOCALES)
def test_the_shared_answer_is_the_models_json(locale: str) -> None:
    policy = ScoringPolicy()
    for subject, event_id in (
        ("ROVpNZJ1sbaQU-z6dYJr4Z3uJjjPysKJVp3UZlxxlXc", 1),
        ("a_-" * 14 + "b", 2**63 - 1),
        ('"quoted\\ and \x01 and 中文"', 0),  # not a pseudonym, but escaped all the same
    ):
        answer = _answer(policy, locale, subject, event_id)
        assert is_shared(answer.assessment)
        assert answer_json(answer) == _model_json(answer)  # the template is made
        assert answer_json(answer) == _model_json(answer)  # and then used


def test_one_template_per_policy_and_locale() -> None:
    first, second = ScoringPolicy(), ScoringPolicy(version="2099-01-01.1")
    english = answer_json(_answer(first, "en", "s" * 43, 5))
    chinese = answer_json(_answer(first, "zh-CN", "s" * 43, 5))
    other = answer_json(_answer(second, "en", "s" * 43, 5))
    assert len({english, chinese, other}) == 3
    assert b'"policy_version":"2099-01-01.1"' in other


def test_any_other_answer_is_written_by_the_model() -> None:
    policy = ScoringPolicy()
    shared = _answer(policy, "en", "t" * 43, 9)
    marker = MarkerRow("identity_misused", NOW, NOW + dt.timedelta(days=730))
    marked = dataclasses.replace(shared, marker=marker)
    assert answer_json(marked) == _model_json(marked)
    assert b'"protective_marker":null' not in answer_json(marked)
    unshared = dataclasses.replace(
        shared, assessment=dataclasses.replace(shared.assessment, score=0)
    )
    assert not is_shared(unshared.assessment)
    assert answer_json(unshared) == _model_json(unshared)
