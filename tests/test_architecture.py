"""The core never imports the web framework."""

from __future__ import annotations

import ast
from pathlib import Path

import ledger

FORBIDDEN = {"fastapi", "starlette", "uvicorn", "api"}


def test_the_core_does_not_import_the_web_layer() -> None:
    root = Path(ledger.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text("utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [
                f"{path.relative_to(root)}: {name}"
                for name in names
                if name.split(".")[0] in FORBIDDEN
            ]
    # uvicorn is started by `ledger serve`, the one sanctioned exception.
    assert [o for o in offenders if o != "cli.py: uvicorn"] == []
