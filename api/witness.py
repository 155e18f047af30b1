"""The witness's HTTP interface (C2SP tlog-witness): ``ledger audit witness serve``.

A separate, small server: a member or a regulator runs it, not the ledger. It holds its
own key and state and answers two routes; ledger/audit/witness.py does the checking.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from ledger.audit.witness import WITNESS_ENV, Witness

MAX_REQUEST_BYTES = 64 * 1024  # 63 proof lines and a checkpoint with its signatures


def create_witness_app(witness: Witness) -> Starlette:
    async def add_checkpoint(request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_REQUEST_BYTES:
            return PlainTextResponse("the request is too large\n", status_code=413)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return PlainTextResponse("the request is not UTF-8\n", status_code=400)
        answer = await witness.add_checkpoint(text)
        return Response(answer.body, status_code=answer.status, media_type=answer.content_type)

    async def latest(request: Request) -> Response:
        origin = request.query_params.get("origin", "")
        note = witness.latest(origin)
        if note is None:
            return PlainTextResponse("no checkpoint cosigned for that log\n", status_code=404)
        return PlainTextResponse(note)

    async def key(_request: Request) -> Response:
        return PlainTextResponse(witness.verifier_key + "\n")

    return Starlette(
        routes=[
            Route("/add-checkpoint", add_checkpoint, methods=["POST"]),
            Route("/checkpoint", latest, methods=["GET"]),
            Route("/key", key, methods=["GET"]),
        ]
    )


def create_witness_app_from_env() -> Starlette:
    """Entry point for ``ledger audit witness serve`` (uvicorn ``--factory``)."""
    config = json.loads(os.environ[WITNESS_ENV])
    witness = Witness.load(Path(config["dir"]), name=config["name"], logs=config["logs"])
    return create_witness_app(witness)
