"""Request and response models, one module per router."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import Path, Query
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Strict, ValidationError


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
