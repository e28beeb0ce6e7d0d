"""Enrollment bound to the one-time code without sending it (docs/sync-protocol.md §1).

An admin reads a one-time code to the person at the terminal. The code never crosses the network: both sides
derive two values from it with HKDF-SHA256 (salt ``CODE_SALT``, input the code normalised to upper-case ASCII
letters and digits, so ``ab3k 9qxz-7mtp`` is ``AB3K9QXZ7MTP``):

- ``code_id`` (16 bytes, info ``CODE_ID_INFO``): names the pending enrollment at the ledger, which stores it in
  place of the code. It is a one-way function of the code like the MAC below, so a network attacker learns
  nothing from it that the MAC would not tell (and each guess at the code costs an online attempt);
- ``mac_key`` (32 bytes, info ``MAC_KEY_INFO``): keys the terminal's proof and the ledger's answer.

The terminal sends its identity key, a fresh 32-byte nonce, the HPKE public key member snapshots are to be sealed
to, the root key it expects (``--root-key``, or none) and ``proof = HMAC-SHA256(mac_key, proof_text(...))``.
The ledger answers with the CBOR ``answer`` (terminal id, store, issuer, suite, ledger HPKE key, root key, the
echoed identity key, HPKE key and nonce, and the first documents), ``mac = HMAC-SHA256(mac_key,
ANSWER_MAC_CONTEXT ‖ nonce ‖ answer)`` and ``signature = Ed25519(root key, ANSWER_SIGNATURE_CONTEXT ‖ answer)``.
The terminal checks the MAC over the raw bytes before it decodes anything, then the echoes, then the signature
by the root key the answer names: without the code nobody can produce the MAC, so nobody on the path can swap
the ledger's keys; the signature proves the answering side holds that root key.

Pure functions: no I/O, no clock; randomness only from the caller's ``randbytes``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import io
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from cardkit.errors import SyncError

CODE_SALT = b"cardpos-enroll-v2"
CODE_ID_INFO = b"cardpos-enroll-v2 code-id"
MAC_KEY_INFO = b"cardpos-enroll-v2 mac-key"
PROOF_CONTEXT = "cardpos-enroll-proof-v2"
ANSWER_MAC_CONTEXT = b"cardpos-enroll-answer-mac-v2"
ANSWER_SIGNATURE_CONTEXT = b"cardpos-enroll-answer-sig-v2"
ANSWER_VERSION = 2

CODE_ID_BYTES = 16
MAC_KEY_BYTES = 32
NONCE_BYTES = 32
MAC_BYTES = 32
ED25519_BYTES = 32
SIGNATURE_BYTES = 64
MAX_SUITE_CHARS = 32
MAX_HPKE_PUBLIC_BYTES = 1184 + 32  # the hybrid suite's public key; X25519's is 32
MAX_ID_CHARS = 64
MAX_ANSWER_BYTES = 64 * 1024 * 1024  # the revocation list from version 0 dominates; it is MAC-checked first

ANSWER_KEYS = frozenset({"v", "terminal_id", "store_id", "issuer", "suite", "ledger_hpke_key", "root_key",
                         "identity_key", "terminal_hpke_key", "nonce", "trust_list", "rules", "revocations"})


def normalise_code(code: str) -> bytes:
    """The code as both sides derive from it: ASCII letters upper-cased and digits, everything else dropped."""
    return "".join(ch for ch in code.upper() if ch.isascii() and ch.isalnum()).encode("ascii")


@dataclass(frozen=True)
class CodeKeys:
    """What both sides derive from one code."""

    code_id: bytes
    mac_key: bytes


def derive_code_keys(code: str) -> CodeKeys:
    """``code_id`` and ``mac_key`` of a one-time code (HKDF-SHA256, salt ``CODE_SALT``); raises SyncError when
    the code has no letter or digit at all."""
    normal = normalise_code(code)
    if not normal:
        raise SyncError("an enrollment code has letters and digits, like AB3K-9QXZ-7MTP")

    def expand(info: bytes, length: int) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=length, salt=CODE_SALT, info=info).derive(normal)

    return CodeKeys(code_id=expand(CODE_ID_INFO, CODE_ID_BYTES), mac_key=expand(MAC_KEY_INFO, MAC_KEY_BYTES))


def _mac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


# -- the terminal's proof -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EnrollProof:
    """``POST /v1/enroll``: who the terminal is, proven with the code (every bytes field travels as hex)."""

    code_id: bytes
    identity_key: bytes  # raw Ed25519 public key
    suite: str  # HPKE suite of batches and of sealed member snapshots
    terminal_hpke_key: bytes  # the suite's public key wire form (cardkit.envelope)
    nonce: bytes
    root_key: bytes | None  # the root key the terminal expects (--root-key); None: trust on first use
    proof: bytes

    def text(self) -> bytes:
        return proof_text(self.code_id, self.identity_key, self.suite, self.terminal_hpke_key, self.nonce,
                          self.root_key)

    def to_json(self) -> dict[str, str]:
        out = {"code_id": self.code_id.hex(), "identity_key": self.identity_key.hex(), "suite": self.suite,
               "terminal_hpke_key": self.terminal_hpke_key.hex(), "nonce": self.nonce.hex(),
               "proof": self.proof.hex()}
        if self.root_key is not None:
            out["root_key"] = self.root_key.hex()
        return out

    @classmethod
    def from_json(cls, fields: Mapping[str, Any]) -> EnrollProof:
        """Decode the request fields, checking every length; raises SyncError naming the bad field."""

        def hex_field(name: str, sizes: tuple[int, int], *, required: bool = True) -> bytes | None:
            value = fields.get(name)
            if value is None and not required:
                return None
            if not isinstance(value, str) or not sizes[0] * 2 <= len(value) <= sizes[1] * 2:
                raise SyncError(f"{name} must be {_size_text(sizes)} as hex")
            try:
                return bytes.fromhex(value)
            except ValueError:
                raise SyncError(f"{name} must be {_size_text(sizes)} as hex") from None

        suite = fields.get("suite")
        if not isinstance(suite, str) or not 0 < len(suite) <= MAX_SUITE_CHARS:
            raise SyncError("suite must name an HPKE suite")
        code_id = hex_field("code_id", (CODE_ID_BYTES, CODE_ID_BYTES))
        identity = hex_field("identity_key", (ED25519_BYTES, ED25519_BYTES))
        hpke_key = hex_field("terminal_hpke_key", (ED25519_BYTES, MAX_HPKE_PUBLIC_BYTES))
        nonce = hex_field("nonce", (NONCE_BYTES, NONCE_BYTES))
        proof = hex_field("proof", (MAC_BYTES, MAC_BYTES))
        root = hex_field("root_key", (ED25519_BYTES, ED25519_BYTES), required=False)
        assert code_id is not None and identity is not None and hpke_key is not None and nonce is not None
        assert proof is not None
        return cls(code_id=code_id, identity_key=identity, suite=suite, terminal_hpke_key=hpke_key, nonce=nonce,
                   root_key=root, proof=proof)


def _size_text(sizes: tuple[int, int]) -> str:
    return f"{sizes[0]} bytes" if sizes[0] == sizes[1] else f"{sizes[0]} to {sizes[1]} bytes"


def proof_text(code_id: bytes, identity_key: bytes, suite: str, terminal_hpke_key: bytes, nonce: bytes,
               root_key: bytes | None) -> bytes:
    """The bytes the proof MAC covers: CBOR array(7) [PROOF_CONTEXT, code_id, identity_key, suite,
    terminal_hpke_key, nonce, root_key or null] (definite lengths, shortest forms: one encoding only)."""
    return cbor2.dumps([PROOF_CONTEXT, code_id, identity_key, suite, terminal_hpke_key, nonce, root_key])


def make_proof(keys: CodeKeys, identity_key: bytes, suite: str, terminal_hpke_key: bytes, *,
               root_key: bytes | None = None, randbytes: Callable[[int], bytes] = os.urandom) -> EnrollProof:
    """The terminal's proof of the code for this identity key, HPKE key and a fresh nonce."""
    nonce = randbytes(NONCE_BYTES)
    text = proof_text(keys.code_id, identity_key, suite, terminal_hpke_key, nonce, root_key)
    return EnrollProof(code_id=keys.code_id, identity_key=identity_key, suite=suite,
                       terminal_hpke_key=terminal_hpke_key, nonce=nonce, root_key=root_key,
                       proof=_mac(keys.mac_key, text))


