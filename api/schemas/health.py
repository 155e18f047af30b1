from __future__ import annotations

from pydantic import BaseModel, Field

from api.schemas import example


class Health(BaseModel):
    model_config = example({"status": "ok"})

    status: str = Field(description="ok: the process is alive")


class Readiness(BaseModel):
    model_config = example(
        {
            "status": "ready",
            "database": "ok",
            "schema_revision": "20261201_0010",
            "expected_revision": "20261201_0010",
        }
    )

    status: str = Field(description="ready, or what stops it")
    database: str = Field(description="ok, or why the database cannot be used")
    schema_revision: str | None = Field(description="the database's schema revision")
    expected_revision: str = Field(description="the revision this code needs")
