"""What a dispute's state says to the buyer who objected (征信业管理条例 art. 25), in
their language: where the objection stands and what follows from it."""

from __future__ import annotations

from ledger.disputes.models import Resolution
from ledger.disputes.service import ItemView
from ledger.i18n import N_, format_day, gettext

FOR_THE_BUYER = {
    Resolution.OPEN: N_(
        "Your objection has been sent to the platform that filed this report. It must "
        "answer by %(deadline)s; if it does not, the report stops counting."
    ),
    Resolution.UPHELD: N_(
        "The platform that filed this report checked it again after your objection and "
        "kept it, with new evidence. You may still add a statement to it."
    ),
    Resolution.WITHDRAWN: N_(
        "The platform that filed this report withdrew it after your objection. It no longer counts."
    ),
    Resolution.UNVERIFIABLE: N_(
        "The platform that filed this report did not answer your objection in time. The "
        "report no longer counts."
    ),
}


def for_the_buyer(item: ItemView, locale: str, zone: str) -> str:
    text = gettext(locale, FOR_THE_BUYER[item.resolution])
    if item.resolution is Resolution.OPEN:
        return text % {"deadline": format_day(item.deadline, locale, zone)}
    return text
