"""What a member's reply asks for: to stop messages (opt-out) or to know their balance. Pure.

A keyword counts only as the whole message, because "stop by on Friday" is not a refusal. Around it we forgive
what phones and people add: letter case, full-width letters (NFKC), spaces, punctuation and symbols at either
end ("Stop.", " r ", "ＳＴＯＰ!"), and a hyphen or underscore for the space in "OPT OUT".

Opt-out keywords (docs/sms-gateway.md; /work/shared/REFERENCES.md):
- the TCPA list: STOP, QUIT, END, REVOKE, OPT OUT, CANCEL, UNSUBSCRIBE, plus the common variants STOPALL and
  OPTOUT;
- Chinese providers' refusal codes: R (as in the hint "拒收请回复R"), TD and 退订 ("unsubscribe", what TD stands for).
Erring towards opting out is the safe side: a false opt-out loses one promotion, a missed one breaks the law.
"""

from __future__ import annotations

import re
import unicodedata

OPT_OUT_KEYWORDS = frozenset({
    "stop", "stopall", "quit", "end", "revoke", "opt out", "optout", "cancel", "unsubscribe",
    "r", "td", "退订",
})
BALANCE_KEYWORDS = frozenset({"bal", "balance", "余额", "查余额"})

MAX_KEYWORD_MESSAGE = 64
"""A longer message is a conversation, never a keyword (and is not normalised at all)."""

_INNER_GAPS = re.compile(r"[\s\-_]+")


def _edge(ch: str) -> bool:
    """Characters trimmed from both ends: spaces, punctuation, symbols (emoji), controls."""
    return ch.isspace() or unicodedata.category(ch)[0] in "PZSC"


def normalize_reply(text: str) -> str:
    """The reply as a keyword candidate: NFKC, case-folded, trimmed at both ends, inner gaps one space."""
    if not isinstance(text, str) or len(text) > MAX_KEYWORD_MESSAGE:
        return ""
    folded = unicodedata.normalize("NFKC", text).casefold()
    start, end = 0, len(folded)
    while start < end and _edge(folded[start]):
        start += 1
    while end > start and _edge(folded[end - 1]):
        end -= 1
    return _INNER_GAPS.sub(" ", folded[start:end])


def is_opt_out(text: str) -> bool:
    """True when the whole message is an opt-out keyword (STOP, 退订, R, ...)."""
    return normalize_reply(text) in OPT_OUT_KEYWORDS


def is_balance_query(text: str) -> bool:
    """True when the whole message asks for the balance (BAL, BALANCE, 余额, 查余额)."""
    return normalize_reply(text) in BALANCE_KEYWORDS
