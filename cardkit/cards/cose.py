"""COSE_Sign1 (RFC 9052, section 4.2) with EdDSA/Ed25519 only. Pure: bytes in, bytes out.

The envelope ``18([protected: bstr, unprotected: map, payload: bstr, signature: bstr])`` is parsed by hand so we
know the exact bytes of every part (the signature covers the protected header and payload *as encoded*) and can
refuse anything that is not exactly one well-formed message. Header maps are decoded with cbor2, after the
bounded pre-scan of ``cardkit.cbor_bounds`` (strict mode): hostile bytes cost linear time, never cbor2's worst case.

Two modes:
- ``strict=True`` (our own card tokens and documents): the unprotected header must be empty, every CBOR head and
  the protected header must use the shortest (deterministic, RFC 8949 section 4.2.1) encoding, and sizes are
  bounded. Then every byte of a message is either signed or fixed by the format.
- ``strict=False`` (interop with other COSE producers, such as the COSE working group examples): the unprotected
  header may carry parameters (say a ``kid``) and non-shortest encodings are tolerated.
In both modes the message must be tagged 18, carry an attached payload, use alg EdDSA (-8) in the protected header
and end exactly where the message ends.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from cardkit import cbor_bounds
from cardkit.errors import CardError

COSE_SIGN1_TAG = 18
ALG_EDDSA = -8
HDR_ALG = 1
HDR_CRIT = 2
HDR_CONTENT_TYPE = 3
HDR_KID = 4
SIGNATURE_LEN = 64

MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # revocation deltas for 1M cards are ~9 MB; card tokens are bounded lower
MAX_HEADER_BYTES = 256
MAX_HEADER_DEPTH = 4

_SIG1_CONTEXT = b"\x84\x6aSignature1"  # array(4), "Signature1"

# tag 18 (depth 1) > array of four (2) > its items (3); strict mode allows nothing deeper (an empty unprotected map).
_STRICT_MESSAGE_LIMITS = cbor_bounds.CborLimits(max_bytes=MAX_MESSAGE_BYTES, max_depth=3, max_items=6, max_length=4,
                                                tags=frozenset({COSE_SIGN1_TAG}))
_HEADER_LIMITS = cbor_bounds.CborLimits(max_bytes=MAX_HEADER_BYTES, max_depth=MAX_HEADER_DEPTH, max_items=64,
                                        max_length=32)


class CoseError(CardError):
    """A COSE_Sign1 message is not well formed or not one we accept."""


@dataclass(slots=True)  # not frozen: a frozen dataclass costs ~1 us more to build, on every card tap
class Sign1:
    """One decoded COSE_Sign1 message; ``protected_bytes`` and ``payload`` are exactly as they were encoded."""

    protected_bytes: bytes
    protected: dict[Any, Any]
    unprotected: dict[Any, Any] = field(default_factory=dict)
    payload: bytes = b""
    signature: bytes = b""

    def to_be_signed(self, external_aad: bytes = b"") -> bytes:
        """The Sig_structure ``["Signature1", protected, external_aad, payload]`` that the signature covers."""
        return sig_structure(self.protected_bytes, self.payload, external_aad)


def sig_structure(protected_bytes: bytes, payload: bytes, external_aad: bytes = b"") -> bytes:
    return b"".join((_SIG1_CONTEXT, _head(2, len(protected_bytes)), protected_bytes,
                     _head(2, len(external_aad)), external_aad, _head(2, len(payload)), payload))


def sign1(payload: bytes, protected: dict[Any, Any], key: Ed25519PrivateKey,
          unprotected: dict[Any, Any] | None = None) -> bytes:
    """Sign ``payload`` and return the tagged COSE_Sign1 message. ``protected`` gets alg EdDSA if absent."""
    header = dict(protected)
    if header.setdefault(HDR_ALG, ALG_EDDSA) != ALG_EDDSA:
        raise CoseError("only the EdDSA algorithm (-8) is supported")
    protected_bytes = cbor2.dumps(header, canonical=True)
    signature = key.sign(sig_structure(protected_bytes, payload))
    unprotected_bytes = cbor2.dumps(unprotected or {}, canonical=True)
    return b"".join((b"\xd2\x84", _head(2, len(protected_bytes)), protected_bytes, unprotected_bytes,
                     _head(2, len(payload)), payload, _head(2, len(signature)), signature))


def verify_sign1(msg: Sign1, public_key: Ed25519PublicKey, external_aad: bytes = b"") -> bool:
    """True when ``msg``'s signature is valid for ``public_key``."""
    if len(msg.signature) != SIGNATURE_LEN:
        return False
    try:
        public_key.verify(msg.signature, msg.to_be_signed(external_aad))
    except InvalidSignature:
        return False
    return True


