"""The authenticated caller of an operation, and the one place permissions are checked."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from ledger.access.permissions import (
    ROLE_PERMISSIONS,
    Permission,
    Role,
    Scope,
    permissions_for_scopes,
    scope_for,
)
from ledger.errors import InsufficientScope, PermissionDenied


@dataclass(frozen=True, slots=True)
class ClientPrincipal:
    """A member platform calling through one of its client credentials."""

    member_id: uuid.UUID
    client_id: str
    scopes: frozenset[Scope]
    token_id: str
    token_expires_at: int

    @property
    def permissions(self) -> frozenset[Permission]:
        return permissions_for_scopes(self.scopes)


@dataclass(frozen=True, slots=True)
class UserPrincipal:
    """A human user (operator or auditor)."""

    user_id: uuid.UUID
    username: str
    role: Role

    @property
    def permissions(self) -> frozenset[Permission]:
        return ROLE_PERMISSIONS[self.role]


Principal = ClientPrincipal | UserPrincipal


def require(principal: Principal, permission: Permission) -> None:
    """Raise unless ``principal`` holds ``permission``. Deny by default."""
    if permission in principal.permissions:
        return
    if isinstance(principal, ClientPrincipal):
        scope = scope_for(permission)
        if scope is not None:
            raise InsufficientScope(
                f"this operation needs the scope '{scope.value}'; request a token with it "
                "from a client credential that holds it",
                required=(scope.value,),
            )
        raise PermissionDenied(
            "this operation is for the ledger's own staff (auditors or operators), "
            "not for member platforms"
        )
    raise PermissionDenied(f"the role '{principal.role.value}' does not allow '{permission.value}'")
