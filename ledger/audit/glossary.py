"""What each audit event tag means, in words for a compliance officer (translated where
it is shown: ledger/i18n). Every tag has an entry; a test sees to it."""

from __future__ import annotations

from ledger.audit.tags import ActorType, Outcome, Tag
from ledger.i18n import N_

GLOSSARY: dict[Tag, str] = {
    Tag.TOKEN_ISSUED: N_("A member's credential was given an access token."),
    Tag.TOKEN_REFUSED: N_("A request for an access token was refused."),
    Tag.USER_SIGNED_IN: N_("A console user signed in."),
    Tag.USER_SIGN_IN_REFUSED: N_("A console sign-in was refused."),
    Tag.USER_SIGNED_OUT: N_("A console user signed out."),
    Tag.CONSOLE_REFUSED: N_("A console page or form was refused to a signed-in user."),
    Tag.REQUEST_REFUSED: N_("An API request was refused for want of a permission."),
    Tag.MEMBER_CREATED: N_("A member platform was added."),
    Tag.MEMBER_SUSPENDED: N_("A member platform was suspended: its tokens stop working."),
    Tag.MEMBER_REINSTATED: N_("A suspended member platform was reinstated."),
    Tag.CLIENT_ISSUED: N_("A client credential was issued to a member."),
    Tag.CLIENT_REVOKED: N_("A member's client credential was revoked."),
    Tag.USER_CREATED: N_("A console user was created."),
    Tag.USER_DISABLED: N_("A console user was disabled."),
    Tag.USER_PASSWORD_CHANGED: N_("A console user changed their own password."),
    Tag.USER_PASSWORD_RESET: N_(
        "An operator reset a console user's password; the user must change it at sign-in."
    ),
    Tag.USER_SECOND_FACTOR_ENABLED: N_(
        "A console user set up a second factor (an authenticator app's codes)."
    ),
    Tag.USER_SECOND_FACTOR_DISABLED: N_("A console user turned off their own second factor."),
    Tag.USER_SECOND_FACTOR_RESET: N_(
        "An operator removed a console user's second factor (a lost phone); the user sets "
        "it up again at sign-in."
    ),
    Tag.USER_RECOVERY_CODES_REPLACED: N_(
        "A console user made new recovery codes; the old ones stopped working."
    ),
    Tag.USER_RECOVERY_CODE_USED: N_(
        "A console user signed in with a recovery code instead of an authenticator code."
    ),
    Tag.TOKEN_KEY_ROTATED: N_("A new key for signing access tokens was put in use."),
    Tag.TOKEN_KEY_RETIRED: N_("An old token-signing key was retired."),
    Tag.CHECKPOINT_KEY_ROTATED: N_("A new key for signing audit checkpoints was put in use."),
    Tag.CHECKPOINT_KEY_RETIRED: N_("An old checkpoint-signing key was retired."),
    Tag.REPORT_SUBMITTED: N_("A member filed a report of confirmed refund abuse."),
    Tag.REPORT_READ: N_("A member read one of its reports."),
    Tag.REPORTS_LISTED: N_("A member listed its reports."),
    Tag.REPORT_NOTICE_RECORDED: N_(
        "A member recorded that it told the buyer about a report (notice before it counts)."
    ),
    Tag.REPORT_WITHDRAWN: N_("A report was withdrawn: it no longer counts."),
    Tag.REPORT_SUSPENDED: N_("A report was suspended while it is looked into."),
    Tag.REPORT_SUPPRESSED: N_(
        "A report stopped counting because a dispute on it was not answered in time."
    ),
    Tag.REPORTS_PURGED: N_("Reports past their retention period were erased."),
    Tag.DISPUTE_OPENED: N_("A buyer's objection to reports was opened by a member."),
    Tag.DISPUTES_LISTED: N_("A member listed disputes."),
    Tag.DISPUTE_RESOLVED: N_("A reporting member answered a dispute on its report."),
    Tag.DISPUTE_UNANSWERED: N_("A dispute passed its deadline without an answer."),
    Tag.STATEMENT_ADDED: N_("A buyer's statement was added to a report."),
    Tag.CORRECTION_QUEUED: N_(
        "A buyer's assessment changed: the members that recently asked about them are told."
    ),
    Tag.MARKER_PLACED: N_("At a buyer's request, a member marked their identity as misused."),
    Tag.MARKER_RENEWED: N_("At a buyer's request, a member renewed their protective marker."),
    Tag.MARKER_REMOVED: N_("At a buyer's request, a member removed their protective marker."),
    Tag.SUBJECT_DISCLOSED: N_("A buyer's file was disclosed to them through a member."),
    Tag.RISK_QUERIED: N_("A member asked for a buyer's risk before a refund."),
    Tag.EVIDENCE_CHECKED: N_("A member checked claim photos against forged evidence."),
    Tag.LISTING_PHOTOS_REGISTERED: N_("A member registered fingerprints of its listing photos."),
    Tag.LISTING_PHOTOS_WITHDRAWN: N_("A member withdrew fingerprints of its listing photos."),
    Tag.PSEUDONYMS_EVALUATED: N_("A member turned buyer identifiers into pseudonyms."),
    Tag.PSEUDONYM_LIMIT_SET: N_("A member's limit on pseudonym evaluations was changed."),
    Tag.POLICY_SET: N_("A new version of the scoring policy was put in force."),
    Tag.WEBHOOK_ENDPOINT_ADDED: N_("A member added an endpoint for the ledger's events."),
    Tag.WEBHOOK_ENDPOINT_ROTATED: N_(
        "The signing secret of a member's event endpoint was replaced."
    ),
    Tag.WEBHOOK_ENDPOINT_REMOVED: N_("A member removed one of its event endpoints."),
    Tag.WEBHOOK_ENDPOINT_DISABLED: N_("An event endpoint was turned off."),
    Tag.WEBHOOK_ENDPOINT_ENABLED: N_("An event endpoint was turned back on."),
    Tag.WEBHOOK_ENDPOINTS_LISTED: N_("A member listed its event endpoints."),
    Tag.WEBHOOK_DELIVERIES_LISTED: N_("A member read the delivery log of its events."),
    Tag.WEBHOOK_DELIVERIES_REPLAYED: N_("A member asked for its events to be sent again."),
    Tag.AUDIT_EVENTS_LISTED: N_("Someone read a list of audit events or the activity page."),
    Tag.AUDIT_EVENTS_EXPORTED: N_("Someone exported audit events."),
    Tag.AUDIT_PROOF_READ: N_("Someone read the proof that an audit event is in the log."),
    Tag.AUDIT_VERIFIED: N_("The whole audit log was verified."),
}

