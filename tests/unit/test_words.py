"""The terminal's catalogue (``terminal/i18n``) says every decline, error, receipt and history line in English and
Chinese: the same keys in both, a sentence for every decline the code can raise with only the parameters that
code passes, English words that match the core's own English, and terms (tiers, tenders, kinds) translated."""

from __future__ import annotations

import ast
import re
import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cardkit.core import loyalty
from cardkit.core.members import Coupon, Tier
from cardkit.core.money import Money
from cardkit.core.risk import OfflineUsage, check_offline_spend
from cardkit.core.rules import Rules
from cardkit.core.state import MemberState, apply_entry
from cardkit.errors import DomainError, JournalError
from cardkit.journal import EntryKind, JournalEntry
from terminal.i18n import EN, LANGUAGES, Phrase, SaidError, Words, keys, phrase
from terminal.offline.cashiers import CashierAuthError, CashierRoleError
from terminal.printer.errors import PrinterError
from terminal.printer.status import OFFLINE, PrinterStatus
from terminal.printer.text import columns
from terminal.service import receipt_lines
from terminal.service.receipt import Receipt
from terminal.service.views import summary_phrase
from terminal.service.zreport import build_z_report

ROOT = Path(__file__).resolve().parents[2]
DECLINING_CODE = [*sorted((ROOT / "cardkit" / "core").glob("*.py")),
                  *sorted((ROOT / "terminal" / "service").glob("*.py"))]
ZH = Words("zh")


def test_english_and_chinese_have_the_same_keys() -> None:
    assert keys("en") == keys("zh")


def test_every_literal_key_the_service_says_exists() -> None:
    """Keys named in the counter's code (``phrase("...")``, ``label("...")``, ``words("...")``) are in the tables."""
    used: set[str] = set()
    for path in sorted((ROOT / "terminal" / "service").glob("*.py")):
        source = path.read_text(encoding="utf-8")
        used |= set(re.findall(r'\b(?:phrase|words)\("([a-z_.]+)"', source))
        used |= {f"receipt.label.{name}" for name in re.findall(r'\blabel\("([a-z_]+)"', source)}
    assert len(used) > 40, used
    assert sorted(used - keys("en")) == []


def _placeholders(template: str) -> set[str]:
    return {field.split(".")[0].split("[")[0] for _, field, _, _ in string.Formatter().parse(template) if field}


