"""One-click unsubscribe tokens (RFC 8058): ``<member>.<channel>.<campaign>.<mac>``, the MAC an HMAC-SHA256 with
a key kept in ``<ledger_dir>/campaign-unsubscribe.key`` (made on first use, owner-only). The token names whom to
unsubscribe and cannot be forged or altered; the URL that carries it acts on POST only (link scanners follow GET).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cardkit.locations import write_private

KEY_NAME = "campaign-unsubscribe.key"
MAX_TOKEN = 300
_PART = re.compile(r"[A-Za-z0-9_-]{1,80}")


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    member_id: str
    channel: str
    campaign_id: str


def load_key(ledger_dir: Path) -> bytes:
    path = ledger_dir / KEY_NAME
    try:
        key = path.read_bytes()
        if len(key) == 32:
            return key
    except FileNotFoundError:
        pass
    key = os.urandom(32)
    write_private(path, key)
    return path.read_bytes()


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii").rstrip("=")


def _unb64(text: str) -> str:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("utf-8")


def _mac(key: bytes, body: str) -> str:
    return hmac.new(key, b"unsubscribe\x00" + body.encode("ascii"), hashlib.sha256).hexdigest()[:32]


def make_token(key: bytes, what: Unsubscribe) -> str:
    body = ".".join(_b64(part) for part in (what.member_id, what.channel, what.campaign_id))
    return f"{body}.{_mac(key, body)}"


def read_token(key: bytes, token: str) -> Unsubscribe | None:
    """The unsubscribe a genuine token names; None for anything else (never raises)."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN:
        return None
    parts = token.split(".")
    if len(parts) != 4 or not all(_PART.fullmatch(p) for p in parts[:3]) or not re.fullmatch(r"[0-9a-f]{32}",
                                                                                            parts[3]):
        return None
    body = ".".join(parts[:3])
    if not hmac.compare_digest(_mac(key, body), parts[3]):
        return None
    try:
        member_id, channel, campaign_id = (_unb64(p) for p in parts[:3])
    except (ValueError, UnicodeDecodeError):
        return None
    return Unsubscribe(member_id, channel, campaign_id)
