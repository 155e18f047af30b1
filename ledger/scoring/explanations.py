"""What a risk answer says to the buyer it is about, in words (art. 17, PIPL art. 24):
what is recorded, who decides, and what the buyer may do about it."""

from __future__ import annotations

from dataclasses import dataclass

from ledger.scoring.score import Assessment, Band

DECISION = (
    "The refund ledger did not make this decision. It reports what member platforms "
    "confirmed; the platform you are dealing with decides, and a person reviews the case "
    "where the recommendation is a manual review."
)
RIGHTS = (
    "You may ask this platform for your file in the ledger (every report held on you, "
    "who filed it and who looked you up), add a statement to any report, and dispute "
    "any report; a disputed report that is not answered within 20 days stops counting."
)


@dataclass(frozen=True, slots=True)
class Explanation:
    summary: str
    decision: str
    your_rights: str


def summary(a: Assessment) -> str:
    if a.band is Band.NONE:
        return "No confirmed refund abuse is recorded for this buyer."
    return (
        f"{a.counts.active_reports} confirmed case(s) from {a.counts.distinct_members} "
        f"platform(s) are recorded; risk is {a.band.value}."
    )


def explain(a: Assessment) -> Explanation:
    return Explanation(summary=summary(a), decision=DECISION, your_rights=RIGHTS)
