"""The terminal API's names on the wire: paths, content types, header names and the text a terminal signs.

The terminal's sync client builds requests with these and the ledger's API checks them with the same ones, so a
name or a signature text is written once (docs/sync-protocol.md, "Requests").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import cbor2

# Paths of the terminal API (the ledger's side of them is ledger/api.py).
HEALTH_PATH = "/v1/health"
ENROLL_PATH = "/v1/enroll"
BATCHES_PATH = "/v1/batches"
PULL_PATH = "/v1/pull"
MEMBER_LOOKUP_PATH = "/v1/members/lookup"
"""``GET ?card=ID&nonce=N`` signed by the terminal: one member's snapshot, sealed and signed (issue 14)."""
ORIGINAL_PATH = "/v1/operations/original"
"""``GET ?uuid=U&nonce=N`` signed by the terminal: an operation recorded anywhere and what is left to refund."""
NEW_CARD_PATH = "/v1/cards/new"
"""``POST`` signed by the terminal: the new card of a tier upgrade (``cardkit.card_issue``)."""
AUTHORIZE_PATH = "/v1/authorize"
"""``POST`` JSON ``cardkit.authorization.AuthorizationRequest``, signed by the terminal over
``/v1/authorize?digest=<sha256 of the body>`` (docs/sync-protocol.md, "Online authorization")."""
DIGEST_PARAM = "digest"
"""Query parameter of ``/v1/authorize``: hex SHA-256 of the body, so the terminal's request signature covers it."""
AUTHORIZE_CONTENT_TYPE = "application/json"

BATCH_CONTENT_TYPE = "application/cbor"
"""Content type of a sealed batch envelope (``cardkit.envelope``) on ``POST /v1/batches``."""

# Headers of a request signed by a terminal's identity key.
TERMINAL_HEADER = "X-Cardpos-Terminal"
TIME_HEADER = "X-Cardpos-Time"
SIGNATURE_HEADER = "X-Cardpos-Signature"
SIGNED_REQUEST_HEADERS = (TERMINAL_HEADER, TIME_HEADER, SIGNATURE_HEADER)


def request_signature_text(method: str, path_and_query: str, time_ms: int | str) -> bytes:
    """The bytes a terminal signs for a request: ``{METHOD}\\n{path?query}\\n{time_ms}``.

    ``time_ms`` is passed as the header's text on the ledger's side, so the ledger checks exactly what was sent.
    """
    return f"{method}\n{path_and_query}\n{time_ms}".encode()


def signed_request_headers(terminal_id: str, time_ms: int, signature: bytes) -> dict[str, str]:
    """The three headers of a signed request."""
    return {TERMINAL_HEADER: terminal_id, TIME_HEADER: str(time_ms), SIGNATURE_HEADER: signature.hex()}


# -- answers signed by the ledger, bound to the terminal's nonce (docs/sync-protocol.md, "Signed answers") ----------
APP_VERSION_PARAM = "app"
"""Pull query field: the terminal's software version (printable, at most 32 characters), shown to admins."""
QUEUE_PARAM = "queue"
"""Pull query field: how many journal entries the terminal still has to send, shown to admins."""

NONCE_HEADER = "X-Cardpos-Nonce"
"""Hex nonce a terminal chose for one ``POST /v1/batches``; the ledger's signed acknowledgement names it."""
NONCE_PARAM = "nonce"
"""Query parameter carrying the hex nonce of a pull (inside the signed ``path?query``)."""
NONCE_BYTES = 16
"""Nonces terminals make: 16 random bytes (32 hex digits)."""
MAX_NONCE_BYTES = 64
"""The longest nonce the ledger accepts; an answer to a request without one is signed over an empty nonce."""

ACK_CONTEXT = "cardpos-ack-v1"
PULL_CONTEXT = "cardpos-pull-v1"
PULL_DOCUMENT_FIELDS = ("trust_list", "revocations", "rules", "members")
"""The document fields of a pull answer, each a b64 signed document or null; all are covered by its signature."""
PULL_VERSION_NAMES = ("trust", "revocations", "rules", "members")
"""The version names of a pull: the query's parameters and the ledger's ``versions`` in the answer."""


