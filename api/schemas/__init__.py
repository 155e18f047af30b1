"""Request and response models, one module per router."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import Path, Query
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError
from pydantic.config import JsonDict

from api.errors import field_errors
from ledger.subjects.pseudonyms import PSEUDONYM_PATTERN


class RequestModel(BaseModel):
    """Every request body: no unknown fields, so a typo in a field name is an error, not
    a silent default; numbers and booleans are typed ``Integer`` (or marked ``Strict``),
    so ``true`` or ``"500"`` is not an amount (a test checks every request model).

    Not ``strict=True`` for the whole model: FastAPI validates a parsed body in Python
    mode, where strictness would also refuse ISO 8601 strings for times, and enum values.
    """

    model_config = ConfigDict(extra="forbid")


# A JSON integer, and only that: no booleans, strings or floats.
Integer = Annotated[int, Strict()]

EXAMPLE_SUBJECT = "q3Xb0R6ZkYp4vM2tLw8nHc1sJf9eUa5gDi7oKz_T-yE"
EXAMPLE_REPORT_ID = "01938f0c-5b7e-7a31-9d2c-0f4b8e6a1c22"
EXAMPLE_DISPUTE_ID = "01938f2a-0c11-7d40-8e5b-3a9f0d2c4b61"
EXAMPLE_HASH = "3q2+7w8AAAAeHg0KDQoNChkZGRkZGRkZGRkZGRkZGRk="


def example(value: JsonDict, **config: Any) -> ConfigDict:
    """A model's configuration with one example, for the OpenAPI description."""
    settings = ConfigDict(json_schema_extra={"examples": [value]})
    settings.update(config)  # type: ignore[typeddict-item]
    return settings


def checked_by_the_core(**constraints: Any) -> dict[str, Any]:
    """``json_schema_extra`` for constraints the core checks itself, with a message that
    says more than a pattern can (a raw phone number is named as such): documented in
    the schema, enforced by the service, and left out of pydantic's own validation so
    that the core's answer is the one given."""
    return constraints


# A buyer as the ledger knows them: never an identifier, always this (docs/pseudonyms.md).
Pseudonym = Annotated[
    str,
    Field(
        json_schema_extra=checked_by_the_core(pattern=PSEUDONYM_PATTERN),
        description="the buyer's pseudonym: 43 characters of base64url, from the SDK's "
        "pseudonymize(); never a phone number, ID number or email",
        examples=[EXAMPLE_SUBJECT],
    ),
]

# A member's own reference (a refund request id, a case number): letters, digits . _ : / -
Reference = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:/-]+$")]

# A SHA-256 digest in hex (either case; the ledger keeps it in lower case).
Sha256Hex = Annotated[
    str,
    Field(
        json_schema_extra=checked_by_the_core(pattern=r"^[0-9a-fA-F]{64}$"),
        description="SHA-256 in hex, 64 characters",
        examples=["9f2c4d1e8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f10"],
    ),
]

# Ids, leaf indexes and tree sizes are PostgreSQL BIGINTs: a larger number names nothing,
# and is refused before it reaches the database (which would reject it with an error).
INT64_MAX = 2**63 - 1

EventId = Annotated[int, Path(ge=1, le=INT64_MAX, description="an audit event id")]
LeafIndex = Annotated[int, Path(ge=0, le=INT64_MAX, description="a leaf index")]
TreeSize = Annotated[int, Path(ge=0, le=INT64_MAX, description="a tree size")]


# Every list endpoint: ``limit`` items, then ``next_cursor`` to pass back (docs/api.md).
Cursor = Annotated[
    str | None,
    Query(max_length=512, description="next_cursor from the previous page, unchanged"),
]


ReportId = Annotated[uuid.UUID, Path(description="the report's id")]
DisputeId = Annotated[uuid.UUID, Path(description="the dispute's id")]


def page_limit(most: int) -> Any:
    """``limit``: how many items a page holds."""
    return Query(ge=1, le=most, description=f"items per page, 1 to {most}")


def tree_size_query(description: str) -> Any:
    """A tree size given in the query string."""
    return Query(ge=1, le=INT64_MAX, description=description)


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` documenting a JSON request body that a route reads itself (to
    audit a refusal before answering it), with the model's ``$defs`` inlined so the
    schema stands alone."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                rest = {k: v for k, v in node.items() if k != "$ref"}
                return inline(defs[ref.removeprefix("#/$defs/")]) | inline(rest)
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": inline(schema)}},
        }
    }


M = TypeVar("M", bound=BaseModel)


def parse_body(model: type[M], raw: bytes) -> M:
    """A JSON body read by the route itself, refused exactly as FastAPI refuses the
    bodies it parses (``RequestValidationError``, fields under ``body``)."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_input=False)]
        ) from None


async def parse_recorded(
    model: type[M], raw: bytes, refuse: Callable[[list[str]], Awaitable[object]]
) -> M:
    """``parse_body``, with a refused body recorded first: ``refuse`` gets the fields
    it names (never their values), as the purpose-bound queries' audit requires."""
    try:
        return parse_body(model, raw)
    except RequestValidationError as exc:
        await refuse([f["field"] for f in field_errors(exc.errors())])
        raise
