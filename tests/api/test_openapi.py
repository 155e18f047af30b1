"""The OpenAPI description says what the service does (api/openapi.py): security, every
problem, a description on every field, examples, readable operation ids, and readers
that work with no internet."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app
from api.errors import CATALOGUE, PROBLEM_JSON
from ledger.access.permissions import Scope
from ledger.audit.tags import Tag
from ledger.config import Settings

DOCS = Path(__file__).parents[2] / "docs" / "api.md"
# Answers of their own: RFC 6749 errors (the token endpoint), the readiness report.
OWN_ERRORS = {"/oauth/token", "/readyz"}


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    app: FastAPI = create_app(Settings(data_dir=tmp_path_factory.mktemp("openapi")))
    return app.openapi()


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, m, op) for path, ops in spec["paths"].items() for m, op in ops.items()]


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref:
        found: dict[str, Any] = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
        return found
    return schema


def test_operation_ids_are_the_endpoints_names(spec: dict[str, Any]) -> None:
    ids = [op["operationId"] for _, _, op in _operations(spec)]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z][a-z_]+", i) for i in ids), ids
    assert "risk_query" in ids
    assert "file_report" in ids


def test_the_security_schemes_and_each_operations_scopes(spec: dict[str, Any]) -> None:
    schemes = spec["components"]["securitySchemes"]
    flow = schemes["memberClient"]["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == "/oauth/token"
    assert set(flow["scopes"]) == {s.value for s in Scope}
    assert schemes["consoleUser"]["scheme"] == "bearer"
    risk = spec["paths"]["/v1/risk/query"]["post"]
    assert risk["security"] == [{"memberClient": ["risk:read"]}]
    events = spec["paths"]["/v1/audit/events"]["get"]
    assert events["security"] == [{"consoleUser": []}]
    assert "security" not in spec["paths"]["/healthz"]["get"]


def test_every_error_answer_is_a_documented_problem(spec: dict[str, Any]) -> None:
    problem = spec["components"]["schemas"]["Problem"]
    assert set(problem["properties"]["type"]["enum"]) == {f"/problems/{p.slug}" for p in CATALOGUE}
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    for path, method, op in _operations(spec):
        codes = set(op["responses"])
        assert {"422", "503"} <= codes, (method, path)
        if "security" in op:
            assert {"400", "401", "403"} <= codes, (method, path)
        if "requestBody" in op:
            assert {"413", "415"} <= codes, (method, path)
        for code, response in op["responses"].items():
            if int(code) >= 400 and path not in OWN_ERRORS:
                assert list(response["content"]) == [PROBLEM_JSON], (method, path, code)


def _undescribed(spec: dict[str, Any], schema: dict[str, Any], where: str) -> list[str]:
    missing = []
    for name, prop in schema.get("properties", {}).items():
        if "description" not in prop and "$ref" not in prop:
            missing.append(f"{where}.{name}")
    return missing


def test_every_field_has_a_description(spec: dict[str, Any]) -> None:
    missing: list[str] = []
    for name, schema in spec["components"]["schemas"].items():
        missing += _undescribed(spec, schema, name)
    for path, method, op in _operations(spec):
        for content in op.get("requestBody", {}).get("content", {}).values():
            missing += _undescribed(spec, content["schema"], f"{method} {path}")
        for parameter in op.get("parameters", []):
            if "description" not in parameter and "description" not in parameter["schema"]:
                missing.append(f"{method} {path} ?{parameter['name']}")
    assert missing == []


def test_every_request_body_and_main_answer_has_an_example(spec: dict[str, Any]) -> None:
    missing = []
    for path, method, op in _operations(spec):
        bodies = op.get("requestBody", {}).get("content", {})
        for media, content in bodies.items():
            if media == "application/json" and "examples" not in _resolve(spec, content["schema"]):
                missing.append(f"{method} {path} (request)")
        for code, response in op["responses"].items():
            schema = response.get("content", {}).get("application/json", {}).get("schema")
            main = code.startswith("2") and schema is not None and "$ref" in schema
            if main and "examples" not in _resolve(spec, schema):
                missing.append(f"{method} {path} ({code})")
    assert missing == []


def test_the_documentation_names_every_problem_type() -> None:
    text = DOCS.read_text("utf-8")
    assert [p.slug for p in CATALOGUE if f"/problems/{p.slug}`" not in text] == []


async def test_the_readers_are_served_from_the_ledger(client: httpx.AsyncClient) -> None:
    for page in ("/docs", "/redoc"):
        html = (await client.get(page)).text
        sources = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert sources, page
        assert [s for s in sources if s.startswith(("http:", "https:", "//"))] == [], page
        for source in sources:
            if source.startswith("/docs/assets/"):
                assert (await client.get(source)).status_code == 200, source


def test_the_documented_map_of_operations_names_real_functions_and_tags() -> None:
    text = DOCS.read_text("utf-8")
    section = text[text.index("## Where each operation is served") :]
    tags = {t.value for t in Tag}
    named = re.findall(r"`([a-z]+:[a-z_:-]+)`", section)
    assert named
    assert [t for t in named if t not in tags] == []
    for row in re.findall(r"^\| `(?:GET|POST)[^|]*\| (.*?) \|", section, re.MULTILINE):
        first, *others = re.findall(r"`([A-Za-z_.]+)`", row)
        owner = _resolve_dotted(first.rpartition(".")[0])
        for name in [first.rpartition(".")[2], *others]:
            assert hasattr(owner, name), (row, name)


def _resolve_dotted(dotted: str) -> Any:
    """A module, or an attribute of one (a class), from its dotted name."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: Any = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            found = getattr(found, attribute)
        return found
    raise AssertionError(dotted)
