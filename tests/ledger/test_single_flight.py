"""Concurrent lookups of one key share one call: its result, or its exception."""

from __future__ import annotations

import asyncio

import pytest

from ledger.single_flight import SingleFlight


async def test_concurrent_callers_share_one_call_and_a_later_one_calls_again() -> None:
    flight: SingleFlight[str, int] = SingleFlight()
    calls = 0
    release = asyncio.Event()

    async def lookup() -> int:
        nonlocal calls
        calls += 1
        await release.wait()
        return calls

    waiting = [asyncio.create_task(flight.run("k", lookup)) for _ in range(20)]
    other = asyncio.create_task(flight.run("other", lookup))  # another key: its own call
    await asyncio.sleep(0)
    release.set()
    assert sorted(set(await asyncio.gather(*waiting))) in ([1], [2])
    await other
    assert calls == 2
    assert len(flight) == 0
    assert await flight.run("k", lookup) == 3  # done calls are not kept


async def test_every_caller_hears_of_a_failure() -> None:
    flight: SingleFlight[str, int] = SingleFlight()

    async def failing() -> int:
        await asyncio.sleep(0)
        raise ConnectionRefusedError

    results = await asyncio.gather(
        *(flight.run("k", failing) for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, ConnectionRefusedError) for r in results)


async def test_a_caller_that_gives_up_does_not_cancel_the_others() -> None:
    flight: SingleFlight[str, str] = SingleFlight()
    release = asyncio.Event()

    async def lookup() -> str:
        await release.wait()
        return "answer"

    impatient = asyncio.create_task(flight.run("k", lookup))
    patient = asyncio.create_task(flight.run("k", lookup))
    await asyncio.sleep(0)
    impatient.cancel()
    with pytest.raises(asyncio.CancelledError):
        await impatient
    release.set()
    assert await patient == "answer"