def _literal(node: ast.expr | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _decline_sites() -> list[tuple[str, str, set[str]]]:
    """Every place the core and the counter raise a decline: (where, sentence key, names of the params passed).
    Reads ``_decline(code, message, sentence=..., **params)``, ``DomainError(message, code=..., sentence=...,
    params={...})`` and ``OfflineLimitError(message, limit=..., sentence=..., params={...})`` calls."""
    sites = []
    for path in DECLINING_CODE:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            kw = {k.arg: k.value for k in node.keywords if k.arg is not None}
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            if name == "_decline" and node.args:
                code = _literal(node.args[0])
                sentence = _literal(kw.get("sentence")) or code
                params = {k for k in kw if k != "sentence"}
            elif name in {"DomainError", "OfflineLimitError"} and node.args and (
                    _literal(kw.get("code")) or _literal(kw.get("limit"))):  # not the helpers that pass them on
                prefix = "offline_limit." if name == "OfflineLimitError" else ""
                default = _literal(kw.get("limit")) if name == "OfflineLimitError" else _literal(kw.get("code"))
                sentence = prefix + str(_literal(kw.get("sentence")) or default)
                given = kw.get("params")
                params = ({str(_literal(k)) for k in given.keys if k is not None}
                          if isinstance(given, ast.Dict) else set())
                if given is not None and (not isinstance(given, ast.Dict) or None in given.keys):
                    params = {"*"}  # built elsewhere: checked by the examples below
            else:
                continue
            assert sentence, f"{where}: a decline without a literal code or sentence"
            sites.append((where, str(sentence), params))
    return sites


def test_the_scan_finds_the_declines() -> None:
    sites = _decline_sites()
    assert len(sites) > 50, sites  # loyalty alone raises over forty
    assert {"insufficient_balance", "offline_limit.daily_amount", "entry_field", "unknown_operation"} <= {
        sentence for _, sentence, _ in sites}


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_decline_has_a_sentence_naming_only_what_its_code_passes(lang: str) -> None:
    table = Words(lang)
    problems = []
    for where, sentence, params in _decline_sites():
        key = f"declines.{sentence}"
        if key not in keys(lang):
            problems.append(f"{where}: no {key}")
            continue
        missing = _placeholders(table(key)) - params
        if "*" not in params and missing:
            problems.append(f"{where}: {key} names {sorted(missing)}, not passed")
    assert problems == []


def test_the_english_sentences_say_what_the_core_says() -> None:
    """The catalogue's English is the core's own English, decline by decline (for a sample of every shape)."""
    rules = Rules.default()
    rich = MemberState("M1", "CNY", balance=10_000, points=250, tier=Tier.GOLD)
    expired = Coupon("OLD", amount_off=Money(500), valid_until=0)
    cases = [
        lambda: loyalty.quote_sale(rich, [], rules, amount=Money(20_000), tender="sv", now=1, card_id="c",
                                   offline=False),
        lambda: loyalty.quote_sale(rich, [expired], rules, amount=Money(1_000), coupon_ids=["OLD"], tender="cash",
                                   now=10, card_id="c", offline=False),
        lambda: loyalty.quote_sale(rich, [], rules, amount=Money(1_000), redeem_points=150, tender="cash", now=1,
                                   card_id="c", offline=False),
        lambda: loyalty.quote_sale(rich, [], rules, amount=Money(0), tender="cash", now=1, card_id="c",
                                   offline=False),
        lambda: loyalty.quote_redeem(rich, rules, points=900, item="mug", card_id="c", offline=False),
        lambda: loyalty.quote_tier_upgrade(rich, rules, card_id="c"),
        lambda: loyalty.quote_membership_fee(rich, rules, tier=Tier.PREFERRED, tender="cash", now=1, card_id="c",
                                             offline=False),
        lambda: loyalty.quote_void(rich, EntryKind.SALE, {"member": "M1", "cur": "CNY"}, "u", voided=True,
                                   already_refunded_minor=0, supervisor="s1", offline=False),
        lambda: check_offline_spend(rules.offline, OfflineUsage(since_sync_s=None), sv_amount=Money(100)),
        lambda: check_offline_spend(rules.offline, OfflineUsage(since_sync_s=90_000), sv_amount=Money(100)),
        lambda: check_offline_spend(rules.offline, OfflineUsage(since_sync_s=1, sv_spent_24h=10**9),
                                    sv_amount=Money(100)),
        lambda: apply_entry(rich, EntryKind.SALE, {"member": "M1", "cur": "CNY", "net": "x"}),
        lambda: Tier.parse("diamond"),
    ]
    said = []
    for case in cases:
        with pytest.raises(DomainError) as declined:
            case()
        said.append((EN.error(declined.value), str(declined.value)))
        assert ZH.error(declined.value) != str(declined.value)
    # A tier code is said as its name in English too ("Gold", not 'gold'): the rest is word for word.
    def plain(text: str) -> str:
        return text.replace("'", "").lower()

    assert [plain(english) for english, _ in said] == [plain(core) for _, core in said]


def test_terms_are_translated_and_lists_joined() -> None:
    assert ZH("declines.tier_lower", current="gold", tier="preferred") == "会员已是金卡，高于优选"
    assert EN("declines.bad_tender", tender="iou", allowed=["sv", "cash"]) == (
        "Tender iou cannot be used here; choose one of: stored value, cash")  # an unknown code shown as it is
    assert ZH("declines.bad_tender", tender="iou", allowed=["sv", "cash"]) == "此处不能使用iou；请选择：储值、现金"
    nested = phrase("summary.sale", net="1.00 CNY", tender="cash", used=phrase("summary.sale_used", points=100),
                    earn=1, coupons="")
    assert ZH.say(nested) == "消费 1.00 CNY，现金，用积分 100，积分 +1"
    assert EN.say("as it is") == "as it is"


def test_a_missing_parameter_never_raises() -> None:
    assert EN("declines.coupon_expired") == "Coupon {coupon} has expired; remove it from the sale"
    assert ZH("no.such.key") == "no.such.key"


def test_counter_errors_are_said_from_their_reason() -> None:
    wrong = CashierAuthError("wrong PIN: 4 attempts left", reason="wrong_pin", attempts_left=4, cashier_id="c1")
    last = CashierAuthError("wrong PIN: 1 attempt left", reason="wrong_pin", attempts_left=1, cashier_id="c1")
    locked = CashierAuthError("locked", reason="locked", locked_until_ms=3_600_000, cashier_id="c1")
    role = CashierRoleError("this needs a supervisor; c1 is a cashier", needed="supervisor", who="c1",
                            role="cashier")
    assert [EN.error(e) for e in (wrong, last, role)] == [str(wrong), str(last), str(role)]
    assert [ZH.error(e) for e in (wrong, last, locked, role)] == [
        "密码错误：还可尝试 4 次", "密码错误：还可尝试 1 次", "收银员 c1 已锁定，直到 01:00:00 UTC",
        "此操作需要主管；c1 是收银员"]
    # No sentence: English keeps the error's own words, Chinese says what kind of trouble it is.
    journal = JournalError("database is locked")
    assert EN.error(journal) == "database is locked"
    assert ZH.error(journal).startswith("终端无法读取或记录此操作")
    assert ZH.error(SaidError("已翻译")) == "已翻译"


def test_printer_errors_are_said_from_the_printer_state() -> None:
    paper_out = PrinterError("The printer is out of paper.",
                             status=PrinterStatus(online=False, paper_out=True, paper_low=True, cover_open=False))
    assert ZH.error(paper_out).startswith("打印机缺纸")
    assert EN.error(PrinterError("x", status=OFFLINE)).startswith("The printer is offline")
    assert EN.error(PrinterError("no such port")).startswith("The printer is offline or not reachable")


def _entry(kind: EntryKind, payload: dict[str, object], seq: int = 7) -> JournalEntry:
    return JournalEntry(uuid="0192f0c2-1111-7000-8000-00000000abcd", seq=seq, terminal_id="T-1", kind=kind,
                        wall_ms=1_700_000_000_000, mono_ns=0, cashier_id="c1", payload=payload, prev_hash=b"",
                        hash=b"")


SALE = {"card": "c0ffee", "member": "M0001", "cur": "CNY", "gross": 10_000, "tier_disc": 1_200, "coupon_disc": 1_000,
        "pts_disc": 200, "net": 7_600, "tender": "sv", "sv": 7_600, "pts_earn": 114, "pts_redeem": 200,
        "coupons": ["C10"], "offline": True}


@pytest.mark.parametrize("width", [32, 40, 48])
def test_a_receipt_fits_its_columns_in_both_languages(width: int) -> None:
    after = MemberState("M0001", "CNY", balance=92_400, points=414, tier=Tier.GOLD)
    receipt = Receipt(entry=_entry(EntryKind.SALE, SALE),
                      lines=tuple(receipt_lines.sale_lines(SALE, tier="gold", after=after)), after=after, offline=True)
    english, chinese = receipt.printed(EN, width), receipt.printed(ZH, width)
    assert all(columns(line) <= width for line in english + chinese)
    assert "Gold discount" in "\n".join(english) and "金卡折扣" in "\n".join(chinese)
    assert any(line.startswith("合计") and line.endswith("76.00 CNY") for line in chinese)
    assert receipt.to_dict()["lines"][1] == ["Gold discount", "-12.00"]  # scripts read English


def test_a_copy_says_so_and_leaves_out_what_it_cannot_know() -> None:
    copy = Receipt(entry=_entry(EntryKind.SALE, SALE), lines=tuple(receipt_lines.copy_lines(
        _entry(EntryKind.SALE, SALE))), after=None, offline=False, copy=True)
    text = copy.to_text(ZH)
    assert "（副本）" in text and "会员折扣" in text and "当前余额" not in text


def test_history_lines_in_both_languages() -> None:
    line = summary_phrase(EntryKind.SALE, SALE)
    assert EN.say(line) == "sale 76.00 CNY by stored value, 200 pts used, +114 pts, coupons C10"
    assert ZH.say(line) == "消费 76.00 CNY，储值，用积分 200，积分 +114，优惠券 C10"
    assert ZH.say(summary_phrase("shift_open", {})) == "开班"


def test_the_z_report_in_chinese_fits_and_names_its_rows() -> None:
    report = build_z_report([_entry(EntryKind.SALE, SALE, seq=1)], terminal_id="T-1", currency="CNY", since_ms=0,
                            until_ms=2_000_000_000_000, synced_seq=0, unsynced_total=1, original=lambda _: None)
    lines = report.printed(ZH, 32)
    assert lines[0] == "Z报表  终端 T-1" and all(columns(line) <= 32 for line in lines)
    assert any(line.startswith("消费") and line.endswith("1") for line in lines)
    assert any(line.startswith("  储值") and line.endswith("76.00 CNY") for line in lines)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(keys("en"))), st.dictionaries(st.sampled_from(["tier", "kind", "n", "ref", "amount"]),
                                                             st.text(max_size=8), max_size=3))
def test_any_key_with_any_params_says_something(key: str, params: dict[str, str]) -> None:
    for words in (EN, ZH):
        assert isinstance(words.say(Phrase(key, params)), str)
