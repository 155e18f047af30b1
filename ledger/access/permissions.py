"""One permission vocabulary, deny by default.

Member clients hold OAuth scopes; human users hold a role. Both are translated into
``Permission`` values, and every protected operation names exactly one permission.
Nothing is granted that is not listed here.
"""

from __future__ import annotations

from enum import StrEnum

from ledger.errors import InvalidInput


class Scope(StrEnum):
    """OAuth 2.0 scopes a member's client credential can hold."""

    REPORTS_WRITE = "reports:write"
    RISK_READ = "risk:read"
    DISPUTES_WRITE = "disputes:write"
    PSEUDONYMS_EVALUATE = "pseudonyms:evaluate"
    SUBJECTS_DISCLOSE = "subjects:disclose"
    EVIDENCE_CHECK = "evidence:check"
    WEBHOOKS_MANAGE = "webhooks:manage"
    MARKERS_WRITE = "markers:write"


class Role(StrEnum):
    """Roles of human users of the console."""

    OPERATOR = "operator"
    AUDITOR = "auditor"


class Permission(StrEnum):
    """Every action the ledger guards, named ``resource:action``."""

    PROFILE_READ = "profile:read"
    REPORTS_WRITE = "reports:write"
    RISK_READ = "risk:read"
    DISPUTES_WRITE = "disputes:write"
    PSEUDONYMS_EVALUATE = "pseudonyms:evaluate"
    SUBJECTS_DISCLOSE = "subjects:disclose"
    EVIDENCE_CHECK = "evidence:check"
    WEBHOOKS_MANAGE = "webhooks:manage"
    MARKERS_WRITE = "markers:write"
    AUDIT_READ = "audit:read"
    AUDIT_PROOF_READ = "audit:proofs:read"
    MEMBERS_MANAGE = "members:manage"
    CREDENTIALS_MANAGE = "credentials:manage"
    USERS_MANAGE = "users:manage"
    POLICY_MANAGE = "policy:manage"
    CONSOLE_USE = "console:use"  # any signed-in console user: home page, sign-out


# Every authenticated member client may read its own profile and fetch receipts for its
# own audit events; the rest needs a scope.
_CLIENT_BASE: frozenset[Permission] = frozenset(
    {Permission.PROFILE_READ, Permission.AUDIT_PROOF_READ}
)

SCOPE_PERMISSIONS: dict[Scope, frozenset[Permission]] = {
    Scope.REPORTS_WRITE: frozenset({Permission.REPORTS_WRITE}),
    Scope.RISK_READ: frozenset({Permission.RISK_READ}),
    Scope.DISPUTES_WRITE: frozenset({Permission.DISPUTES_WRITE}),
    Scope.PSEUDONYMS_EVALUATE: frozenset({Permission.PSEUDONYMS_EVALUATE}),
    Scope.SUBJECTS_DISCLOSE: frozenset({Permission.SUBJECTS_DISCLOSE}),
    Scope.EVIDENCE_CHECK: frozenset({Permission.EVIDENCE_CHECK}),
    Scope.WEBHOOKS_MANAGE: frozenset({Permission.WEBHOOKS_MANAGE}),
    Scope.MARKERS_WRITE: frozenset({Permission.MARKERS_WRITE}),
}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    # Auditors read everything and change nothing.
    Role.AUDITOR: frozenset(
        {Permission.AUDIT_READ, Permission.AUDIT_PROOF_READ, Permission.CONSOLE_USE}
    ),
    # Operators manage members and credentials, and cannot touch the audit log.
    Role.OPERATOR: frozenset(
        {
            Permission.MEMBERS_MANAGE,
            Permission.CREDENTIALS_MANAGE,
            Permission.USERS_MANAGE,
            Permission.POLICY_MANAGE,
            Permission.CONSOLE_USE,
        }
    ),
}


def permissions_for_scopes(scopes: frozenset[Scope]) -> frozenset[Permission]:
    """What a client holding ``scopes`` may do."""
    granted = set(_CLIENT_BASE)
    for scope in scopes:
        granted |= SCOPE_PERMISSIONS[scope]
    return frozenset(granted)


def scope_for(permission: Permission) -> Scope | None:
    """The scope that grants ``permission`` to a client, if any."""
    for scope, granted in SCOPE_PERMISSIONS.items():
        if permission in granted:
            return scope
    return None


def parse_scopes(text: str) -> frozenset[Scope]:
    """Parse a space-separated scope string (RFC 6749 §3.3); unknown scopes are refused."""
    values = text.split()
    known = {s.value for s in Scope}
    unknown = sorted(v for v in values if v not in known)
    if unknown:
        raise InvalidInput(
            f"unknown scope(s): {', '.join(unknown)}; known scopes are "
            + ", ".join(s.value for s in Scope),
            fields=("scope",),
        )
    return frozenset(Scope(v) for v in values)


def format_scopes(scopes: frozenset[Scope]) -> str:
    """The canonical space-separated form, in the enum's order."""
    return " ".join(s.value for s in Scope if s in scopes)
