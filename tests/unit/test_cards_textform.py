"""Text form: base45 (RFC 9285) and the CP1: prefix."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardkit.cards.textform import ALPHABET, Base45Error, b45decode, b45encode, token_from_text, token_to_text
from cardkit.cards.token import TokenFormatError
from tests.fixtures.cards import CardWorld

# RFC 9285 sections 4.3 and 4.4
RFC_EXAMPLES = [(b"AB", "BB8"), (b"Hello!!", "%69 VD92EX0"), (b"base-45", "UJCLQE7W581"), (b"ietf!", "QED8WEX0")]


@pytest.mark.parametrize(("raw", "text"), RFC_EXAMPLES)
def test_rfc_9285_examples(raw: bytes, text: str) -> None:
    assert b45encode(raw) == text
    assert b45decode(text) == raw


def test_empty() -> None:
    assert b45encode(b"") == ""
    assert b45decode("") == b""


@pytest.mark.parametrize(("text", "message"), [
    ("GGW", "out of range"),  # RFC 9285 section 6: 65535 is the largest two-byte group
    ("ZZ", "out of range"),  # 35 + 35*45 > 255 for a trailing single byte
    ("A", "impossible length"),
    ("ABCD", "impossible length"),
    ("ab", "not base45"),
    ("A\u00e9", "not base45"),
])
def test_rfc_9285_invalid_inputs(text: str, message: str) -> None:
    with pytest.raises(Base45Error, match=message):
        b45decode(text)


@given(st.binary(max_size=300))
def test_base45_round_trip_and_alphabet(raw: bytes) -> None:
    text = b45encode(raw)
    assert b45decode(text) == raw
    assert set(text) <= set(ALPHABET)
    assert len(text) == (len(raw) // 2) * 3 + (len(raw) % 2) * 2
    assert not text.endswith(" ")  # why stripping whitespace around a token is always safe


def test_token_text_round_trip(card_world: CardWorld) -> None:
    token = card_world.challenge_token()
    text = token_to_text(token)
    assert text.startswith("CP1:")
    assert set(text) <= set(ALPHABET)  # QR alphanumeric mode throughout
    assert token_from_text(text) == token
    assert token_from_text(f"  \t{text}\r\n") == token


@pytest.mark.parametrize("text", ["", "CP2:BB8", "cp1:BB8", "BB8", "CP1 :BB8", "CP1:bb8", "CP1:" + "0" * 2000])
def test_token_from_text_refuses(text: str) -> None:
    with pytest.raises(TokenFormatError):
        token_from_text(text)
