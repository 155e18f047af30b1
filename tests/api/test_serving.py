"""api/serving.py: each loop turn's writes go out as one, over real sockets, and nothing
else about the connection changes."""

from __future__ import annotations

import asyncio
import socket

import httpx
from starlette.types import Receive, Scope, Send

from api.serving import FLUSH_AT, OneWriteProtocol, _GatheringTransport
from tests.live import serving_app


class _Sink(asyncio.Protocol):
    def __init__(self) -> None:
        self.data = bytearray()
        self.closed = asyncio.Event()
        self.arrived = asyncio.Event()

    def data_received(self, data: bytes) -> None:
        self.data += data
        self.arrived.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set()


async def _pair() -> tuple[_GatheringTransport, asyncio.Transport, _Sink]:
    """A gathering transport writing to a real socket, and what the other end reads."""
    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair()
    transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
    sink = _Sink()
    await loop.connect_accepted_socket(lambda: sink, theirs)
    return _GatheringTransport(transport, loop), transport, sink


async def _read(sink: _Sink, size: int) -> bytes:
    async with asyncio.timeout(5):
        while len(sink.data) < size:
            sink.arrived.clear()
            await sink.arrived.wait()
    return bytes(sink.data)


async def test_one_turns_writes_are_sent_together_in_order() -> None:
    gathering, transport, sink = await _pair()
    gathering.write(b"HTTP/1.1 200 OK\r\n\r\n")
    gathering.write(memoryview(b"{}"))
    gathering.write(b"")
    assert gathering.get_write_buffer_size() == 21  # held until the turn ends
    assert sink.data == b""
    assert await _read(sink, 21) == b"HTTP/1.1 200 OK\r\n\r\n{}"
    assert gathering.get_write_buffer_size() == 0
    transport.close()


async def test_a_large_body_is_not_held_back() -> None:
    gathering, transport, sink = await _pair()
    gathering.write(b"a" * (FLUSH_AT - 1))
    gathering.write(b"b")  # reaches the threshold: sent now, not at the end of the turn
    assert gathering.get_write_buffer_size() < FLUSH_AT
    gathering.write(b"c")
    assert await _read(sink, FLUSH_AT + 1) == b"a" * (FLUSH_AT - 1) + b"bc"
    transport.close()


async def test_closing_sends_what_is_gathered_and_aborting_drops_it() -> None:
    gathering, _, sink = await _pair()
    gathering.write(b"last words")
    gathering.close()
    async with asyncio.timeout(5):
        await sink.closed.wait()
    assert bytes(sink.data) == b"last words"

    gathering, _, sink = await _pair()
    gathering.write(b"never sent")
    gathering.abort()
    async with asyncio.timeout(5):
        await sink.closed.wait()
    await asyncio.sleep(0.01)  # the turn's flush finds nothing to send
    assert bytes(sink.data) == b""


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/stream":  # a body in many writes, larger than FLUSH_AT
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(200):
            await send({"type": "http.response.body", "body": b"%05d" % i * 100, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    body = b'{"path":"' + scope["path"].encode() + b'"}'
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def test_uvicorn_serves_through_it_keep_alive_streaming_and_close() -> None:
    with serving_app(_app, http=OneWriteProtocol) as url, httpx.Client(base_url=url) as client:
        for i in range(20):  # one keep-alive connection, answer after answer
            assert client.get(f"/{i}").json() == {"path": f"/{i}"}
        streamed = client.get("/stream")
        assert streamed.content == b"".join(b"%05d" % i * 100 for i in range(200))
        closing = client.get("/last", headers={"Connection": "close"})
        assert closing.json() == {"path": "/last"}
        assert closing.headers["connection"] == "close"