def decode_sign1(data: bytes, *, strict: bool, max_bytes: int = MAX_MESSAGE_BYTES) -> Sign1:
    """Parse a tagged COSE_Sign1 message; raise ``CoseError`` for anything off (see the module docstring)."""
    if type(data) is not bytes:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise CoseError("a COSE message must be bytes")
        data = bytes(data)
    if len(data) > max_bytes:
        raise CoseError(f"COSE message is too long ({len(data)} bytes, at most {max_bytes})")
    if strict:
        try:
            cbor_bounds.scan(data, _STRICT_MESSAGE_LIMITS)
        except cbor_bounds.CborRefused as exc:
            _split(data, strict=True)  # reads heads only; raises with the precise reason when it has one
            raise CoseError(f"COSE message is refused: {exc.reason}", orig=exc) from exc
        protected_bytes, unprotected, payload, signature = _split_strict(data)
    else:
        protected_bytes, unprotected, payload, signature = _split(data, strict=False)
    if len(signature) != SIGNATURE_LEN:
        raise CoseError(f"an Ed25519 signature is {SIGNATURE_LEN} bytes, not {len(signature)}")
    protected = _decode_protected(protected_bytes, strict)
    if protected.get(HDR_ALG) != ALG_EDDSA or type(protected.get(HDR_ALG)) is not int:
        raise CoseError("COSE_Sign1 protected header must name alg EdDSA (-8)")
    if HDR_CRIT in protected:  # RFC 9052 3.1: we understand no extension parameters, so must refuse "crit"
        raise CoseError("COSE message marks header parameters as critical; none are supported")
    if not strict and set(protected) & set(unprotected):
        raise CoseError("a header parameter appears in both the protected and the unprotected header")
    return Sign1(protected_bytes, protected, unprotected, payload, signature)


def _split(data: bytes, *, strict: bool) -> tuple[bytes, dict[Any, Any], bytes, bytes]:
    reader = _Reader(data, strict)
    if reader.head() != (6, COSE_SIGN1_TAG):
        raise CoseError("not a COSE_Sign1 message (tag 18 expected)")
    if reader.head() != (4, 4):
        raise CoseError("COSE_Sign1 must be an array of four items")
    protected_bytes = reader.bstr("protected header")
    unprotected = reader.unprotected()
    payload = reader.bstr("payload")
    signature = reader.bstr("signature")
    if reader.pos != len(data):
        raise CoseError(f"{len(data) - reader.pos} unexpected bytes after the COSE_Sign1 message")
    return protected_bytes, unprotected, payload, signature


def _split_strict(data: bytes) -> tuple[bytes, dict[Any, Any], bytes, bytes]:
    """Fast path for strict mode: let cbor2's C decoder split the message, then require that re-encoding the
    parts gives back exactly ``data`` (shortest heads, empty unprotected header, nothing after the end)."""
    try:
        obj = cbor2.loads(data, max_depth=2, allow_indefinite=False, allow_duplicate_keys=False)
    except Exception:  # cbor2 raises several types on hostile input; the reader below names the problem
        obj = None
    if isinstance(obj, cbor2.CBORTag) and obj.tag == COSE_SIGN1_TAG and isinstance(obj.value, list | tuple) \
            and len(obj.value) == 4:
        protected_bytes, _unprotected, payload, signature = obj.value
        if type(protected_bytes) is bytes and type(payload) is bytes and type(signature) is bytes:
            rebuilt = b"".join((b"\xd2\x84", _head(2, len(protected_bytes)), protected_bytes, b"\xa0",
                                _head(2, len(payload)), payload, _head(2, len(signature)), signature))
            if rebuilt == data:
                return protected_bytes, {}, payload, signature
    _split(data, strict=True)  # raises with the precise reason
    raise CoseError("COSE message is not one deterministically encoded COSE_Sign1")


_PROTECTED_CACHE: dict[bytes, dict[Any, Any]] = {}
_PROTECTED_CACHE_MAX = 64  # a terminal sees a handful of issuer keys, hence a handful of distinct headers


def _decode_protected(protected_bytes: bytes, strict: bool) -> dict[Any, Any]:
    """Decoded protected header (a fresh dict). Strict decodes are memoised: headers repeat token after token."""
    if strict:
        cached = _PROTECTED_CACHE.get(protected_bytes)
        if cached is None:
            cached = _decode_protected_uncached(protected_bytes, strict)
            if len(_PROTECTED_CACHE) >= _PROTECTED_CACHE_MAX:
                _PROTECTED_CACHE.clear()
            _PROTECTED_CACHE[protected_bytes] = cached
        return dict(cached)
    return _decode_protected_uncached(protected_bytes, strict)


