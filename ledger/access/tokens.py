"""OAuth 2.0 access tokens: JWTs shaped per RFC 9068, signed with Ed25519 (EdDSA).

Verification follows RFC 8725: the algorithm is pinned to EdDSA, ``typ`` must be
``at+jwt``, and ``iss``, ``aud``, ``exp``, ``nbf`` and the key id are all checked.
Time is checked against the injected clock, with a small leeway.

A verified token is remembered (bounded, keyed by the whole token) so that a platform
sending thousands of requests with one token pays for one signature check; the expiry
and the key's retirement are checked again on every hit, and revocation of the client
or suspension of the member is checked by the caller on every request.
"""

from __future__ import annotations

import secrets
import uuid
from collections import OrderedDict
from dataclasses import dataclass

import jwt

from ledger.access.keys import KeyRingSource
from ledger.access.permissions import Role, Scope, format_scopes
from ledger.clock import Clock
from ledger.errors import InvalidToken

ALGORITHM = "EdDSA"
TOKEN_TYPE = "at+jwt"  # noqa: S105  (a media type, not a secret)
_ACCEPTED_TYP = {"at+jwt", "application/at+jwt"}
_REQUIRED_CLAIMS = ["iss", "aud", "sub", "client_id", "exp", "iat", "jti", "scope"]


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    expires_in: int
    scope: str
    token_id: str


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """A verified token: a member's client (``member_id``) or a console user (``user_id``)."""

    client_id: str
    member_id: uuid.UUID | None
    user_id: uuid.UUID | None
    role: Role | None
    scopes: frozenset[Scope]
    token_id: str
    expires_at: int
    kid: str


# Console users authenticate through this client id; their tokens carry a role.
CONSOLE_CLIENT_ID = "ledger-console"
USER_SUBJECT_PREFIX = "user:"


class TokenIssuer:
    """Signs access tokens with the key ring's current key."""

    def __init__(
        self, *, keys: KeyRingSource, issuer: str, audience: str, ttl_seconds: int, clock: Clock
    ) -> None:
        self._keys = keys
        self._issuer = issuer
        self._audience = audience
        self._ttl = ttl_seconds
        self._clock = clock

    def issue(
        self, *, client_id: str, member_id: uuid.UUID, scopes: frozenset[Scope]
    ) -> IssuedToken:
        """A token for a member's client credential."""
        scope = format_scopes(scopes)
        return self._sign(
            {"sub": client_id, "client_id": client_id, "member_id": str(member_id)}, scope
        )

    def issue_for_user(self, *, user_id: uuid.UUID, role: Role) -> IssuedToken:
        """A token for a console user; what it allows follows from the role."""
        return self._sign(
            {
                "sub": USER_SUBJECT_PREFIX + str(user_id),
                "client_id": CONSOLE_CLIENT_ID,
                "role": role.value,
            },
            "",
        )

    def _sign(self, identity: dict[str, str], scope: str) -> IssuedToken:
        key = self._keys.current().signing_key
        now = int(self._clock.now().timestamp())
        claims: dict[str, object] = {
            "iss": self._issuer,
            "aud": self._audience,
            **identity,
            "scope": scope,
            "jti": secrets.token_urlsafe(16),
            "iat": now,
            "nbf": now,
            "exp": now + self._ttl,
        }
        token = jwt.encode(
            claims,
            key.private_key,
            algorithm=ALGORITHM,
            headers={"typ": TOKEN_TYPE, "kid": key.kid},
        )
        return IssuedToken(
            access_token=token, expires_in=self._ttl, scope=scope, token_id=str(claims["jti"])
        )


