"""Reading the import's CSV files into checked rows (pure: text in, rows and refusals out).

Every file has a header line; columns are named, in any order, and unknown columns are refused so a misspelt
one is never silently dropped. A bad row is refused with its line number and a reason; the good rows go on.

- merchants: ``merchant_id, name``
- stores: ``store_id, merchant_id[, name]``
- members: ``member_id, name, store_id[, phone, email, notes, tier, balance, points, card_number, consent_*]``:
  ``balance`` a decimal amount in the program's currency (``120.50``), ``points`` a whole number, ``tier`` one of
  the program's tiers (default standard), each ``consent_<purpose>`` column ``yes``, ``no`` or empty (unknown).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import itertools
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from cardkit.core.members import Tier
from cardkit.core.money import CURRENCY_EXPONENTS, Money
from cardkit.errors import CardposError
from ledger.errors import LedgerError

MERCHANT_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
MEMBER_ID = re.compile(r"[!-~]{1,32}")
STORE_ID = re.compile(r"[!-~]{1,64}")
CARD_NUMBER = re.compile(r"[0-9A-Za-z-]{4,40}")
CONSENT_PREFIX = "consent_"
CONSENT_VALUES = {"yes": True, "y": True, "true": True, "1": True, "no": False, "n": False, "false": False,
                  "0": False, "": None}
MAX_FIELD_CHARS = 2000
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_PLAIN_AMOUNT = re.compile(r"([0-9]{1,15})(?:\.([0-9]{1,4}))?")
MAX_POINTS = 10**12
MAX_BALANCE_MINOR = 10**13

MEMBER_COLUMNS = ("member_id", "name", "store_id", "phone", "email", "notes", "tier", "balance", "points",
                  "card_number")
MEMBER_REQUIRED = ("member_id", "name", "store_id")


class ImportFileError(LedgerError):
    """A file that cannot be imported at all (no header, a missing or unknown column, not UTF-8 text)."""


@dataclass(frozen=True)
class Refusal:
    file: str
    line: int
    reason: str

    def text(self) -> str:
        return f"{self.file} line {self.line}: {self.reason}"


@dataclass(frozen=True)
class MerchantRow:
    line: int
    merchant_id: str
    name: str


@dataclass(frozen=True)
class StoreRow:
    line: int
    store_id: str
    merchant_id: str
    name: str


@dataclass(frozen=True)
class MemberRow:
    line: int
    member_id: str
    name: str
    store_id: str
    phone: str = ""
    email: str = ""
    notes: str = ""
    tier: str = Tier.STANDARD.value
    balance: int = 0  # minor units of the program's currency
    points: int = 0
    card_number: str = ""
    consents: dict[str, bool] = field(default_factory=dict)  # purpose -> given; unknown purposes are absent

    def digest(self) -> str:
        """What the row says, hashed: the same row imported again is recognised (its line number aside)."""
        facts = [self.member_id, self.name, self.store_id, self.phone, self.email, self.notes, self.tier,
                 self.balance, self.points, self.card_number, sorted(self.consents.items())]
        return hashlib.sha256(_DIGEST_JSON.encode(facts).encode()).hexdigest()


_DIGEST_JSON = json.JSONEncoder(ensure_ascii=False)
"""``json.dumps(..., ensure_ascii=False)``'s encoder, made once: a row's digest never changes its bytes."""


class RowRefused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _lines(text: str | Iterable[str]) -> Iterator[str]:
    """The file's lines, a leading byte-order mark dropped: from the whole text, or streamed from a text file
    opened with ``newline=""`` (a file of any size is read a line at a time)."""
    if isinstance(text, str):
        yield from io.StringIO(text.lstrip("\ufeff"), newline="")
        return
    lines = iter(text)
    first = next(lines, None)
    if first is None:
        return
    yield first.lstrip("\ufeff")
    yield from lines


def _records(text: str | Iterable[str], file: str, required: Iterable[str], optional: Iterable[str], *,
             prefix: str | None = None) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, the row's fields) for every data row; raises ``ImportFileError`` for a bad header."""
    reader = csv.reader(_lines(text))
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFileError(f"{file} is empty; it needs a header line") from None
    except csv.Error as exc:
        raise ImportFileError(f"{file} line 1: {exc}") from None
    names = [h.strip().lower() for h in header]
    known = set(required) | set(optional)
    unknown = [n for n in names if n not in known and not (prefix and n.startswith(prefix) and len(n) > len(prefix))]
    if unknown:
        raise ImportFileError(f"{file}: unknown column(s) {', '.join(unknown)}; the columns are "
                              f"{', '.join([*required, *optional])}" + (f" and {prefix}<purpose>" if prefix else ""))
    missing = [n for n in required if n not in names]
    if missing:
        raise ImportFileError(f"{file}: the header lacks the column(s) {', '.join(missing)}")
    if len(set(names)) != len(names):
        raise ImportFileError(f"{file}: a column is named twice in the header")
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ImportFileError(f"{file} line {reader.line_num}: {exc}") from None
        except UnicodeDecodeError:  # a streamed file changed since check_utf8 read it
            raise ImportFileError(f"{file} after line {reader.line_num} is not UTF-8 text; save it as UTF-8 CSV"
                                  ) from None
        line = reader.line_num
        if not values or not "".join(values).strip():  # every field blank (or only spaces)
            continue
        if len(values) != len(names):
            yield line, {"\x00": f"{len(values)} fields where the header names {len(names)}"}
            continue
        yield line, dict(zip(names, map(str.strip, values), strict=True))


