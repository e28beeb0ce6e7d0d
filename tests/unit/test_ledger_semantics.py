"""The ledger's semantic checks (``ledger.semantics``) and its count of unsigned refusals (``ledger.noise``), pure.

The attacks themselves run against a real ledger process in tests/security/; here each rule is pinned by an
example, and hypothesis checks the invariants: whatever the till's own quotes produce passes, partial refunds never
add up to more than the sale, and the counter's memory stays bounded whatever arrives.
"""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cardkit.core import loyalty
from cardkit.core.money import Money
from cardkit.core.rules import Rules
from cardkit.core.state import MemberState
from cardkit.journal import JournalEntry
from ledger import noise
from ledger.semantics import CardFacts, Checker, Limits, MemberFacts, TerminalFacts, check_batch

T0 = 1_790_000_000_000
TERMINAL = TerminalFacts("t-1", "north", enrolled_ms=T0)
MEMBERS = {"ann": MemberFacts("ann", "CNY"), "bo": MemberFacts("bo", "CNY"), "moved": MemberFacts("moved", "CNY")}
CARDS = {"c-ann": CardFacts("c-ann", "ann"), "c-bo": CardFacts("c-bo", "bo"), "c-moved": CardFacts("c-moved", "moved")}


def checker(limits: Limits | None = None) -> Checker:
    return Checker(limits=limits or Limits(), members=MEMBERS, cards=CARDS)


_seq = iter(range(1, 10**9))


def entry(kind: str, payload: dict[str, Any], *, wall_ms: int = T0 + 1_000, cashier: str | None = "c1",
          entry_uuid: str | None = None) -> JournalEntry:
    return JournalEntry(terminal_id="t-1", seq=next(_seq), uuid=entry_uuid or str(uuid.uuid4()), prev_hash=b"",
                        wall_ms=wall_ms, mono_ns=1, cashier_id=cashier, kind=kind, payload=payload, hash=b"")


def topup(member: str = "ann", amount: int = 1_000, *, card: str = "c-ann", bonus: int = 0) -> dict[str, Any]:
    return {"card": card, "member": member, "cur": "CNY", "amount": amount, "bonus": bonus, "tender": "cash",
            "offline": False}


def sale(member: str = "ann", net: int = 1_000, *, card: str = "c-ann", gross: int | None = None,
         sv: int | None = None) -> dict[str, Any]:
    return {"card": card, "member": member, "cur": "CNY", "gross": net if gross is None else gross,
            "tier_disc": 0 if gross is None else gross - net, "coupon_disc": 0, "pts_disc": 0, "net": net,
            "tender": "sv", "sv": net if sv is None else sv, "pts_earn": net // 100, "pts_redeem": 0, "coupons": [],
            "offline": False}


def refund(orig: str, amount: int, *, sv: int | None = None, pts_back: int = 0) -> dict[str, Any]:
    return {"card": "c-ann", "member": "ann", "cur": "CNY", "orig": orig, "amount": amount,
            "sv": amount if sv is None else sv, "pts_back": pts_back, "pts_rev": 0, "tender": "sv",
            "supervisor": "s1", "offline": False}


def void(orig: str, sv: int, *, pts_back: int = 0) -> dict[str, Any]:
    return {"card": "c-ann", "member": "ann", "cur": "CNY", "orig": orig, "sv": sv, "pts_back": pts_back,
            "pts_rev": 0, "coupons_back": [], "spend": max(sv, 0), "supervisor": "s1", "offline": False}


def codes(entries: list[JournalEntry], limits: Limits | None = None) -> list[str | None]:
    verdicts = check_batch(entries, TERMINAL, checker(limits), T0 + 10_000)
    return [verdicts[e.seq].code if e.seq in verdicts else None for e in entries]


def test_valid_entries_pass() -> None:
    bought = entry("sale", sale())
    assert codes([entry("topup", topup()), bought, entry("refund", refund(bought.uuid, 400)),
                  entry("redeem", {"card": "c-ann", "member": "ann", "pts": 5, "item": "mug", "offline": False}),
                  entry("member_update", {"member": "ann", "notes": "likes tea"}),
                  entry("shift_open", {"shift": "s1"}),
                  entry("card_reject", {"reason": "bad_signature", "card": None, "kid": None, "manual": False}),
                  entry("sale", sale("moved", card="c-moved"))]) == [None] * 8


def test_members_cards_and_stores() -> None:
    assert codes([entry("topup", topup("bo", card="c-bo")), entry("topup", topup("ann", card="c-bo")),
                  entry("topup", topup("ann", card="c-nobody")), entry("topup", topup("ghost")),
                  entry("topup", topup(card=None)), entry("member_update", {"member": "bo", "notes": "x"}),
                  entry("topup", topup("x" * 41))]) == [
        None, "not_members_card", "unknown_card", "unknown_member", "bad_id", None,
        "bad_id"]  # bo is another store's member: served program-wide with his own card


