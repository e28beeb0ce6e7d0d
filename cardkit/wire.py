"""The terminal API's names on the wire: paths, content types, header names and the text a terminal signs.

The terminal's sync client builds requests with these and the ledger's API checks them with the same ones, so a
name or a signature text is written once (docs/sync-protocol.md, "Requests").
"""

from __future__ import annotations

# Paths of the terminal API (the ledger's side of them is ledger/api.py).
HEALTH_PATH = "/v1/health"
ENROLL_PATH = "/v1/enroll"
BATCHES_PATH = "/v1/batches"
PULL_PATH = "/v1/pull"

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