def ack_signature_text(terminal_id: str, batch_id: str, nonce: bytes, acked_seq: int, last_hash: bytes,
                       quarantined: Sequence[int] = ()) -> bytes:
    """The bytes the ledger signs for a batch acknowledgement (also for a ``sequence_gap`` answer).

    Canonical CBOR ``["cardpos-ack-v1", terminal_id, batch_id, nonce, acked_seq, last_hash, [quarantined seq...]]``:
    ``last_hash`` is the hash of the terminal's entry ``acked_seq`` as the ledger holds it (32 zero bytes at 0) and
    a missing ``quarantined`` list is the empty list. An array of typed items cannot be read two ways, whatever
    characters the ids hold.
    """
    return cbor2.dumps([ACK_CONTEXT, terminal_id, batch_id, bytes(nonce), acked_seq, bytes(last_hash),
                        list(quarantined)], canonical=True)


def pull_answer_signature_text(terminal_id: str, nonce: bytes, versions: Mapping[str, int],
                               document_digests: Mapping[str, bytes | None]) -> bytes:
    """The bytes the ledger signs for a pull answer.

    Canonical CBOR ``["cardpos-pull-v1", terminal_id, nonce, {version name: the ledger's version},
    {document field: SHA-256 of the document's bytes, or null}]`` over every name of ``PULL_VERSION_NAMES`` and
    every field of ``PULL_DOCUMENT_FIELDS``.
    """
    return cbor2.dumps([PULL_CONTEXT, terminal_id, bytes(nonce),
                        {name: versions[name] for name in PULL_VERSION_NAMES},
                        {name: document_digests.get(name) for name in PULL_DOCUMENT_FIELDS}], canonical=True)


# -- answers to a terminal's online look-ups (docs/sync-protocol.md, "Members at every store") ------------------
LOOKUP_CONTEXT = "cardpos-lookup-v1"
ORIGINAL_CONTEXT = "cardpos-original-v1"
CARD_PARAM = "card"
UUID_PARAM = "uuid"


def lookup_answer_signature_text(terminal_id: str, nonce: bytes, card_id: str, member_id: str,
                                 document_digest: bytes, folded_seq: int) -> bytes:
    """The bytes the ledger signs for a member look-up answer.

    Canonical CBOR ``["cardpos-lookup-v1", terminal_id, nonce, card_id, member_id, SHA-256 of the sealed member
    document, folded_seq]``: ``folded_seq`` is this terminal's last entry the snapshot already counts (the
    terminal folds only its later entries on top).
    """
    return cbor2.dumps([LOOKUP_CONTEXT, terminal_id, bytes(nonce), card_id, member_id, bytes(document_digest),
                        folded_seq], canonical=True)


def original_answer_signature_text(terminal_id: str, nonce: bytes, entry_uuid: str, original: bytes) -> bytes:
    """The bytes the ledger signs for an original-operation answer: canonical CBOR ``["cardpos-original-v1",
    terminal_id, nonce, uuid, SHA-256 of the answer's CBOR ``original`` document]``."""
    return cbor2.dumps([ORIGINAL_CONTEXT, terminal_id, bytes(nonce), entry_uuid, bytes(original)], canonical=True)


AUTHORIZE_CONTEXT = "cardpos-auth-v1"


def authorization_signature_text(terminal_id: str, nonce: bytes, request_digest: bytes, entry_uuid: str,
                                 decision: str, reason: str, auth_id: str) -> bytes:
    """The bytes the ledger signs for an authorization answer.

    Canonical CBOR ``["cardpos-auth-v1", terminal_id, nonce, request_digest, entry_uuid, decision, reason,
    auth_id]``: ``request_digest`` is the SHA-256 of the request body (which holds the nonce, the amounts and
    the entry uuid), ``decision`` is ``"approved"`` or ``"declined"``, ``reason`` the decline code (``""`` when
    approved). A network attacker can drop or delay an answer but cannot turn a decline into an approval.
    """
    return cbor2.dumps([AUTHORIZE_CONTEXT, terminal_id, bytes(nonce), bytes(request_digest), entry_uuid, decision,
                        reason, auth_id], canonical=True)