def test_amounts_and_figures() -> None:
    assert codes([entry("topup", topup(amount=-1)), entry("topup", topup(amount=10_000_001)),
                  entry("topup", topup(amount=100, bonus=101)), entry("sale", {**sale(net=500), "gross": 400}),
                  entry("sale", sale(net=500, sv=600)), entry("topup", {**topup(), "cur": "USD"}),
                  entry("topup", {**topup(), "amount": "12"}),
                  entry("redeem", {"card": "c-ann", "member": "ann", "pts": -3, "item": "x", "offline": False})]) == [
        "negative_amount", "amount_too_large", "inconsistent", "inconsistent", "inconsistent", "bad_entry",
        "bad_entry", "negative_amount"]
    assert codes([entry("topup", topup(amount=2_000))], Limits(max_amount_minor=1_999)) == ["amount_too_large"]


def test_integers_beyond_64_bits_and_times_and_kinds() -> None:
    assert codes([entry("topup", {**topup(), "bonus": 2**63}), entry("topup", {**topup(), "note": [[-(2**63) - 1]]}),
                  entry("topup", topup(), wall_ms=2**63), entry("topup", topup(), wall_ms=T0 + 10_000 + 86_400_001),
                  entry("topup", topup(), wall_ms=T0 - 86_400_001), entry("topup", topup(), wall_ms=T0 - 86_400_000),
                  entry("mint", {"member": "ann"}), entry("topup", topup(), cashier="c" * 65)]) == [
        "integer_range", "integer_range", "integer_range", "bad_time", "bad_time", None, "unknown_kind", "bad_id"]


def test_refunds_and_voids_need_their_original() -> None:
    bought = entry("sale", sale(net=5_000))
    topped = entry("topup", topup(amount=2_000, bonus=100))
    theirs = str(uuid.uuid4())
    assert codes([bought, topped,
                  entry("void", void(theirs, 5_000_000)),            # no such sale: the +50,000.00 attack
                  entry("refund", refund(topped.uuid, 100)),         # a top-up is voided, not refunded
                  entry("void", void(topped.uuid, -2_000)),          # takes back less than the top-up gave
                  entry("void", void(topped.uuid, -2_100)),          # exactly what it gave
                  entry("void", void(topped.uuid, -2_100)),          # once
                  entry("refund", refund(bought.uuid, 3_000)),
                  entry("refund", refund(bought.uuid, 2_001)),       # 2,000 left
                  entry("refund", refund(bought.uuid, 1_000, sv=2_500)),  # more stored value than is left of it
                  entry("void", void(bought.uuid, 5_000)),           # partly refunded: no void
                  entry("refund", refund(bought.uuid, 2_000)),
                  entry("refund", refund(bought.uuid, 1, sv=0))]) == [
        None, None, "unknown_original", "original_mismatch", "void_mismatch", None, "already_voided", None,
        "refund_exceeds", "refund_exceeds", "already_refunded", None, "refund_exceeds"]


def test_an_original_of_another_member_or_named_twice_is_refused() -> None:
    others = entry("sale", sale("moved", card="c-moved"))
    twice = str(uuid.uuid4())
    assert codes([others, entry("refund", refund(others.uuid, 10)),
                  entry("sale", sale(), entry_uuid=twice), entry("sale", sale(), entry_uuid=twice),
                  entry("refund", refund(twice, 10))]) == [None, "original_mismatch", None, None, "unknown_original"]


rules = Rules.default()


@settings(max_examples=60, deadline=None)
@given(net=st.integers(1, 200_000), parts=st.lists(st.integers(1, 200_000), max_size=8))
def test_partial_refunds_pass_while_something_is_left_and_never_add_up_to_more(net: int, parts: list[int]) -> None:
    """The till's own refund quotes always pass; the accepted refunds never exceed the sale, whatever is asked."""
    state = MemberState("ann", "CNY", balance=10**9, points=10**6)
    q = loyalty.quote_sale(state, [], rules, amount=Money(net, "CNY"), tender="sv", now=0, card_id="c-ann",
                           offline=False)
    bought = entry("sale", q.payload)
    check = checker()
    assert check_batch([bought], TERMINAL, check, T0 + 10_000) == {}
    refunded = 0
    for part in parts:
        if part <= q.net.minor - refunded:  # what the till would quote: must pass
            quoted = loyalty.quote_refund(state, q.payload, bought.uuid, refund_amount=Money(part, "CNY"),
                                          already_refunded_minor=refunded, supervisor="s1", offline=False)
            assert check_batch([entry("refund", quoted.payload)], TERMINAL, check, T0 + 10_000) == {}
            refunded += part
        else:  # asks for more than is left: quarantined
            verdicts = check_batch([entry("refund", refund(bought.uuid, part, sv=0))], TERMINAL, check, T0 + 10_000)
            assert [v.code for v in verdicts.values()] == ["refund_exceeds"]
    assert check.originals[bought.uuid].refunded == refunded <= q.net.minor
    assert check.originals[bought.uuid].refunded_sv <= q.payload["sv"]