def _seconds(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidToken("the access token's time claims are not integers")
    return value


class TokenVerifier:
    """Checks access tokens; raises ``InvalidToken`` with the reason."""

    def __init__(
        self,
        *,
        keys: KeyRingSource,
        issuer: str,
        audience: str,
        leeway_seconds: int,
        max_lifetime_seconds: int,
        clock: Clock,
        cache_size: int = 10_000,
    ) -> None:
        self._keys = keys
        self._max_lifetime = max_lifetime_seconds
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway_seconds
        self._clock = clock
        self._cache: OrderedDict[str, TokenClaims] = OrderedDict()
        self._cache_size = cache_size

    def verify(self, token: str) -> TokenClaims:
        cached = self._cache.get(token)
        if cached is not None:
            try:
                self._check_live(cached)
            except InvalidToken:
                self._cache.pop(token, None)
                raise
            self._cache.move_to_end(token)
            return cached
        claims = self._verify_signed(token)
        self._check_live(claims)
        if self._cache_size:
            self._cache[token] = claims
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return claims

    def _check_live(self, claims: TokenClaims) -> None:
        now = self._clock.now().timestamp()
        if now >= claims.expires_at + self._leeway:
            raise InvalidToken("the access token has expired; request a new one")
        if not self._keys.current().verifies(claims.kid):
            raise InvalidToken("the access token was signed by a retired key; request a new one")

    def _verify_signed(self, token: str) -> TokenClaims:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("the access token is not a well-formed JWT") from None
        if header.get("alg") != ALGORITHM:
            raise InvalidToken("the access token must be signed with EdDSA")
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in _ACCEPTED_TYP:
            raise InvalidToken("the token is not an access token (typ must be at+jwt)")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise InvalidToken("the access token names no signing key (kid)")
        public_key = self._keys.current().verification_key(kid)
        if public_key is None:
            public_key = self._keys.refresh().verification_key(kid)
        if public_key is None:
            raise InvalidToken("the access token was signed by an unknown or retired key")
        try:
            payload = jwt.decode(
                token,
                public_key,
                algorithms=[ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                options={
                    "require": _REQUIRED_CLAIMS,
                    # Time is checked below against the injected clock.
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidAudienceError:
            raise InvalidToken("the access token is not meant for this ledger (aud)") from None
        except jwt.InvalidIssuerError:
            raise InvalidToken("the access token was not issued by this ledger (iss)") from None
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidToken(f"the access token lacks the '{exc.claim}' claim") from None
        except jwt.PyJWTError:
            raise InvalidToken("the access token's signature does not verify") from None
        return self._claims(payload, kid)

    def _claims(self, payload: dict[str, object], kid: str) -> TokenClaims:
        now = self._clock.now().timestamp()
        iat, nbf, exp = (_seconds(payload.get(c, payload["iat"])) for c in ("iat", "nbf", "exp"))
        if now + self._leeway < max(iat, nbf):
            raise InvalidToken("the access token is not valid yet; check your clock")
        # Signed by our key, yet living longer than this ledger issues tokens for: refused,
        # whatever its claims say (and an expiry past year 9999 is never turned into a date).
        if not 0 < exp - iat <= self._max_lifetime:
            raise InvalidToken("the access token's lifetime is longer than this ledger issues")
        client_id, sub = payload["client_id"], payload["sub"]
        if not isinstance(client_id, str) or not isinstance(sub, str):
            raise InvalidToken("the access token's claims are malformed")
        member_id = user_id = role = None
        try:
            scopes = frozenset(Scope(s) for s in str(payload["scope"]).split())
            if "role" in payload:
                if client_id != CONSOLE_CLIENT_ID or not sub.startswith(USER_SUBJECT_PREFIX):
                    raise InvalidToken("the access token's client_id and sub disagree")
                user_id = uuid.UUID(sub[len(USER_SUBJECT_PREFIX) :])
                role = Role(str(payload["role"]))
                if scopes:
                    raise InvalidToken("a console user's token carries no scopes")
            else:
                if client_id != sub:
                    raise InvalidToken("the access token's client_id and sub disagree")
                member_id = uuid.UUID(str(payload.get("member_id")))
        except ValueError:
            raise InvalidToken("the access token's claims are malformed") from None
        return TokenClaims(
            client_id=client_id,
            member_id=member_id,
            user_id=user_id,
            role=role,
            scopes=scopes,
            token_id=str(payload["jti"]),
            expires_at=exp,
            kid=kid,
        )