def proof_matches(mac_key: bytes, proof: EnrollProof) -> bool:
    """The ledger's check of a proof, in constant time."""
    return hmac.compare_digest(_mac(mac_key, proof.text()), proof.proof)


# -- the ledger's answer --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EnrollAnswer:
    """What the ledger tells an enrolled terminal; every field is covered by the MAC and the root signature."""

    terminal_id: str
    store_id: str
    issuer: str
    suite: str
    ledger_hpke_key: bytes
    root_key: bytes
    identity_key: bytes
    terminal_hpke_key: bytes
    nonce: bytes
    trust_list: bytes
    rules: bytes
    revocations: bytes

    def to_bytes(self) -> bytes:
        """Deterministic CBOR map (``ANSWER_KEYS``, ``"v": 2``)."""
        return cbor2.dumps({
            "v": ANSWER_VERSION, "terminal_id": self.terminal_id, "store_id": self.store_id, "issuer": self.issuer,
            "suite": self.suite, "ledger_hpke_key": self.ledger_hpke_key, "root_key": self.root_key,
            "identity_key": self.identity_key, "terminal_hpke_key": self.terminal_hpke_key, "nonce": self.nonce,
            "trust_list": self.trust_list, "rules": self.rules, "revocations": self.revocations,
        }, canonical=True)


