"""The terminal's QR code text (``cardkit.qr.qr_text``) reads back to the very modules of the code, character by
character, with Unicode's own names for the block characters as the key, in both drawings: sextants (two modules
across and three down each character, so a card's text form fits an 80x24 screen) and half blocks (one across and
two down, for fonts without sextants)."""

from __future__ import annotations

import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st
from rich.cells import cell_len

from cardkit.cards.textform import ALPHABET, token_to_text
from cardkit.qr import qr_matrix, qr_text

_WHOLE = {"SPACE": "", "FULL BLOCK": "123456", "LEFT HALF BLOCK": "135", "RIGHT HALF BLOCK": "246"}


def sixths(character: str) -> set[int]:
    """The dark sixths of a block character, numbered as Unicode names them (1 2 / 3 4 / 5 6)."""
    name = unicodedata.name(character)
    digits = _WHOLE[name] if name in _WHOLE else name.removeprefix("BLOCK SEXTANT-")
    assert digits.isdigit() or digits == "", f"{character!r} ({name}) is not a block of sixths"
    return {int(digit) for digit in digits}


def read_back(text: str) -> list[list[bool]]:
    """The module matrix the characters draw."""
    rows: list[list[bool]] = []
    for line in text.splitlines():
        band: list[list[bool]] = [[], [], []]
        for character in line:
            dark = sixths(character)
            for row in range(3):
                band[row] += [2 * row + 1 in dark, 2 * row + 2 in dark]
        rows += band
    return rows


_HALVES = {"SPACE": (False, False), "UPPER HALF BLOCK": (True, False), "LOWER HALF BLOCK": (False, True),
           "FULL BLOCK": (True, True)}


def read_back_halves(text: str) -> list[list[bool]]:
    """The module matrix half-block characters draw (upper and lower module of each)."""
    rows: list[list[bool]] = []
    for line in text.splitlines():
        halves = [_HALVES[unicodedata.name(character)] for character in line]
        rows += [[upper for upper, _ in halves], [lower for _, lower in halves]]
    return rows


def padded(matrix: list[list[bool]], width: int, height: int) -> list[list[bool]]:
    return [[*row, *[False] * (width - len(row))] for row in matrix] + [[False] * width] * (height - len(matrix))


def check_round_trip(data: str) -> str:
    text = qr_text(data)
    drawn = read_back(text)
    expected = qr_matrix(data, border=1, level="L")
    assert len(drawn) - len(expected) in (0, 1, 2) and len(drawn[0]) - len(expected[0]) in (0, 1)
    assert drawn == padded(expected, len(drawn[0]), len(drawn))  # what pads it is light: quiet zone
    assert all(cell_len(line) == len(line) for line in text.splitlines())  # one cell a character
    check_half_blocks(data, expected)
    return text


def check_half_blocks(data: str, expected: list[list[bool]]) -> str:
    text = qr_text(data, blocks="half")
    drawn = read_back_halves(text)
    assert len(drawn) - len(expected) in (0, 1) and len(drawn[0]) == len(expected[0])
    assert drawn == padded(expected, len(drawn[0]), len(drawn))  # what pads it is light: quiet zone
    assert all(cell_len(line) == len(line) for line in text.splitlines())  # one cell a character
    return text


def test_a_cards_text_form_reads_back_and_fits_beside_the_sign_up_sentences() -> None:
    for token_bytes in (140, 175, 190):  # a card, a card with its own key, and room beyond
        text = check_round_trip(token_to_text(bytes(range(256))[:token_bytes]))
        lines = text.splitlines()
        assert len(lines) <= 19 and max(map(len, lines)) <= 28, (token_bytes, len(lines))


def test_the_half_block_form_of_a_card_is_taller_than_80x24_and_uses_only_characters_every_font_has() -> None:
    for token_bytes in (140, 175, 190):
        data = token_to_text(bytes(range(256))[:token_bytes])
        text = check_half_blocks(data, qr_matrix(data, border=1, level="L"))
        lines = text.splitlines()
        assert set(text) <= set(" \u2580\u2584\u2588\n")  # ▀ ▄ █: in the Linux console's font too
        assert 24 <= len(lines) <= 28 and max(map(len, lines)) <= 55, (token_bytes, len(lines))  # the screens scroll it


@settings(max_examples=25, deadline=None)
@given(st.text(alphabet=ALPHABET, min_size=1, max_size=300))
def test_any_text_reads_back_module_for_module(data: str) -> None:
    check_round_trip(data)
