"""Text form of a card token for QR codes and keyboard-wedge scanners: ``CP1:`` + base45 (RFC 9285).

Every character of the text is in the QR alphanumeric set, so a QR code holds it in alphanumeric mode. Base45
output never ends in a space (the last character of a group is its most significant digit, at most 'W'), so
stripping surrounding whitespace (a scanner's trailing Enter, say) can never cut into a token.
"""

from __future__ import annotations

from cardkit.cards.token import MAX_TOKEN_BYTES, TokenFormatError

PREFIX = "CP1:"
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_VALUES = {ch: i for i, ch in enumerate(ALPHABET)}
MAX_TEXT_LEN = len(PREFIX) + (MAX_TOKEN_BYTES * 3 + 1) // 2


class Base45Error(TokenFormatError):
    """Text that is not valid base45."""


def b45encode(data: bytes) -> str:
    """RFC 9285 section 4: two bytes become three characters, a final single byte two."""
    out: list[str] = []
    for i in range(0, len(data) - 1, 2):
        n = data[i] * 256 + data[i + 1]
        n, c = divmod(n, 45)
        e, d = divmod(n, 45)
        out.append(ALPHABET[c] + ALPHABET[d] + ALPHABET[e])
    if len(data) % 2:
        d, c = divmod(data[-1], 45)
        out.append(ALPHABET[c] + ALPHABET[d])
    return "".join(out)


def b45decode(text: str) -> bytes:
    """Inverse of ``b45encode``; raise ``Base45Error`` on a bad character, length or group value."""
    if len(text) % 3 == 1:
        raise Base45Error("base45 text has an impossible length")
    try:
        values = [_VALUES[ch] for ch in text]
    except KeyError as exc:
        raise Base45Error(f"character {exc.args[0]!r} is not base45") from None
    out = bytearray()
    for i in range(0, len(values) - 2, 3):
        n = values[i] + values[i + 1] * 45 + values[i + 2] * 2025
        if n > 0xFFFF:
            raise Base45Error("base45 group is out of range")
        out += n.to_bytes(2, "big")
    if len(values) % 3 == 2:
        n = values[-2] + values[-1] * 45
        if n > 0xFF:
            raise Base45Error("base45 group is out of range")
        out.append(n)
    return bytes(out)


def token_to_text(token: bytes) -> str:
    return PREFIX + b45encode(token)


def token_from_text(text: str) -> bytes:
    """The binary token in ``text``; surrounding whitespace is ignored, anything else off raises."""
    stripped = text.strip()
    if not stripped.startswith(PREFIX):
        raise TokenFormatError(f"card text must start with {PREFIX!r}")
    if len(stripped) > MAX_TEXT_LEN:
        raise TokenFormatError("card text is too long to be a card token")
    return b45decode(stripped[len(PREFIX):])