def answer_mac(mac_key: bytes, nonce: bytes, answer: bytes) -> bytes:
    return _mac(mac_key, ANSWER_MAC_CONTEXT + nonce + answer)


def answer_signature_text(answer: bytes) -> bytes:
    return ANSWER_SIGNATURE_CONTEXT + answer


def seal_answer(answer: EnrollAnswer, mac_key: bytes, root_key: Ed25519PrivateKey) -> dict[str, str]:
    """The ledger's JSON answer: ``{"answer": b64 CBOR, "mac": hex, "signature": hex}``."""
    data = answer.to_bytes()
    return {"answer": base64.b64encode(data).decode("ascii"), "mac": answer_mac(mac_key, answer.nonce, data).hex(),
            "signature": root_key.sign(answer_signature_text(data)).hex()}


NOT_AUTHENTIC = ("the ledger's enrollment answer is not authenticated with the enrollment code (changed on the "
                 "way, or not from the ledger that issued the code); nothing was saved")


def open_answer(mac_key: bytes, sent: EnrollProof, body: Mapping[str, Any]) -> EnrollAnswer:
    """The terminal's check of the ledger's JSON answer: the MAC over the raw bytes first, then the layout, the
    echoes of what this terminal sent, and the root key's signature. Raises SyncError with one sentence."""
    text, mac_hex, signature_hex = body.get("answer"), body.get("mac"), body.get("signature")
    if not (isinstance(text, str) and isinstance(mac_hex, str) and isinstance(signature_hex, str)
            and len(text) <= MAX_ANSWER_BYTES * 4 // 3 + 4 and len(mac_hex) == 2 * MAC_BYTES
            and len(signature_hex) == 2 * SIGNATURE_BYTES):
        raise SyncError("the ledger's enrollment answer is incomplete or damaged; nothing was saved")
    try:
        data = base64.b64decode(text, validate=True)
        mac = bytes.fromhex(mac_hex)
        signature = bytes.fromhex(signature_hex)
    except (ValueError, binascii.Error):
        raise SyncError("the ledger's enrollment answer is incomplete or damaged; nothing was saved") from None
    if not hmac.compare_digest(answer_mac(mac_key, sent.nonce, data), mac):
        raise SyncError(NOT_AUTHENTIC)
    answer = decode_answer(data)
    if (answer.nonce, answer.identity_key, answer.terminal_hpke_key, answer.suite) != (
            sent.nonce, sent.identity_key, sent.terminal_hpke_key, sent.suite):
        raise SyncError("the ledger's enrollment answer is for another request; nothing was saved")
    try:
        Ed25519PublicKey.from_public_bytes(answer.root_key).verify(signature, answer_signature_text(data))
    except (InvalidSignature, ValueError):
        raise SyncError("the ledger's enrollment answer is not signed by the root key it names; "
                        "nothing was saved") from None
    return answer


def decode_answer(data: bytes) -> EnrollAnswer:
    """Strictly decode answer bytes (one deterministic CBOR map of exactly ``ANSWER_KEYS``); raises SyncError."""
    damaged = SyncError("the ledger's enrollment answer has an unexpected layout; nothing was saved")
    if len(data) > MAX_ANSWER_BYTES:
        raise damaged
    try:
        fp = io.BytesIO(data)
        value = cbor2.CBORDecoder(fp, max_depth=4, allow_indefinite=False).decode()
        if fp.tell() != len(data) or not isinstance(value, dict) or value.keys() != ANSWER_KEYS:
            raise damaged
        if cbor2.dumps(value, canonical=True) != data:
            raise damaged
    except SyncError:
        raise
    except Exception as exc:  # cbor2 raises several types for bytes that are not CBOR
        raise damaged from exc
    texts = ("terminal_id", "store_id", "issuer", "suite")
    blobs = ("ledger_hpke_key", "root_key", "identity_key", "terminal_hpke_key", "nonce", "trust_list", "rules",
             "revocations")
    if (value["v"] != ANSWER_VERSION
            or not all(isinstance(value[k], str) and 0 < len(value[k]) <= MAX_ID_CHARS for k in texts)
            or not all(isinstance(value[k], bytes) for k in blobs)
            or len(value["root_key"]) != ED25519_BYTES or len(value["nonce"]) != NONCE_BYTES):
        raise damaged
    return EnrollAnswer(**{k: value[k] for k in ANSWER_KEYS if k != "v"})