def _check_lengths(fields: dict[str, str]) -> None:
    if "\x00" in fields:
        raise RowRefused(fields["\x00"])
    if max(map(len, fields.values()), default=0) <= MAX_FIELD_CHARS and not _CONTROL.search("\t".join(fields.values())):
        return  # the usual row, checked at once (a tab is no control character here); else find the field
    for name, value in fields.items():
        if len(value) > MAX_FIELD_CHARS:
            raise RowRefused(f"{name} is longer than {MAX_FIELD_CHARS} characters")
        if name != "notes" and _CONTROL.search(value):
            raise RowRefused(f"{name} holds a control character")


def _id(fields: dict[str, str], name: str, pattern: re.Pattern[str], what: str) -> str:
    value = fields.get(name, "")
    if not value:
        raise RowRefused(f"{name} is empty")
    if not pattern.fullmatch(value):
        raise RowRefused(f"{name} {value!r} is not {what}")
    return value


def read_merchants(text: str, file: str = "merchants.csv") -> tuple[list[MerchantRow], list[Refusal]]:
    rows: list[MerchantRow] = []
    refused: list[Refusal] = []
    seen: dict[str, int] = {}
    for line, fields in _records(text, file, ("merchant_id", "name"), ()):
        try:
            _check_lengths(fields)
            merchant_id = _id(fields, "merchant_id", MERCHANT_ID, "a merchant id (lower-case letters, digits, - _)")
            if merchant_id == "program":
                raise RowRefused("'program' is the program operator, not a merchant")
            if not fields["name"]:
                raise RowRefused("name is empty")
            if merchant_id in seen:
                raise RowRefused(f"merchant {merchant_id} is already on line {seen[merchant_id]}")
            seen[merchant_id] = line
            rows.append(MerchantRow(line, merchant_id, fields["name"]))
        except RowRefused as exc:
            refused.append(Refusal(file, line, exc.reason))
    return rows, refused


def read_stores(text: str, file: str = "stores.csv") -> tuple[list[StoreRow], list[Refusal]]:
    rows: list[StoreRow] = []
    refused: list[Refusal] = []
    seen: dict[str, int] = {}
    for line, fields in _records(text, file, ("store_id", "merchant_id"), ("name",)):
        try:
            _check_lengths(fields)
            store_id = _id(fields, "store_id", STORE_ID, "a store id (printable, no spaces)")
            merchant_id = _id(fields, "merchant_id", MERCHANT_ID, "a merchant id")
            if store_id in seen:
                raise RowRefused(f"store {store_id} is already on line {seen[store_id]}")
            seen[store_id] = line
            rows.append(StoreRow(line, store_id, merchant_id, fields.get("name", "")))
        except RowRefused as exc:
            refused.append(Refusal(file, line, exc.reason))
    return rows, refused


def _amount(text: str, currency: str) -> int:
    if not text:
        return 0
    plain = _PLAIN_AMOUNT.fullmatch(text)
    exponent = CURRENCY_EXPONENTS.get(currency, -1)
    if plain and len(plain.group(2) or "") <= exponent:  # what Money.parse gives, without building a Money
        minor = int(plain.group(1)) * 10**exponent + int((plain.group(2) or "").ljust(exponent, "0") or "0")
    else:
        try:
            minor = Money.parse(text, currency).minor
        except CardposError as exc:
            raise RowRefused(f"balance {text!r}: {exc}") from None
    if minor < 0:
        raise RowRefused(f"balance {text} is negative")
    if minor > MAX_BALANCE_MINOR:
        raise RowRefused(f"balance {text} is larger than any card holds")
    return minor


def _points(text: str) -> int:
    if not text:
        return 0
    if not text.isascii() or not text.isdigit():
        raise RowRefused(f"points {text!r} is not a whole number of zero or more")
    value = int(text)
    if value > MAX_POINTS:
        raise RowRefused(f"points {text} is more than {MAX_POINTS}")
    return value


