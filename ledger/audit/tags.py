"""The closed set of audit event tags, ``source:subject:action``.

A tag names what happened; the actor, subject, purpose and outcome are separate fields.
New capabilities add their tags here, and nowhere else.
"""

from __future__ import annotations

from enum import StrEnum


class Tag(StrEnum):
    # OAuth and sign-in
    TOKEN_ISSUED = "oauth:token:issued"
    TOKEN_REFUSED = "oauth:token:refused"
    USER_SIGNED_IN = "auth:user:signed_in"
    USER_SIGN_IN_REFUSED = "auth:user:refused"
    USER_SIGNED_OUT = "auth:user:signed_out"
    CONSOLE_REFUSED = "console:request:refused"
    REQUEST_REFUSED = "access:request:refused"
    # members, credentials, users
    MEMBER_CREATED = "member:member:created"
    MEMBER_SUSPENDED = "member:member:suspended"
    MEMBER_REINSTATED = "member:member:reinstated"
    CLIENT_ISSUED = "member:client:issued"
    CLIENT_REVOKED = "member:client:revoked"
    USER_CREATED = "member:user:created"
    USER_DISABLED = "member:user:disabled"
    USER_PASSWORD_CHANGED = "member:user:password_changed"
    USER_PASSWORD_RESET = "member:user:password_reset"
    USER_SECOND_FACTOR_ENABLED = "member:user:second_factor_enabled"
    USER_SECOND_FACTOR_DISABLED = "member:user:second_factor_disabled"
    USER_SECOND_FACTOR_RESET = "member:user:second_factor_reset"
    USER_RECOVERY_CODES_REPLACED = "member:user:recovery_codes_replaced"
    USER_RECOVERY_CODE_USED = "auth:user:recovery_code_used"
    # keys
    TOKEN_KEY_ROTATED = "keys:token:rotated"
    TOKEN_KEY_RETIRED = "keys:token:retired"
    CHECKPOINT_KEY_ROTATED = "keys:checkpoint:rotated"
    CHECKPOINT_KEY_RETIRED = "keys:checkpoint:retired"
    # reports, disputes, subjects
    REPORT_SUBMITTED = "report:refund:submitted"
    REPORT_READ = "report:refund:read"
    REPORTS_LISTED = "report:refund:listed"
    REPORT_NOTICE_RECORDED = "report:notice:recorded"
    REPORT_WITHDRAWN = "report:refund:withdrawn"
    REPORT_SUSPENDED = "report:refund:suspended"
    REPORT_SUPPRESSED = "report:refund:suppressed"
    REPORTS_PURGED = "report:retention:purged"
    DISPUTE_OPENED = "dispute:case:opened"
    DISPUTES_LISTED = "dispute:case:listed"
    DISPUTE_RESOLVED = "dispute:report:resolved"
    DISPUTE_UNANSWERED = "dispute:report:unanswered"
    STATEMENT_ADDED = "subject:statement:added"
    CORRECTION_QUEUED = "subject:correction:queued"
    MARKER_PLACED = "subject:marker:placed"
    MARKER_RENEWED = "subject:marker:renewed"
    MARKER_REMOVED = "subject:marker:removed"
    SUBJECT_DISCLOSED = "subject:file:disclosed"
    RISK_QUERIED = "risk:subject:queried"
    EVIDENCE_CHECKED = "evidence:photos:checked"
    LISTING_PHOTOS_REGISTERED = "evidence:listing:registered"
    LISTING_PHOTOS_WITHDRAWN = "evidence:listing:withdrawn"
    PSEUDONYMS_EVALUATED = "pseudonym:elements:evaluated"
    PSEUDONYM_LIMIT_SET = "pseudonym:limit:set"
    POLICY_SET = "policy:scoring:set"
    # webhooks
    WEBHOOK_ENDPOINT_ADDED = "webhook:endpoint:added"
    WEBHOOK_ENDPOINT_ROTATED = "webhook:endpoint:rotated"
    WEBHOOK_ENDPOINT_REMOVED = "webhook:endpoint:removed"
    WEBHOOK_ENDPOINT_DISABLED = "webhook:endpoint:disabled"
    WEBHOOK_ENDPOINT_ENABLED = "webhook:endpoint:enabled"
    WEBHOOK_ENDPOINTS_LISTED = "webhook:endpoint:listed"
    WEBHOOK_DELIVERIES_LISTED = "webhook:delivery:listed"
    WEBHOOK_DELIVERIES_REPLAYED = "webhook:delivery:replayed"
    # the audit log itself
    AUDIT_EVENTS_LISTED = "audit:events:listed"
    AUDIT_EVENTS_EXPORTED = "audit:events:exported"
    AUDIT_PROOF_READ = "audit:proof:read"
    AUDIT_VERIFIED = "audit:log:verified"


class Outcome(StrEnum):
    SUCCESS = "success"
    REFUSED = "refused"
    FAILED = "failed"


class ActorType(StrEnum):
    CLIENT = "client"  # a member platform through one of its client credentials
    USER = "user"  # an operator or auditor
    SYSTEM = "system"  # the `ledger` command on the server, or a background job
