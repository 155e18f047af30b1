"""What the ledger's answers say to the buyer they are about, in the buyer's language
(征信业管理条例 arts. 16, 17 and 25; PIPL art. 24): what is recorded, that the platform
and not the ledger decides, and how the buyer sees their file (查询), adds a statement
(说明) and objects (异议).

The messages are English in the code and translated through the catalogues
(ledger/i18n); every function here takes the reader's locale.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ledger.i18n import N_, gettext, plural
from ledger.scoring.score import REASONS, Assessment, Band, Reason

DECISION = N_(
    "The refund ledger did not make this decision. It only keeps cases of refund abuse "
    "that member platforms have confirmed. The platform you are dealing with decides, "
    "and where the recommendation is a manual review, a person looks at your case."
)
RIGHTS = N_(
    "You may ask this platform for your file in the ledger: every report held on you, "
    "which platform filed it, and who looked you up. You may add a statement to any "
    "report, and you may object to any report; a report that is objected to and not "
    "answered within 20 days stops counting."
)
BANDS = {
    Band.NONE: N_("none"),
    Band.LOW: N_("low"),
    Band.ELEVATED: N_("elevated"),
    Band.HIGH: N_("high"),
    Band.SEVERE: N_("severe"),
}
EVIDENCE_RIGHTS = N_(
    "A resemblance is not a finding against you: photos can look alike for innocent "
    "reasons. You may ask this platform to have a person look at your photos again, and "
    "send others, such as a video of the item or of its packaging."
)
FORGED_ELSEWHERE = N_(
    "A photo with this claim closely resembles a photo that another platform confirmed "
    "as forged evidence in an earlier case. A person will look at the claim before it "
    "is decided."
)
OWN_LISTING = N_(
    "A photo with this claim closely resembles the seller's own product photo. A person "
    "will look at the claim before it is decided."
)
NO_RESEMBLANCE = N_("None of the photos with this claim resembles a photo the ledger holds.")
NOTHING_RECORDED = N_("No confirmed refund abuse is recorded for this buyer.")
ONE_PLATFORM_ALONE = N_(
    "The matching reports come from one platform alone: weigh them as one platform's finding."
)


@dataclass(frozen=True, slots=True)
class Explanation:
    summary: str
    decision: str
    your_rights: str


def band_name(band: Band, locale: str) -> str:
    return gettext(locale, BANDS[band])


def summary(a: Assessment, locale: str) -> str:
    if a.band is Band.NONE:
        return gettext(locale, NOTHING_RECORDED)
    cases = plural(
        locale,
        "%(num)d confirmed case of refund abuse is recorded for this buyer.",
        "%(num)d confirmed cases of refund abuse are recorded for this buyer.",
        a.counts.active_reports,
    ) % {"num": a.counts.active_reports}
    platforms = plural(
        locale,
        "It was reported by %(num)d platform.",
        "They were reported by %(num)d platforms.",
        a.counts.distinct_members,
    ) % {"num": a.counts.distinct_members}
    risk = gettext(locale, "The risk is %(band)s.") % {"band": band_name(a.band, locale)}
    return f"{cases}{_space(locale)}{platforms}{_space(locale)}{risk}"


def _space(locale: str) -> str:
    """Sentences are joined with a space in English, with nothing in Chinese."""
    return "" if locale.startswith("zh") else " "


def explain(a: Assessment, locale: str) -> Explanation:
    return Explanation(
        summary=summary(a, locale),
        decision=gettext(locale, DECISION),
        your_rights=gettext(locale, RIGHTS),
    )


_REASON_TEXTS = dict(REASONS.values())  # code → English message


def reasons(a: Assessment, locale: str) -> tuple[Reason, ...]:
    """The assessment's reasons with their texts in ``locale``; the codes are stable."""
    return tuple(
        dataclasses.replace(r, text=gettext(locale, _REASON_TEXTS.get(r.code, r.text)))
        for r in a.reasons
    )


def explain_evidence(*, forged_elsewhere: bool, own_listing: bool, locale: str) -> Explanation:
    """What an evidence check says to the buyer whose claim it is about."""
    if forged_elsewhere:
        text = FORGED_ELSEWHERE
    elif own_listing:
        text = OWN_LISTING
    else:
        text = NO_RESEMBLANCE
    return Explanation(
        summary=gettext(locale, text),
        decision=gettext(locale, DECISION),
        your_rights=gettext(locale, EVIDENCE_RIGHTS),
    )
