"""The RFC 6962 verifier probes published with transparency-dev/merkle (its testdata):
every inclusion and consistency probe accepted or rejected exactly as published.

The probes are data of another project, so they live in the steering repository's
shared test data (``shared/testdata/merkle/{inclusion,consistency}/…/*.json``), not in
this repository; the tests skip, saying so, where that folder is absent.
``LEDGER_TEST_MERKLE_PROBES`` points at another copy (a checkout's ``testdata``).
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest
from refund_ledger_client import merkle
from refund_ledger_client.proofs import Invalid, verify_inclusion

PROBES = Path(
    os.environ.get("LEDGER_TEST_MERKLE_PROBES")
    or Path(__file__).resolve().parents[2].parent / "shared" / "testdata" / "merkle"
)


def _probes(kind: str) -> list[tuple[str, dict[str, Any]]]:
    folder = PROBES / kind
    return [
        (str(path.relative_to(folder)), json.loads(path.read_text()))
        for path in sorted(folder.rglob("*.json"))
    ]


def _hashes(values: list[str] | None) -> list[bytes]:
    return [base64.b64decode(v) for v in values or []]


def _present(kind: str) -> list[tuple[str, dict[str, Any]]]:
    found = _probes(kind) if (PROBES / kind).is_dir() else []
    if not found:
        pytest.skip(f"no {kind} probes in shared/testdata/merkle/{kind} (transparency-dev/merkle)")
    return found


def test_the_inclusion_probes_are_judged_as_published() -> None:
    wrong = []
    for name, probe in _present("inclusion"):
        try:
            verify_inclusion(
                base64.b64decode(probe["leafHash"] or ""),
                probe["leafIdx"],
                probe["treeSize"],
                _hashes(probe["proof"]),
                base64.b64decode(probe["root"] or ""),
            )
            rejected = False
        except Invalid:
            rejected = True
        if rejected != probe["wantErr"]:
            wrong.append(name)
    assert wrong == []
    assert len(_probes("inclusion")) >= 98


def test_the_consistency_probes_are_judged_as_published() -> None:
    wrong = []
    for name, probe in _present("consistency"):
        try:
            merkle.verify_consistency(
                probe["size1"],
                probe["size2"],
                base64.b64decode(probe["root1"] or ""),
                base64.b64decode(probe["root2"] or ""),
                _hashes(probe["proof"]),
            )
            rejected = False
        except merkle.ProofError:
            rejected = True
        if rejected != probe["wantErr"]:
            wrong.append(name)
    assert wrong == []
    assert len(_probes("consistency")) >= 98
