"""``cardpos card verify`` and ``cardpos card inspect``: check or read a card token from the command line.

verify exits 0 (accepted), 1 (rejected: the reason code and its words are printed) or 2 (usage or setup
problem, such as no trust store). By default it uses the terminal's own trust store: the ledger root key from
``enrollment.json``, ``documents/trust_list.cose`` and ``documents/revocations.bin`` in the data dir.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cardkit.cards.challenge import needs_challenge
from cardkit.cards.keys import public_key_bytes, public_key_from_hex
from cardkit.cards.revocation import RevocationList, load_revocation_delta
from cardkit.cards.textform import token_from_text
from cardkit.cards.token import DecodedToken, TokenFormatError, decode_card_token
from cardkit.cards.trust import TrustList, load_trust_list
from cardkit.cards.verdict import CardClaims, RejectReason, Verdict
from cardkit.cards.verify import CardVerifier
from cardkit.cliutil import Subparsers, add_common, emit, settings_from_args
from cardkit.errors import CardError, CardposError
from terminal.documents import REVOCATIONS_FILE, TRUST_FILE, documents_dir, load_document, read_enrollment

EXIT_ACCEPT, EXIT_REJECT, EXIT_USAGE = 0, 1, 2


def register(subparsers: Subparsers) -> None:
    verify = subparsers.add_parser(
        "verify", help="check a card token offline and print the verdict",
        description="Check a card token (its CP1: text form) against the terminal's trust list and revocations. "
                    "Exit 0 accepted, 1 rejected (reason printed), 2 usage or setup error.")
    verify.add_argument("token", metavar="TOKEN_TEXT", help="the card's text form (CP1:...), or - to read stdin")
    verify.add_argument("--trust", type=Path, default=None, metavar="FILE",
                        help=f"signed trust list file (default: the terminal's documents/{TRUST_FILE})")
    verify.add_argument("--root-key", default=None, metavar="HEX",
                        help="ledger root public key that signs the trust list (default: from enrollment.json)")
    verify.add_argument("--revocations", type=Path, default=None, metavar="FILE",
                        help=f"{REVOCATIONS_FILE} or a signed revocation delta from version 0 "
                             f"(default: the terminal's documents/{REVOCATIONS_FILE})")
    verify.add_argument("--now", type=int, default=None, metavar="EPOCH",
                        help="check as of this time in epoch seconds (default: the clock)")
    verify.add_argument("--json", action="store_true", help="print the verdict as JSON")
    add_common(verify)
    verify.set_defaults(handler=run_verify)

    inspect = subparsers.add_parser(
        "inspect", help="decode a card token without verifying it",
        description="Print what a card token claims (card, member, tier, validity, key id). Nothing is verified: "
                    "use 'cardpos card verify' to know whether the card is genuine. Exit 1 if it cannot be read.")
    inspect.add_argument("token", metavar="TOKEN_TEXT", help="the card's text form (CP1:...), or - to read stdin")
    inspect.add_argument("--json", action="store_true", help="print the claims as JSON")
    inspect.set_defaults(handler=run_inspect)


def _token_text(arg: str) -> str:
    return sys.stdin.readline() if arg == "-" else arg


class _SetupError(CardposError):
    """The trust store is missing or unreadable: not the card's fault (exit 2)."""

    title = "Setup error"


def run_verify(args: argparse.Namespace) -> int:
    try:
        verifier, revocation_note = _verifier(args)
    except CardposError as exc:  # config, enrollment or trust store trouble: not the card's fault
        print(f"cardpos card verify: {exc}", file=sys.stderr)
        return EXIT_USAGE
    now = int(time.time()) if args.now is None else args.now
    detail = ""
    try:
        token = token_from_text(_token_text(args.token))
    except TokenFormatError as exc:
        verdict, detail = Verdict.reject(RejectReason.MALFORMED), str(exc)
    else:
        verdict = verifier.verify(token, now)
        if verdict.reason is RejectReason.MALFORMED:
            detail = _why_malformed(token)
    if revocation_note and not args.json:
        print(f"note: {revocation_note}", file=sys.stderr)
    emit(_verdict_json(verdict, now, detail, revocation_note), args.json, _verdict_text(verdict, detail))
    return EXIT_ACCEPT if verdict.accepted else EXIT_REJECT


def _why_malformed(token: bytes) -> str:
    try:
        decode_card_token(token)
    except TokenFormatError as exc:
        return str(exc)
    return ""


