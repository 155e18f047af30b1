"""uvicorn's httptools protocol, with each answer sent in one write.

uvicorn writes the status line and headers of an answer, then its body, as two writes
on the socket: two system calls, and two segments for the client to wake up for. An
answer of the risk query is a few hundred bytes, and both writes happen in the same
turn of the event loop. Here the connection's transport gathers what is written during
one turn and sends it at the end of the turn, in one call (``writelines`` would not:
uvloop writes each buffer it is given). The bytes, their order and flow control are
unchanged; a large body is not held back (``FLUSH_AT``), and closing or aborting the
connection sends or drops what is gathered first.

Measured in docs/benchmarks.md (issue 19). ``ledger serve`` selects it with
``http="api.serving:OneWriteProtocol"``; every other uvicorn setting is as documented.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

FLUSH_AT = 64 * 1024  # bytes gathered before they go out at once, whatever the turn


class _GatheringTransport:
    """A transport that sends what one loop turn writes as one buffer."""

    __slots__ = ("_loop", "_pending", "_size", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []
        self._size = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(bytes(data))
        self._size += len(data)
        if self._size >= FLUSH_AT:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending, self._size = self._pending, [], 0
        if not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending, self._size = [], 0
        self._transport.abort()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def get_write_buffer_size(self) -> int:
        return self._size + self._transport.get_write_buffer_size()

    def __getattr__(self, name: str) -> Any:  # get_extra_info, set_protocol, …
        return getattr(self._transport, name)


class OneWriteProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` on a transport that sends each loop turn's writes at once."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        gathering: Any = _GatheringTransport(transport, self.loop)
        super().connection_made(gathering)
