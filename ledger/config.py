"""Typed settings, read from the environment (``LEDGER_*``) and passed in explicitly.

Domain code receives values from these settings; nothing imports a global instance.
"""

from __future__ import annotations

import datetime as dt
import uuid
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ledger.access.permissions import Role
from ledger.rate_limits import parse_limits
from ledger.reports.policy import MAX_RETENTION_YEARS, Category, ReportPolicy


class Settings(BaseSettings):
    """Everything an operator can configure. See the README's configuration table."""

    model_config = SettingsConfigDict(env_prefix="LEDGER_", extra="ignore", frozen=True)

    data_dir: Path = Field(
        default=Path(".ledger"), description="Where the SQLite file and keys live."
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default is a SQLite file in the data directory.",
    )
    migration_database_url: str | None = Field(
        default=None,
        description="PostgreSQL: the role that owns the schema, for `ledger db upgrade` and "
        "`ledger init`; the service's own role then owns nothing (ledger/db_roles.py).",
    )
    key_dir: Path | None = Field(
        default=None, description="Key directory; default <data_dir>/keys."
    )

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    public_url: str | None = Field(
        default=None,
        description="The URL members reach the ledger at; the token issuer (`iss`). "
        "Default: http://<host>:<port>.",
    )

    token_audience: str = "refund-ledger"  # noqa: S105  (an audience name, not a secret)
    token_ttl_seconds: int = Field(default=600, ge=60, le=3600)
    token_leeway_seconds: int = Field(default=30, ge=0, le=120)
    token_cache_size: int = Field(default=10_000, ge=0)

    # argon2id; the defaults are RFC 9106's second recommended option (argon2-cffi's).
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_cost_kib: int = Field(default=65_536, ge=8)
    argon2_parallelism: int = Field(default=4, ge=1)
    argon2_max_concurrent: int = Field(
        default=2, ge=1, description="Hashes computed at once; each holds its memory cost."
    )

    audit_origin: str = Field(
        default="refund-ledger/audit",
        min_length=1,
        pattern=r"^[\x21-\x7e]+$",
        description="The audit log's name in its checkpoints; set it once, never change it.",
    )
    audit_witnesses: list[dict[str, str]] = Field(
        default_factory=list,
        description='Witnesses to send checkpoints to: [{"url": "https://…", "key": '
        '"<name>+<key id>+<base64 key>"}] (ledger/audit/witness.py), or "key_file": a file '
        "holding the key (the witness's verifier.key).",
    )
    audit_checkpoint_every_leaves: int = Field(default=1000, ge=1)
    audit_checkpoint_every_seconds: float = Field(default=60.0, gt=0)
    audit_sequencer_interval_seconds: float = Field(default=0.5, gt=0)
    audit_sequencer_nice: int = Field(
        default=5,
        ge=0,
        le=19,
        description="How much `ledger audit sequencer` lowers its CPU priority: when CPU is "
        "short, the servers answering queries go first, and the tree catches up after.",
    )
    audit_sequencer_enabled: bool = Field(
        default=True,
        description="Run the sequencer and checkpointer in this process (any number of "
        "processes may: one integrates at a time).",
    )
    audit_gap_grace_seconds: float = Field(default=60.0, ge=0)
    audit_retention_days: int = Field(
        default=3 * 365,
        ge=3 * 365,
        description="How long audit events are kept: at least 3 years. Nothing in the "
        "service deletes them; this is the promise operators must keep when archiving.",
    )

    report_notice_grace_days: int = Field(
        default=30, ge=1, le=30, description="A report without notice is suspended after this."
    )
    dispute_window_days: int = Field(
        default=20, ge=1, le=20, description="A dispute unanswered this long suppresses."
    )
    correction_window_days: int = Field(
        default=30,
        ge=1,
        le=365,
        description="A changed assessment is sent to the members that queried the buyer "
        "within this many days.",
    )
    dispute_reminder_days: int = Field(
        default=3, ge=1, le=19, description="dispute.deadline_near is sent this long before."
    )
    protective_marker_days: int = Field(
        default=730, ge=30, le=1830, description="How long a protective marker lasts."
    )
    # Webhook delivery (ledger/webhooks/delivery.py, docs/corrections.md).
    webhook_delivery_enabled: bool = Field(
        default=True,
        description="Deliver webhooks in this process; false where `ledger webhooks "
        "worker` processes do it.",
    )
    webhook_allow_loopback_http: bool = Field(
        default=True,
        description="Accept http:// endpoints on loopback (development). Production: false.",
    )
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    webhook_retry_hours: float = Field(
        default=72.0, gt=0, le=240, description="How long a delivery is retried."
    )
    webhook_disable_after_hours: float = Field(
        default=72.0,
        gt=0,
        description="An endpoint failing for this long with no success is turned off.",
    )
    webhook_max_in_flight: int = Field(default=4, ge=1, le=32)
    webhook_poll_seconds: float = Field(default=0.5, gt=0)
    webhook_lease_seconds: float = Field(
        default=60.0,
        gt=0,
        description="A claimed delivery is retried by another worker "
        "if its worker has not finished within this (a worker killed mid-delivery).",
    )
    report_retention_years: dict[Category, int] = Field(
        default_factory=dict,
        description='Per category, shorter than 5 years if wanted, e.g. {"wardrobing": 3}.',
    )
    maintenance_enabled: bool = True
    maintenance_interval_seconds: float = Field(default=60.0, gt=0)

    db_pool_size: int = Field(default=20, ge=1)
    db_max_overflow: int = Field(default=0, ge=0)
    db_pool_timeout_seconds: float = Field(default=30.0, gt=0)
    # PostgreSQL only: the risk query's own read-only pool, and the cache of active
    # clients kept in step by LISTEN/NOTIFY (ledger/access/state_cache.py).
    risk_pool_size: int = Field(default=8, ge=1, le=100)
    access_cache_enabled: bool = True
    # Subjects with nothing that may count are answered without a read, from a set each
    # process keeps current by LISTEN/NOTIFY (ledger/scoring/live.py). PostgreSQL only.
    live_subjects_enabled: bool = True
    # With the live set on, the rows read for a subject that may count are held in each
    # process until a notification says the subject changed (ledger/scoring/service.py
    # ``HeldReports``), for at most this many subjects per process (0: read every time).
    # About 1.1 KB a subject with three reports (docs/scoring.md): 50,000 is some 55 MB.
    risk_held_subjects: int = Field(default=50_000, ge=0, le=5_000_000)

    # Pseudonym evaluations per member, counted per element (ledger/pseudonyms/limits.py).
    pseudonym_rate_limit: str = "1000/minute;20000/hour;200000/day"
    pseudonym_rate_limits_by_member: dict[str, str] = Field(
        default_factory=dict,
        description='Per member id, e.g. {"0196…": "5000/minute;1000000/day"}.',
    )
    # "database" (shared by every worker, the default), "redis://host:6379", or
    # "memory://" (one process only; ledger/rate_limits.py).
    rate_limit_storage: str = "database"
    # Failed console sign-ins before the account (or the address) is locked for a while.
    sign_in_failures_per_account: str = "5/15minutes"
    sign_in_failures_per_address: str = "50/15minutes"
    # Failed client authentications at /oauth/token, per client id and per address: past
    # them, the token endpoint refuses before it spends an argon2 check.
    token_failures_per_client: str = "10/15minutes"  # noqa: S105  (a limit, not a secret)
    token_failures_per_address: str = "50/15minutes"  # noqa: S105

    # Roles whose users must have a second factor (TOTP, ledger/members/second_factor.py)
    # to sign in, comma-separated: "operator", "operator,auditor", or "" for none.
    second_factor_roles: str = "operator"

    # Console sessions end after this long without a request, and this long after sign-in.
    console_idle_minutes: int = Field(default=15, ge=1, le=240)
    console_session_hours: int = Field(default=8, ge=1, le=24)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # Who may scrape /metrics: clients in these networks (comma-separated CIDRs; empty
    # for none), or any client sending this bearer token (empty: no token works).
    metrics_allow: str = "127.0.0.0/8,::1/128"
    metrics_token: str = Field(default="", repr=False)
    # Proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (uvicorn's
    # forwarded_allow_ips: comma-separated addresses or CIDRs, "*" for any, "" for
    # none). Behind a TLS-terminating proxy, its address: then per-address limits (the
    # sign-in lockout) see the client's address, not the proxy's.
    trusted_proxies: str = "127.0.0.1,::1"

    # Texts for people (ledger/i18n): when a request names no language the ledger has.
    default_locale: Literal["zh-CN", "en"] = "zh-CN"
    # Times shown to people are in this zone (IANA name); exports and the API keep UTC.
    display_timezone: str = "Asia/Shanghai"

    @field_validator("display_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"not a time zone this machine knows: {value!r}") from exc
        return value

    @field_validator("metrics_allow")
    @classmethod
    def _networks(cls, value: str) -> str:
        _parse_networks(value)
        return value

    @property
    def metrics_allow_networks(self) -> list[IPv4Network | IPv6Network]:
        return _parse_networks(self.metrics_allow)

    @field_validator("second_factor_roles")
    @classmethod
    def _roles(cls, value: str) -> str:
        names = {name.strip() for name in value.split(",") if name.strip()}
        unknown = names - {role.value for role in Role}
        if unknown:
            raise ValueError(f"not a role: {', '.join(sorted(unknown))} (operator, auditor)")
        return ",".join(sorted(names))

    @property
    def roles_needing_second_factor(self) -> frozenset[Role]:
        return frozenset(Role(name) for name in self.second_factor_roles.split(",") if name)

    @field_validator("public_url")
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else None

    @property
    def console_idle_timeout(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.console_idle_minutes)

    @property
    def console_session_lifetime(self) -> dt.timedelta:
        return dt.timedelta(hours=self.console_session_hours)

    @property
    def base_url(self) -> str:
        """The public URL, or ``http://<host>:<port>`` when none is configured."""
        return self.public_url or f"http://{self.host}:{self.port}"

    @field_validator(
        "pseudonym_rate_limit",
        "sign_in_failures_per_account",
        "sign_in_failures_per_address",
        "token_failures_per_client",
        "token_failures_per_address",
    )
    @classmethod
    def _a_rate_limit(cls, value: str) -> str:
        parse_limits(value)
        return value

    @field_validator("pseudonym_rate_limits_by_member")
    @classmethod
    def _rate_limits_by_member(cls, value: dict[str, str]) -> dict[str, str]:
        for member, text in value.items():
            try:
                uuid.UUID(member)
            except ValueError:
                raise ValueError(f"{member!r} is not a member id") from None
            parse_limits(text)
        return value

    @field_validator("report_retention_years")
    @classmethod
    def _retention_at_most_five_years(cls, value: dict[Category, int]) -> dict[Category, int]:
        for category, years in value.items():
            if not 1 <= years <= MAX_RETENTION_YEARS:
                raise ValueError(f"{category}: retention is 1 to {MAX_RETENTION_YEARS} years")
        return value

    def report_policy(self) -> ReportPolicy:
        return ReportPolicy(
            notice_grace=dt.timedelta(days=self.report_notice_grace_days),
            dispute_window=dt.timedelta(days=self.dispute_window_days),
            correction_window=dt.timedelta(days=self.correction_window_days),
            dispute_reminder=dt.timedelta(days=self.dispute_reminder_days),
            marker_validity=dt.timedelta(days=self.protective_marker_days),
            retention_years=dict(self.report_retention_years),
        )

    @property
    def resolved_database_url(self) -> str:
        """The configured database URL, or the SQLite file in the data directory."""
        if self.database_url:
            return normalize_database_url(self.database_url)
        return f"sqlite+aiosqlite:///{(self.data_dir / 'ledger.db').resolve()}"

    @property
    def resolved_migration_database_url(self) -> str:
        """Where migrations run: the migration role's URL, or the service's own."""
        if self.migration_database_url:
            return normalize_database_url(self.migration_database_url)
        return self.resolved_database_url

    @property
    def resolved_key_dir(self) -> Path:
        """The configured key directory, or ``<data_dir>/keys``."""
        return self.key_dir if self.key_dir is not None else self.data_dir / "keys"


def normalize_database_url(url: str) -> str:
    """Pick the async driver for a plain ``postgresql://`` or ``sqlite://`` URL."""
    for plain, driver in (
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    return url


def _parse_networks(value: str) -> list[IPv4Network | IPv6Network]:
    try:
        return [ip_network(part.strip()) for part in value.split(",") if part.strip()]
    except ValueError as exc:
        raise ValueError(f"not a list of networks (CIDR, comma-separated): {exc}") from None