def _verifier(args: argparse.Namespace) -> tuple[CardVerifier, str]:
    settings = settings_from_args(args)
    data_dir = settings.data_dir
    enrollment = read_enrollment(data_dir)
    if args.root_key is not None:
        root_hex, where = args.root_key, "--root-key"
    elif enrollment is not None:
        root_hex, where = enrollment.root_public_key, "the enrollment's root key"
    else:
        raise _SetupError(f"no trust store: this terminal is not enrolled ({data_dir}); "
                          "enroll it or pass --trust FILE --root-key HEX")
    try:
        root = public_key_bytes(public_key_from_hex(root_hex))
    except CardError as exc:
        raise _SetupError(f"{where}: {exc}") from exc
    trust = _trust_list(args.trust, data_dir, root)
    revocations, note = _revocations(args.revocations, data_dir, root)
    # Same issuer as the counter uses (the enrollment's), unless the technician brought another trust list.
    issuer = enrollment.issuer if enrollment is not None and args.trust is None else trust.issuer
    verifier = CardVerifier(trust, revocations, issuer=issuer, clock_skew_s=settings.terminal.clock_skew_s)
    return verifier, note


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _SetupError(f"cannot read the {what} {path}: {exc.strerror}") from exc


def _trust_list(path: Path | None, data_dir: Path, root: bytes) -> TrustList:
    data = _read(path, "trust list") if path is not None else load_document(data_dir, TRUST_FILE)
    if data is None:
        raise _SetupError(f"no trust store: {documents_dir(data_dir) / TRUST_FILE} is missing; "
                          "sync the terminal or pass --trust FILE")
    try:
        return load_trust_list(data, root)
    except CardError as exc:
        raise _SetupError(str(exc)) from exc


def _revocations(path: Path | None, data_dir: Path, root: bytes) -> tuple[RevocationList, str]:
    data = _read(path, "revocation list") if path is not None else load_document(data_dir, REVOCATIONS_FILE)
    if data is None:
        return RevocationList(), "no revocation list on this terminal: revoked and held cards are not detected"
    try:
        if data.startswith(b"CPRL"):
            return RevocationList.from_bytes(data), ""
        revocations = RevocationList()
        revocations.apply(load_revocation_delta(data, root))
        return revocations, ""
    except CardError as exc:
        raise _SetupError(str(exc)) from exc


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _claims_json(claims: CardClaims) -> dict[str, Any]:
    return {"version": claims.version, "issuer": claims.issuer, "card_id": claims.card_id,
            "member_id": claims.member_id, "tier": claims.tier.value, "issued_at": claims.issued_at,
            "not_before": claims.not_before, "expires_at": claims.expires_at,
            "card_public_key": None if claims.card_public_key is None else claims.card_public_key.hex()}


def _verdict_json(verdict: Verdict, now: int, detail: str, note: str) -> dict[str, Any]:
    return {"accepted": verdict.accepted, "reason": None if verdict.reason is None else verdict.reason.value,
            "words": "Card accepted" if verdict.reason is None else verdict.reason.words,
            "detail": detail or None, "kid": verdict.kid, "now": now,
            "claims": None if verdict.claims is None else _claims_json(verdict.claims),
            "needs_challenge": needs_challenge(verdict), "revocations_checked": not note}


def _verdict_text(verdict: Verdict, detail: str) -> str:
    if verdict.reason is not None:
        lines = [f"rejected: {verdict.reason.value}: {verdict.reason.words}"]
        if detail:
            lines.append(f"  {detail}")
        if verdict.claims is not None:
            lines.append(f"  card {verdict.claims.card_id} (claimed)")
        return "\n".join(lines)
    claims = verdict.claims
    assert claims is not None
    lines = [f"accepted: card {claims.card_id}, member {claims.member_id}, tier {claims.tier.value}, "
             f"valid until {_iso(claims.expires_at)} (key {verdict.kid})"]
    if needs_challenge(verdict):
        lines.append("  this card also answers a challenge at the reader; only its token was checked here")
    return "\n".join(lines)


def run_inspect(args: argparse.Namespace) -> int:
    try:
        token = token_from_text(_token_text(args.token))
        decoded = decode_card_token(token)
    except TokenFormatError as exc:
        print(f"cardpos card inspect: cannot read this card: {exc}", file=sys.stderr)
        return EXIT_REJECT
    emit(_inspect_json(decoded, len(token)), args.json, _inspect_text(decoded, len(token)))
    return EXIT_ACCEPT


def _inspect_json(decoded: DecodedToken, size: int) -> dict[str, Any]:
    return {"kid": decoded.kid, "bytes": size, "claims": _claims_json(decoded.claims), "verified": False}


def _inspect_text(decoded: DecodedToken, size: int) -> str:
    c = decoded.claims
    return "\n".join([
        "card token (NOT verified; use 'cardpos card verify')",
        f"  key id      {decoded.kid}",
        f"  size        {size} bytes",
        f"  version     {c.version}",
        f"  issuer      {c.issuer}",
        f"  card id     {c.card_id}",
        f"  member id   {c.member_id}",
        f"  tier        {c.tier.value}",
        f"  issued at   {_iso(c.issued_at)}",
        f"  not before  {_iso(c.not_before)}",
        f"  expires at  {_iso(c.expires_at)}",
        f"  card key    {'yes (challenge-response card)' if c.card_public_key else 'none'}",
    ])