OUTCOMES: dict[Outcome, str] = {
    Outcome.SUCCESS: N_("done"),
    Outcome.REFUSED: N_("refused"),
    Outcome.FAILED: N_("failed"),
}

ACTORS: dict[ActorType, str] = {
    ActorType.CLIENT: N_("member platform"),
    ActorType.USER: N_("console user"),
    ActorType.SYSTEM: N_("the ledger itself"),
}

# Codes the console shows, in words; the codes themselves never change.
ROLES = {"auditor": N_("auditor"), "operator": N_("operator")}
MEMBER_STATUSES = {"active": N_("active"), "suspended": N_("suspended")}
DELIVERY_STATES = {
    "pending": N_("waiting to be retried"),
    "sending": N_("being sent"),
    "delivered": N_("delivered"),
    "failed": N_("given up"),
}
RESOLUTIONS = {
    "open": N_("open"),
    "upheld": N_("upheld"),
    "withdrawn": N_("withdrawn"),
    "unverifiable": N_("unverifiable"),
}
SERIES = {
    "queries": N_("risk queries"),
    "reports": N_("reports filed"),
    "withdrawals": N_("reports withdrawn"),
    "disputes": N_("disputes opened"),
    "evaluations": N_("pseudonyms made"),
}
REPORT_STATUSES = {
    "pending_notice": N_("waiting for the buyer to be told"),
    "suspended": N_("suspended: the buyer was not told in time"),
    "active": N_("counts"),
    "disputed": N_("counts, disputed"),
    "withdrawn": N_("withdrawn"),
    "suppressed": N_("stopped counting: a dispute went unanswered"),
    "expired": N_("expired"),
}
CATEGORIES = {
    "forged_evidence": N_("forged or edited evidence"),
    "empty_box": N_("a false empty-box claim"),
    "wardrobing": N_("used goods returned as unused"),
    "false_non_receipt": N_("a false claim of non-receipt"),
    "other": N_("another kind of refund abuse"),
}
BASES = {
    "platform_review": N_("the platform's own review"),
    "merchant_evidence": N_("the merchant's evidence"),
    "arbitration": N_("arbitration"),
    "court_ruling": N_("a court ruling"),
    "police_report": N_("a police report"),
}
