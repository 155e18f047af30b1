"""The core never imports the web framework; the SDK never imports the server."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import refund_ledger_client

import ledger

FORBIDDEN = {"fastapi", "starlette", "uvicorn", "api"}


def _imports(root: Path) -> list[str]:
    """``file: module`` for every absolute import under ``root``."""
    found = []
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text("utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            found += [f"{path.relative_to(root)}: {name}" for name in names]
    return found


def test_the_core_does_not_import_the_web_layer() -> None:
    offenders = [
        i
        for i in _imports(Path(ledger.__file__).parent)
        if i.split(": ")[1].split(".")[0] in FORBIDDEN
    ]
    # uvicorn is started by `ledger serve`, the one sanctioned exception.
    assert [o for o in offenders if o != "cli.py: uvicorn"] == []


def test_the_sdk_imports_nothing_of_the_server_and_only_its_own_dependencies() -> None:
    allowed = {
        "httpx",
        "phonenumbers",
        "rbcl",
        "cryptography",
        "standardwebhooks",
        "refund_ledger_client",
    }
    photos = {"pdqhash", "PIL", "numpy", "c2pa"}  # the photos extra: evidence, provenance
    offenders = []
    for found in _imports(Path(refund_ledger_client.__file__).parent):
        path, module = found.split(": ")
        top = module.split(".")[0]
        if top in sys.stdlib_module_names or top in allowed:
            continue
        if top in photos and path in {"evidence.py", "provenance.py"}:
            continue
        offenders.append(found)
    assert offenders == []


def test_the_web_layer_writes_no_audit_events() -> None:
    """Routers and console pages call core functions, which record their own events
    (ledger/audit/reads.py): no ``op.event(...)``, no ``audit.writer``, no ``record``."""
    root = Path(ledger.__file__).parent.parent / "api"
    offenders = []
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text("utf-8"))
        for node in ast.walk(tree):
            where = f"{path.relative_to(root)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                if node.func.attr in {"event", "refused"} or (
                    node.func.attr == "record" and not isinstance(node.func.value, ast.Name)
                ):
                    offenders.append(f"{where}: .{node.func.attr}(...)")
                if node.func.attr == "write" and "writer" in ast.unparse(node.func.value):
                    offenders.append(f"{where}: {ast.unparse(node.func)}(...)")
            if isinstance(node, ast.ImportFrom) and node.module == "ledger.audit.log":
                offenders.append(f"{where}: imports {[a.name for a in node.names]}")
    assert offenders == []
