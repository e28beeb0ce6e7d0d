"""The terminal's online look-ups (a ``terminal.service.remote.LedgerLookups``): a member by card, an original
operation by uuid, each signed like a pull and believed only when the ledger signed the answer for its nonce.

Its own HTTP client with a short timeout (``LOOKUP_TIMEOUT_S``): a cashier waits at most that long before the
counter serves the member on the unknown-balance path. docs/sync-protocol.md, "Members at every store".
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cardkit import answers, wire
from cardkit.errors import CardError, SyncError
from cardkit.lookup_answers import OriginalOperation, verify_lookup_answer, verify_original_answer
from terminal import documents
from terminal.documents import Enrollment
from terminal.service.remote import LookedUpMember
from terminal.sync.client import LedgerClient, TerminalSigner

LOOKUP_TIMEOUT_S = 2.0
"""How long a tap waits for the ledger before it serves the member without a known balance."""


class LedgerLookup:
    def __init__(self, data_dir: Path, enrollment: Enrollment, identity_key: Ed25519PrivateKey, *,
                 ledger_url: str | None = None, timeout_s: float = LOOKUP_TIMEOUT_S,
                 client: LedgerClient | None = None) -> None:
        self.data_dir = data_dir
        self.enrollment = enrollment
        self.client = client or LedgerClient(ledger_url or enrollment.ledger_url, timeout_s=timeout_s)
        self._signer = TerminalSigner(enrollment.terminal_id, identity_key)
        self._root = bytes.fromhex(enrollment.root_public_key)

    def close(self) -> None:
        self.client.close()

    def member(self, card_id: str) -> LookedUpMember:
        nonce = answers.new_nonce()
        answer = self.client.signed_get(wire.MEMBER_LOOKUP_PATH, {wire.CARD_PARAM: card_id,
                                                                 wire.NONCE_PARAM: nonce.hex()},
                                        self._signer, what="looking up a member")
        verified = verify_lookup_answer(answer, self._root, terminal_id=self.enrollment.terminal_id, nonce=nonce,
                                        card_id=card_id)
        try:
            snapshot = documents.open_member_snapshot(self.data_dir, self.enrollment, verified.document)
        except CardError as exc:
            raise SyncError(f"the ledger's member look-up failed its check: {exc}", orig=exc) from exc
        members = [m for m in snapshot.members if m.get("member_id") == verified.member_id]
        if len(snapshot.members) != 1 or not members:
            raise SyncError("the ledger's member look-up does not hold the member it names")
        return LookedUpMember(snapshot=members[0], folded_seq=verified.folded_seq, version=snapshot.version)

    def original(self, entry_uuid: str) -> OriginalOperation:
        nonce = answers.new_nonce()
        answer = self.client.signed_get(wire.ORIGINAL_PATH, {wire.UUID_PARAM: entry_uuid,
                                                            wire.NONCE_PARAM: nonce.hex()},
                                        self._signer, what="fetching the original operation")
        return verify_original_answer(answer, self._root, terminal_id=self.enrollment.terminal_id, nonce=nonce,
                                      entry_uuid=entry_uuid)