@settings(max_examples=100, deadline=None)
@given(value=st.recursive(st.integers(-(2**70), 2**70) | st.text(max_size=3) | st.booleans(),
                          lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                                       max_size=3), max_leaves=12))
def test_integer_range_is_exactly_any_integer_beyond_64_bits(value: Any) -> None:
    def ints(v: Any) -> list[int]:
        if type(v) is int:
            return [v]
        if isinstance(v, dict):
            return [i for x in v.values() for i in ints(x)]
        if isinstance(v, list):
            return [i for x in v for i in ints(x)]
        return []

    beyond = any(not -(2**63) <= i < 2**63 for i in ints(value))
    got = codes([entry("shift_open", {"shift": "s", "extra": value})])
    assert got == (["integer_range"] if beyond else [None])


# -- the count of unsigned refusals ---------------------------------------------------------------------------
@given(st.text(max_size=200))
def test_a_shown_id_is_short_and_harmless(text: str) -> None:
    shown = noise.shown_id(text)
    assert len(shown) <= noise.SHOWN_LENGTH + 1
    assert all(c in noise._SAFE or c in "?…" for c in shown)
    if text and all(c in noise._SAFE for c in text) and len(text) <= noise.SHOWN_LENGTH:
        assert shown == text


def test_one_first_refusal_per_source_and_window_and_one_summary_each() -> None:
    counter = noise.NoiseCounter(window_ms=1_000, max_sources=3)
    firsts = [counter.count("10.0.0.1", "batch:unknown_terminal", f"t-{i}", 100, 5_000 + i) for i in range(500)]
    assert firsts == [True] + [False] * 499
    assert counter.take_ended(5_900) == []  # the window is still open
    assert counter.count("10.0.0.1", "pull:bad_signature", None, 0, 6_001)  # a new window: may alert again
    [ended] = counter.take_ended(6_001)
    assert (ended.source, ended.count, ended.bytes, ended.reasons) == ("10.0.0.1", 500, 50_000,
                                                                       {"batch:unknown_terminal": 500})
    assert ended.claimed == ["t-0", "t-1", "t-2", "t-3", "t-4"]
    assert [w.count for w in counter.take_ended(0, everything=True)] == [1]


@settings(max_examples=30, deadline=None)
@given(sources=st.lists(st.integers(0, 50), min_size=1, max_size=400))
def test_memory_stays_bounded_whatever_the_sources(sources: list[int]) -> None:
    counter = noise.NoiseCounter(window_ms=50, max_sources=8)
    for at, source in enumerate(sources):
        counter.count(f"10.0.0.{source}", "batch:malformed", "x" * 500, 10, at)
        assert counter.sources() <= 2 * 8 + 1  # open + waiting summaries (+ the overflow bucket)
    summaries = counter.take_ended(10**9, everything=True)
    assert sum(w.count for w in summaries) == len(sources)  # evicted or merged, never lost from the counts
    assert all(len(c) <= noise.SHOWN_LENGTH + 1 for w in summaries for c in w.claimed)


def test_ids_of_any_type_are_refused_not_crashed_on() -> None:
    weird: list[Any] = [["a"], {"b": 1}, 7, b"bytes", None]
    entries = [entry("topup", {**topup(), "member": w}) for w in weird[:4]]
    entries += [entry("topup", {**topup(), "card": w}) for w in weird]
    got = codes(entries)
    assert got[:4] == ["bad_id"] * 4 and got[4:] == ["bad_id"] * 5


_field_values = st.one_of(st.integers(-5, 5), st.text(max_size=2), st.none(), st.lists(st.text(max_size=2), max_size=2),
                          st.lists(st.integers(0, 3), max_size=2), st.just("CNY"), st.just("USD"))


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(["sale", "topup", "refund"]),
       changes=st.dictionaries(st.sampled_from(["cur", "net", "sv", "pts_earn", "pts_redeem", "coupons", "amount",
                                                "bonus", "pts_back", "pts_rev"]), _field_values | st.just(...),
                               max_size=4))
def test_the_fast_fold_check_agrees_with_the_fold(kind: str, changes: dict[str, Any]) -> None:
    """``folds_plainly`` may only say yes where ``apply_entry`` accepts (it skips the fold for speed)."""
    from cardkit.core.state import apply_entry
    from cardkit.errors import DomainError
    from ledger.semantics import folds_plainly

    base = {"sale": sale(), "topup": topup(), "refund": refund(str(uuid.uuid4()), 10)}[kind]
    payload = {k: v for k, v in {**base, **changes}.items() if v is not ...}
    if folds_plainly(kind, payload, "CNY"):
        try:
            apply_entry(MemberState("ann", "CNY"), kind, payload)
        except DomainError as exc:
            raise AssertionError(f"the fast check passed a payload the fold refuses: {exc}") from exc