def _tier(text: str) -> str:
    if not text:
        return Tier.STANDARD.value
    if text in _TIERS_READ:
        return _TIERS_READ[text]
    try:
        value = Tier.parse(text).value
    except CardposError:
        raise RowRefused(f"tier {text!r} is not one of {', '.join(t.value for t in Tier)}") from None
    if len(_TIERS_READ) < 64:
        _TIERS_READ[text] = value
    return value


_TIERS_READ: dict[str, str] = {}
"""Tier texts already read (a file spells its few tiers the same way on every row)."""


def _consents(fields: dict[str, str], columns: Iterable[str] | None = None) -> dict[str, bool]:
    """The row's ``consent_<purpose>`` columns (``columns``: their names, when the header is known)."""
    out: dict[str, bool] = {}
    for name in columns if columns is not None else [n for n in fields if n.startswith(CONSENT_PREFIX)]:
        value = fields[name]
        purpose = name[len(CONSENT_PREFIX):]
        if value.lower() not in CONSENT_VALUES:
            raise RowRefused(f"{name} {value!r} is not yes, no or empty (unknown)")
        given = CONSENT_VALUES[value.lower()]
        if given is not None:
            out[purpose] = given
    return out


def member_row(line: int, fields: dict[str, str], currency: str, *,
               consent_columns: Iterable[str] | None = None) -> MemberRow:
    """One members.csv row checked; raises ``RowRefused`` with the reason. ``consent_columns``: the header's
    ``consent_<purpose>`` names, when known (else found in ``fields``)."""
    _check_lengths(fields)
    member_id = _id(fields, "member_id", MEMBER_ID, "a member id (1 to 32 printable characters, no spaces)")
    if not fields["name"]:
        raise RowRefused("name is empty")
    store_id = _id(fields, "store_id", STORE_ID, "a store id (printable, no spaces)")
    card = fields.get("card_number", "")
    if card and not CARD_NUMBER.fullmatch(card):
        raise RowRefused(f"card_number {card!r} is not 4 to 40 letters, digits or -")
    email = fields.get("email", "")
    if email and "@" not in email:
        raise RowRefused(f"email {email!r} has no @")
    return MemberRow(line=line, member_id=member_id, name=fields["name"], store_id=store_id,
                     phone=fields.get("phone", ""), email=email, notes=fields.get("notes", ""),
                     tier=_tier(fields.get("tier", "")), balance=_amount(fields.get("balance", ""), currency),
                     points=_points(fields.get("points", "")), card_number=card,
                     consents=_consents(fields, consent_columns))


def read_members(text: str | Iterable[str], currency: str, file: str = "members.csv") -> Iterator[MemberRow | Refusal]:
    """The members file's rows in order, each checked (a member id or card number twice: the later refused).
    ``text``: the file's text, or its lines (a text file opened with ``newline=""``, read as it goes)."""
    seen_ids: dict[str, int] = {}
    seen_cards: dict[str, int] = {}
    optional = tuple(c for c in MEMBER_COLUMNS if c not in MEMBER_REQUIRED)
    consent_columns: list[str] | None = None
    for line, fields in _records(text, file, MEMBER_REQUIRED, optional, prefix=CONSENT_PREFIX):
        if consent_columns is None and "\x00" not in fields:  # every other row has the header's columns too
            consent_columns = [name for name in fields if name.startswith(CONSENT_PREFIX)]
        try:
            row = member_row(line, fields, currency,
                             consent_columns=consent_columns if "\x00" not in fields else None)
            if row.member_id in seen_ids:
                raise RowRefused(f"member {row.member_id} is already on line {seen_ids[row.member_id]}")
            if row.card_number and row.card_number in seen_cards:
                raise RowRefused(f"card {row.card_number} is already on line {seen_cards[row.card_number]}")
        except RowRefused as exc:
            yield Refusal(file, line, exc.reason)
            continue
        seen_ids[row.member_id] = line
        if row.card_number:
            seen_cards[row.card_number] = line
        yield row


def check_utf8(blocks: Iterable[bytes], file: str) -> str:
    """The SHA-256 (hex) of a file read in ``blocks``, checking on the way that it is UTF-8 text: raises
    ``ImportFileError`` naming the first byte that is not, as ``decode`` does for a file read whole."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    digest = hashlib.sha256()
    offset = 0
    for block, final in itertools.chain(((block, False) for block in blocks), [(b"", True)]):
        held = len(decoder.getstate()[0])  # the bytes of a character cut at the end of the previous block
        try:
            decoder.decode(block, final=final)
        except UnicodeDecodeError as exc:
            raise ImportFileError(f"{file} is not UTF-8 text (byte {offset - held + exc.start}); "
                                  "save it as UTF-8 CSV") from None
        digest.update(block)
        offset += len(block)
    return digest.hexdigest()


def decode(data: bytes, file: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ImportFileError(f"{file} is not UTF-8 text (byte {exc.start}); save it as UTF-8 CSV") from None
