"""Verify an audit receipt offline, from a shell:

    refund-ledger-receipt receipt.json "refund-ledger/audit+1a2b3c4d+AcmB…"

The receipt is the JSON from GET /v1/audit/events/{id}/receipt; the verifier key is from
GET /v1/audit/keys (pin it: fetch it once, out of band, and keep it). Exit status 0 when
the receipt holds, 1 when it does not, 2 for a wrong invocation; one line either way.
The checks are in ``refund_ledger_client.proofs``, which the SDK uses too (this module is not
imported by the SDK, so ``python -m`` runs it without a warning).
"""

from __future__ import annotations

import json
import sys

from refund_ledger_client.proofs import Invalid, verify_receipt

__all__ = ["Invalid", "main", "verify_receipt"]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        sys.stderr.write("usage: refund-ledger-receipt RECEIPT.json VERIFIER_KEY\n")
        return 2
    try:
        with open(args[0], encoding="utf-8") as fh:
            receipt = json.load(fh)
    except OSError as exc:
        sys.stderr.write(f"INVALID: cannot read {args[0]}: {exc.strerror}\n")
        return 1
    except ValueError:
        sys.stderr.write(f"INVALID: {args[0]} is not JSON\n")
        return 1
    try:
        event = verify_receipt(receipt, args[1])
    except Invalid as exc:
        sys.stderr.write(f"INVALID: {exc}\n")
        return 1
    sys.stdout.write(
        f"OK: event {event.get('id')} ({event.get('tag')}) is leaf {receipt['leaf_index']} "
        f"of the signed tree of size {receipt['tree_size']}\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
