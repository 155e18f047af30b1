"""Verifying the ledger's webhooks (Standard Webhooks: ``webhook-id``,
``webhook-timestamp``, ``webhook-signature``), with the ``standardwebhooks`` library.

    from refund_ledger_client.webhooks import verify_webhook

    event = verify_webhook(secret, request_body, request_headers)
    if event.type == "subject.assessment_changed": ...

Verify the raw body, before any JSON parsing. A delivery may arrive more than once
(with the same ``webhook-id``): act on each ``id`` once.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError


class InvalidWebhook(Exception):
    """Not signed by the ledger with this secret, too old or too new (5 minutes either
    way), or not one of its events: answer 400 and drop it."""


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    id: str  # webhook-id: the same on every retry of one event
    type: str  # "subject.assessment_changed", "dispute.opened" …
    timestamp: dt.datetime
    data: Mapping[str, Any]


def verify_webhook(
    secret: str | list[str], body: bytes | str, headers: Mapping[str, str]
) -> WebhookEvent:
    """The event, if ``body`` and ``headers`` carry a valid signature by ``secret`` (or
    by any of several, while you rotate it); else ``InvalidWebhook``."""
    secrets = [secret] if isinstance(secret, str) else list(secret)
    lowered = {k.lower(): v for k, v in headers.items()}
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    for candidate in secrets:
        try:
            Webhook(candidate).verify(text, lowered, json_parse=False)
        except WebhookVerificationError:
            continue
        except (ValueError, TypeError) as exc:  # a header or secret that is not base64
            raise InvalidWebhook(f"unreadable signature or secret: {exc}") from None
        return _event(lowered["webhook-id"], text)
    raise InvalidWebhook("no valid signature by this secret, or a timestamp too far off")


def _event(message_id: str, text: str) -> WebhookEvent:
    try:
        document = json.loads(text)
        return WebhookEvent(
            id=message_id,
            type=str(document["type"]),
            timestamp=dt.datetime.fromisoformat(document["timestamp"]),
            data=dict(document["data"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidWebhook(f"a signed body that is not a ledger event: {exc}") from None
