"""RFC 6962 Merkle trees against the transparency-dev reference vectors, and properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from refund_ledger_client import merkle
from refund_ledger_client.merkle import MemoryTree, ProofError


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# transparency-dev/merkle testonly/constants.go: leaf inputs, and roots for sizes 0..8.
LEAVES = [
    h(x)
    for x in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
ROOTS = [
    h(x)
    for x in [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]
]
LEVEL1 = [
    h(x)
    for x in [
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ]
]

# testonly/reference_test.go: (index, size, proof) and (size1, size2, proof).
INCLUSION = [
    (0, 1, []),
    (0, 2, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"]),
    (1, 2, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]
CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]


@pytest.fixture(scope="module")
def tree() -> MemoryTree:
    tree = MemoryTree()
    for leaf in LEAVES:
        tree.append_data(leaf)
    return tree


def test_reference_roots_for_every_size(tree: MemoryTree) -> None:
    assert [tree.root(size) for size in range(9)] == ROOTS


def test_reference_level_one_nodes(tree: MemoryTree) -> None:
    assert tree.levels[1] == LEVEL1


@pytest.mark.parametrize(("index", "size", "expected"), INCLUSION)
def test_reference_inclusion_proofs(
    tree: MemoryTree, index: int, size: int, expected: list[str]
) -> None:
    proof = merkle.inclusion_proof(tree.get, index, size)
    assert proof == [h(x) for x in expected]
    merkle.verify_inclusion(merkle.leaf_hash(LEAVES[index]), index, size, proof, ROOTS[size])


@pytest.mark.parametrize(("old", "new", "expected"), CONSISTENCY)
def test_reference_consistency_proofs(
    tree: MemoryTree, old: int, new: int, expected: list[str]
) -> None:
    proof = merkle.consistency_proof(tree.get, old, new)
    assert proof == [h(x) for x in expected]
    merkle.verify_consistency(old, new, ROOTS[old], ROOTS[new], proof)


def test_impossible_proof_requests_are_refused(tree: MemoryTree) -> None:
    with pytest.raises(ProofError):
        merkle.inclusion_proof(tree.get, 8, 8)
    with pytest.raises(ProofError):
        merkle.consistency_proof(tree.get, 0, 8)
    with pytest.raises(ProofError):
        merkle.consistency_proof(tree.get, 5, 4)
    with pytest.raises(ProofError):
        merkle.verify_consistency(3, 3, ROOTS[3], ROOTS[4], [])


def _flip(value: bytes, bit: int) -> bytes:
    index = bit // 8 % len(value)
    return value[:index] + bytes([value[index] ^ (1 << bit % 8)]) + value[index + 1 :]


leaf_lists = st.lists(st.binary(max_size=12), min_size=1, max_size=70)
# Distinct leaves: with two equal leaves, a proof is rightly valid at either index.
distinct_leaf_lists = st.lists(st.binary(max_size=12), min_size=1, max_size=70, unique=True)


@given(leaves=distinct_leaf_lists, data=st.data())
def test_every_inclusion_proof_verifies_and_any_change_breaks_it(
    leaves: list[bytes], data: st.DataObject
) -> None:
    tree = MemoryTree()
    for leaf in leaves:
        tree.append_data(leaf)
    size = data.draw(st.integers(1, len(leaves)), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    root = tree.root(size)
    leaf = merkle.leaf_hash(leaves[index])
    proof = merkle.inclusion_proof(tree.get, index, size)
    merkle.verify_inclusion(leaf, index, size, proof, root)

    bit = data.draw(st.integers(0, 255), label="bit")
    with pytest.raises(ProofError):
        merkle.verify_inclusion(_flip(leaf, bit), index, size, proof, root)
    with pytest.raises(ProofError):
        merkle.verify_inclusion(leaf, index, size, proof, _flip(root, bit))
    if proof:
        step = data.draw(st.integers(0, len(proof) - 1), label="step")
        bad = [*proof[:step], _flip(proof[step], bit), *proof[step + 1 :]]
        with pytest.raises(ProofError):
            merkle.verify_inclusion(leaf, index, size, bad, root)
        with pytest.raises(ProofError):
            merkle.verify_inclusion(leaf, index, size, proof[:-1], root)
    if size > 1:
        other = (index + 1) % size
        with pytest.raises(ProofError):
            merkle.verify_inclusion(leaf, other, size, proof, root)


@given(leaves=leaf_lists, data=st.data())
def test_every_consistency_proof_verifies_and_any_change_breaks_it(
    leaves: list[bytes], data: st.DataObject
) -> None:
    tree = MemoryTree()
    for leaf in leaves:
        tree.append_data(leaf)
    new = data.draw(st.integers(1, len(leaves)), label="new")
    old = data.draw(st.integers(1, new), label="old")
    proof = merkle.consistency_proof(tree.get, old, new)
    old_root, new_root = tree.root(old), tree.root(new)
    merkle.verify_consistency(old, new, old_root, new_root, proof)
    if old == new:
        return
    bit = data.draw(st.integers(0, 255), label="bit")
    with pytest.raises(ProofError):
        merkle.verify_consistency(old, new, _flip(old_root, bit), new_root, proof)
    with pytest.raises(ProofError):
        merkle.verify_consistency(old, new, old_root, _flip(new_root, bit), proof)
    step = data.draw(st.integers(0, len(proof) - 1), label="step")
    bad = [*proof[:step], _flip(proof[step], bit), *proof[step + 1 :]]
    with pytest.raises(ProofError):
        merkle.verify_consistency(old, new, old_root, new_root, bad)


@given(leaves=leaf_lists)
def test_the_stored_nodes_agree_with_the_recursive_definition(leaves: list[bytes]) -> None:
    tree = MemoryTree()
    for leaf in leaves:
        tree.append_data(leaf)

    def reference(items: list[bytes]) -> bytes:
        if len(items) == 1:
            return merkle.leaf_hash(items[0])
        k = merkle._split(len(items))
        return merkle.node_hash(reference(items[:k]), reference(items[k:]))

    assert tree.root() == reference(leaves)