def _decode_protected_uncached(protected_bytes: bytes, strict: bool) -> dict[Any, Any]:
    if not protected_bytes:
        return {}
    if len(protected_bytes) > MAX_HEADER_BYTES:
        raise CoseError("COSE protected header is too long")
    if strict:
        try:
            header = cbor_bounds.loads(protected_bytes, _HEADER_LIMITS)
        except cbor_bounds.CborRefused as exc:
            raise CoseError(f"COSE protected header is not valid CBOR: {exc.reason}", orig=exc) from exc
        consumed = len(protected_bytes)
    else:  # interop: other producers may use indefinite lengths; the header is at most MAX_HEADER_BYTES
        try:
            stream = io.BytesIO(protected_bytes)
            decoder = cbor2.CBORDecoder(stream, max_depth=MAX_HEADER_DEPTH, allow_indefinite=True,
                                        allow_duplicate_keys=False)
            header = decoder.decode()
            consumed = stream.tell()
        except Exception as exc:  # cbor2 raises several types (decode, value, overflow, recursion errors)
            raise CoseError("COSE protected header is not valid CBOR", orig=exc) from exc
    if consumed != len(protected_bytes):
        raise CoseError("unexpected bytes after the COSE protected header")
    if not isinstance(header, dict):
        raise CoseError("COSE protected header must be a map")
    if strict and _canonical(header) != protected_bytes:
        raise CoseError("COSE protected header is not deterministically encoded")
    return dict(header)


def _canonical(obj: object) -> bytes | None:
    try:
        return cbor2.dumps(obj, canonical=True)
    except Exception:  # an exotic decoded value that cannot be re-encoded is simply not canonical
        return None


def _head(major: int, value: int) -> bytes:
    """Shortest CBOR head for ``major`` type and argument ``value``."""
    top = major << 5
    if value < 24:
        return bytes((top | value,))
    if value < 0x100:
        return bytes((top | 24, value))
    if value < 0x10000:
        return bytes((top | 25,)) + value.to_bytes(2, "big")
    if value < 0x100000000:
        return bytes((top | 26,)) + value.to_bytes(4, "big")
    return bytes((top | 27,)) + value.to_bytes(8, "big")


class _Reader:
    """Reads CBOR heads and byte strings from one buffer, keeping the position."""

    __slots__ = ("data", "pos", "strict")

    def __init__(self, data: bytes, strict: bool) -> None:
        self.data = data
        self.pos = 0
        self.strict = strict

    def head(self) -> tuple[int, int]:
        data, pos = self.data, self.pos
        if pos >= len(data):
            raise CoseError("COSE message is truncated")
        initial = data[pos]
        major, info = initial >> 5, initial & 0x1F
        if info < 24:
            self.pos = pos + 1
            return major, info
        if info > 27:
            raise CoseError("COSE message uses an indefinite or reserved CBOR length")
        size = 1 << (info - 24)
        end = pos + 1 + size
        if end > len(data):
            raise CoseError("COSE message is truncated")
        value = int.from_bytes(data[pos + 1:end], "big")
        if self.strict and _head(major, value) != data[pos:end]:
            raise CoseError("COSE message uses a non-shortest CBOR length")
        self.pos = end
        return major, value

    def bstr(self, what: str) -> bytes:
        major, length = self.head()
        if major != 2:
            raise CoseError(f"COSE {what} must be a byte string")
        end = self.pos + length
        if end > len(self.data):
            raise CoseError("COSE message is truncated")
        value = self.data[self.pos:end]
        self.pos = end
        return value

    def unprotected(self) -> dict[Any, Any]:
        if self.strict:
            if self.head() != (5, 0):
                raise CoseError("the unprotected header must be empty")
            return {}
        start = self.pos
        try:  # decoding at most MAX_HEADER_BYTES + 1 bytes bounds the work whatever follows
            stream = io.BytesIO(self.data[start:start + MAX_HEADER_BYTES + 1])
            decoder = cbor2.CBORDecoder(stream, max_depth=MAX_HEADER_DEPTH, allow_duplicate_keys=False)
            header = decoder.decode()
            consumed = stream.tell()
        except Exception as exc:  # see _decode_protected
            raise CoseError("COSE unprotected header is not valid CBOR", orig=exc) from exc
        if not isinstance(header, dict):
            raise CoseError("COSE unprotected header must be a map")
        if consumed > MAX_HEADER_BYTES:
            raise CoseError("COSE unprotected header is too long")
        self.pos = start + consumed
        return dict(header)
