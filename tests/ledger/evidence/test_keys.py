"""The fingerprint key's transform keeps every distance and hides the raw bits."""

from __future__ import annotations

import datetime as dt
import json
import stat
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.evidence.keys import (
    KEY_FILE,
    FingerprintKey,
    FingerprintKeyError,
    ensure_key,
    load_key,
)

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
HASHES = st.binary(min_size=32, max_size=32)


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> FingerprintKey:
    directory = tmp_path_factory.mktemp("keys") / "evidence"
    assert ensure_key(directory, now=NOW)
    return load_key(directory)


def _distance(a: bytes, b: bytes) -> int:
    return (int.from_bytes(a) ^ int.from_bytes(b)).bit_count()


@settings(max_examples=300, deadline=None)
@given(a=HASHES, b=HASHES)
def test_distances_are_unchanged(key: FingerprintKey, a: bytes, b: bytes) -> None:
    assert _distance(key.transform(a), key.transform(b)) == _distance(a, b)


@settings(max_examples=300, deadline=None)
@given(raw=HASHES)
def test_it_inverts_and_the_stored_value_is_not_the_raw_hash(
    key: FingerprintKey, raw: bytes
) -> None:
    stored = key.transform(raw)
    assert key.invert(stored) == raw
    assert stored != raw


def test_many_at_once_equals_one_at_a_time(key: FingerprintKey) -> None:
    rows = np.random.default_rng(7).integers(0, 256, size=(50, 32), dtype=np.uint8)
    together = key.transform_many(rows)
    assert [bytes(r) for r in together] == [key.transform(bytes(r)) for r in rows]


def test_the_key_file_is_private_and_made_once(tmp_path: Path) -> None:
    directory = tmp_path / "evidence"
    assert ensure_key(directory, now=NOW)
    first = load_key(directory)
    assert not ensure_key(directory, now=NOW)  # kept, never replaced
    assert load_key(directory).key_id == first.key_id
    assert stat.S_IMODE((directory / KEY_FILE).stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700


def test_two_ledgers_keys_differ(tmp_path: Path) -> None:
    ensure_key(tmp_path / "a", now=NOW)
    ensure_key(tmp_path / "b", now=NOW)
    raw = bytes(range(32))
    assert load_key(tmp_path / "a").transform(raw) != load_key(tmp_path / "b").transform(raw)


def test_a_tampered_key_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "evidence"
    ensure_key(directory, now=NOW)
    path = directory / KEY_FILE
    document = json.loads(path.read_text())
    document["permutation"][0], document["permutation"][1] = (
        document["permutation"][1],
        document["permutation"][0],
    )
    path.write_text(json.dumps(document))
    with pytest.raises(FingerprintKeyError, match="does not match its id"):
        load_key(directory)
