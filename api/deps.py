"""Dependencies shared by the routers: the runtime and the request's transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.runtime import Runtime


async def get_runtime(request: Request) -> Runtime:
    # ``async`` on purpose: FastAPI runs a plain ``def`` dependency in a worker thread,
    # which costs a thread hand-off on every request for what is an attribute read.
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """The request's transaction: committed before the response is sent, or rolled back.

    Declared with ``scope="function"`` below, so the commit happens before FastAPI sends
    the response; a client never sees 201 for a write whose commit then failed.
    """
    async with runtime.sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_read_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """A session for routes that only read; its transaction is rolled back at the end."""
    async with runtime.read_sessionmaker() as session:
        yield session


ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session, scope="function")]
