"""A member's reply: opt-out keywords (the TCPA words and the Chinese refusal codes) and balance queries, only as
the whole message."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.sms.keywords import BALANCE_KEYWORDS, OPT_OUT_KEYWORDS, is_balance_query, is_opt_out


@pytest.mark.parametrize("text", [
    "STOP", "stop", "Stop.", "  STOP  ", "STOP!!", "QUIT", "END", "REVOKE", "OPT OUT", "opt-out", "Opt_Out",
    "OPTOUT", "CANCEL", "UNSUBSCRIBE", "unsubscribe\n", "STOPALL",
    "R", "r", "Ｒ", "R。", "TD", "td", "退订", "退订！", "ＳＴＯＰ", "🛑 STOP 🛑",
])
def test_opt_out_words_alone_are_opt_outs(text):
    assert is_opt_out(text)
    assert not is_balance_query(text)


@pytest.mark.parametrize("text", [
    "", "   ", "STOP by on Friday", "don't stop", "Stopped", "the end", "R2", "RR", "TDD", "请退订我吧",
    "OPT  IN", "cancel my order please", "BAL", "S T O P", "ST OP",
])
def test_other_messages_are_not_opt_outs(text):
    assert not is_opt_out(text)


@pytest.mark.parametrize(("text", "expected"), [
    ("BAL", True), ("bal", True), ("Balance?", True), ("余额", True), (" 余额？", True), ("查余额", True),
    ("BAL 2", False), ("my balance is wrong", False), ("STOP", False), ("", False),
])
def test_balance_queries(text, expected):
    assert is_balance_query(text) is expected


def test_the_keyword_lists_are_the_documented_ones():
    assert {"stop", "quit", "end", "revoke", "opt out", "cancel", "unsubscribe", "r", "td"} <= OPT_OUT_KEYWORDS
    assert {"bal", "余额"} <= BALANCE_KEYWORDS
    assert not OPT_OUT_KEYWORDS & BALANCE_KEYWORDS


edges = st.text(alphabet=st.sampled_from(" \t\n.!?。！，、~-*🛑"), max_size=4)


@settings(max_examples=300, deadline=None)
@given(keyword=st.sampled_from(sorted(OPT_OUT_KEYWORDS)), upper=st.lists(st.booleans(), min_size=12, max_size=12),
       before=edges, after=edges)
def test_any_case_and_any_trim_of_a_keyword_is_an_opt_out(keyword, upper, before, after):
    cased = "".join(ch.upper() if flip else ch for ch, flip in zip(keyword, upper, strict=False))
    assert is_opt_out(before + cased + after)


@settings(max_examples=300, deadline=None)
@given(keyword=st.sampled_from(sorted(OPT_OUT_KEYWORDS | BALANCE_KEYWORDS)),
       word=st.text(alphabet="0123456789xyzXYZ好的ｘ", min_size=1, max_size=8))  # letters no keyword has
def test_a_keyword_with_another_word_is_not_one(keyword, word):
    for text in (f"{keyword} {word}", f"{word} {keyword}", f"{keyword}{word}"):
        assert not is_opt_out(text)
        assert not is_balance_query(text)


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet=st.characters(codec=None, categories=None), max_size=100))
def test_never_raises(text):
    assert is_opt_out(text) in (True, False)
    assert is_balance_query(text) in (True, False)
