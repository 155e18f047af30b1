"""The OpenAPI description is the contract: schemathesis generates requests from the
served ``/openapi.json`` and sends them to a real ``ledger`` server on a real socket,
with a token of each kind (a member client holding every scope, an auditor), so that
the authorized paths are exercised, not only the 401s.

Pass means, for every generated request: no server error, no status code the operation
does not document, no content type other than documented, and a body that matches the
documented schema. The run is bounded (``EXAMPLES`` per operation and role) and
reproducible (``derandomize``: the same requests every run). docs/api.md records how
many requests a run sends.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from ledger.access.permissions import Role
from ledger.config import Settings
from ledger.runtime import Runtime
from tests.factories import make_credential, make_user
from tests.live import serving

EXAMPLES = 12  # per operation and role: about 30 operations x 2 roles x 12 on each database
PASSWORD = "correct horse battery staple"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@dataclass(frozen=True)
class Served:
    base_url: str
    tokens: dict[str, str]


async def _accounts(settings: Settings) -> tuple[tuple[str, str], str]:
    runtime = Runtime.build(settings)
    try:
        async with runtime.sessionmaker() as session:
            credential = await make_credential(session, runtime)
            user = await make_user(session, runtime, role=Role.AUDITOR, password=PASSWORD)
            await session.commit()
        return (credential.client_id, credential.secret), user.username
    finally:
        await runtime.close()


@pytest.fixture
def served(settings: Settings) -> Iterator[Served]:
    """A real server on a real socket, with a token of each kind."""
    client, username = asyncio.run(_accounts(settings))
    with serving(settings) as (base_url, _), httpx.Client(base_url=base_url) as http:
        issued = http.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=client)
        signed_in = http.post("/v1/auth/token", json={"username": username, "password": PASSWORD})
        tokens = {
            "member": issued.json()["access_token"],
            "auditor": signed_in.json()["access_token"],
        }
        yield Served(base_url, tokens)


GENERATION = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def _failures(served: Served, role: str, mode: GenerationMode) -> tuple[Counter[int], list[str]]:
    """Every operation's generated requests, sent; their statuses and what failed."""
    contract = schemathesis.openapi.from_url(f"{served.base_url}/openapi.json")
    headers = {"Authorization": f"Bearer {served.tokens[role]}"}
    statuses: Counter[int] = Counter()
    failed: list[str] = []
    for result in contract.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]

        strategy = operation.as_strategy(generation_mode=mode)
        if mode is GenerationMode.POSITIVE:  # the documented examples too, sent as they are
            strategy = st.one_of(strategy, *operation.get_strategies_from_examples())

        @GENERATION
        @given(case=strategy)
        def send(case: schemathesis.Case) -> None:  # type: ignore[type-arg]
            response = case.call_and_validate(
                base_url=served.base_url, headers=headers, checks=CHECKS
            )
            statuses[response.status_code] += 1

        try:
            send()
        except Unsatisfiable:
            # Negative data for an operation that takes no input at all: nothing to send.
            assert mode is GenerationMode.NEGATIVE, operation.label
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # noqa: BLE001  (every operation runs; all failures named)
            failed.append(f"{operation.label}: {_summary(exc)}")
    return statuses, failed


def _summary(exc: BaseException) -> str:
    text = str(exc)
    return text.split("Reproduce with", maxsplit=1)[0].strip() if "Reproduce with" in text else text


@pytest.mark.parametrize("role", ["member", "auditor"])
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_the_service_keeps_its_contract(
    served: Served, role: str, mode: GenerationMode, backend: str
) -> None:
    statuses, failed = _failures(served, role, mode)
    sent = sum(statuses.values())
    tally = ", ".join(f"{code}: {n}" for code, n in sorted(statuses.items()))
    print(f"schemathesis: {sent} requests ({backend}, {role}, {mode.value}; {tally})")  # noqa: T201
    assert sent > 0
    if mode is GenerationMode.POSITIVE:  # authorized paths were exercised, not only refusals
        assert sum(n for code, n in statuses.items() if code < 300) > 0
    assert failed == [], "\n\n".join(failed)
