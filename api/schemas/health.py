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
            "schema_revision": "20261202_0012",
            "expected_revision": "20261202_0012",
            "evidence_index": "loaded",
        }
    )

    status: str = Field(description="ready, or what stops it")
    database: str = Field(description="ok, or why the database cannot be used")
    schema_revision: str | None = Field(description="the database's schema revision")
    expected_revision: str = Field(description="the revision this code needs")
    evidence_index: str = Field(
        description="loaded, or loading: this process is still reading the stored photo "
        "fingerprints into memory, and answers evidence checks only once it has"
    )
