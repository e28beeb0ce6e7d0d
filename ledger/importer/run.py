"""Applying checked import rows to the open ledger: idempotent, audited, reconciled.

- A merchant, store or member already there with the same facts is left alone (a re-run changes nothing); one
  there with different facts is refused with the reason (the import never overwrites what the ledger holds).
- Members are written in bulk in one transaction with one ``members`` version: personal data encrypted and
  indexed by ``ledger.pii``, balances and points as the member's opening figures (``member.opening_balance`` and
  ``opening_points``), which settlement counts as stored value the program holds (``joined`` in the period of
  the import) and ``ledger verify`` folds from. No entry is invented, so the program's liability still equals the
  sum of member balances.
- The reconciliation report: rows read, imported, unchanged and refused (each with its line and reason), the
  file's totals of balances and points, and the ledger's totals before and after, to the cent.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import peewee

from ledger import member_facts, pii, store
from ledger.errors import LedgerError
from ledger.home import current
from ledger.importer import rows
from ledger.importer.staging import MODELS, ImportedMember, LegacyCard
from ledger.merchants import admin as merchants
from ledger.merchants.models import Merchant, Store
from ledger.settlement import books

BATCH = 1000


@dataclass
class FileCount:
    read: int = 0
    imported: int = 0
    unchanged: int = 0
    refused: int = 0


@dataclass
class Report:
    currency: str
    merchants: FileCount = field(default_factory=FileCount)
    stores: FileCount = field(default_factory=FileCount)
    members: FileCount = field(default_factory=FileCount)
    refused: list[rows.Refusal] = field(default_factory=list)
    file_balance: int = 0  # the members file's good rows (imported or already there)
    file_points: int = 0
    imported_balance: int = 0
    imported_points: int = 0
    before_balance: int = 0
    before_points: int = 0
    after_balance: int = 0
    after_points: int = 0
    liability_after: int = 0  # settlement's outstanding stored value of every issuer

    @property
    def reconciled(self) -> bool:
        return (self.after_balance - self.before_balance == self.imported_balance
                and self.after_points - self.before_points == self.imported_points
                and self.liability_after == self.after_balance)

    def as_dict(self) -> dict[str, Any]:
        return {
            "currency": self.currency, "reconciled": self.reconciled,
            "files": {name: vars(getattr(self, name)) for name in ("merchants", "stores", "members")},
            "totals": {"file": {"balance": self.file_balance, "points": self.file_points},
                       "imported": {"balance": self.imported_balance, "points": self.imported_points},
                       "before": {"balance": self.before_balance, "points": self.before_points},
                       "after": {"balance": self.after_balance, "points": self.after_points},
                       "liability_after": self.liability_after},
            "refused": [{"file": r.file, "line": r.line, "reason": r.reason} for r in self.refused],
        }


def ensure_tables() -> None:
    store.db.create_tables(MODELS, safe=True)


def member_totals() -> tuple[int, int]:
    """Every member's stored value and points as they stand (the projection, or the opening figures of a member
    nothing has been applied to yet)."""
    m, p = store.Member, store.MemberProjection
    query: Any = (m.select(peewee.fn.SUM(peewee.fn.COALESCE(p.balance, m.opening_balance)),
                           peewee.fn.SUM(peewee.fn.COALESCE(p.points, m.opening_points)))
                  .join(p, peewee.JOIN.LEFT_OUTER, on=(p.member_id == m.member_id)).tuples())
    balance, points = query.get()
    return int(balance or 0), int(points or 0)


def _audit(actor: str, action: str, subject: str, **details: Any) -> None:
    store.AuditLog.create(at_ms=current().now_ms(), actor=actor, action=action, subject=subject, details=details)


def _merchants(found: list[rows.MerchantRow], report: Report, actor: str) -> None:
    existing = {str(m.merchant_id): str(m.name) for m in Merchant.select()}
    for row in found:
        if row.merchant_id in existing:
            if existing[row.merchant_id] == row.name:
                report.merchants.unchanged += 1
            else:
                _refuse(report, report.merchants, "merchants", row.line,
                        f"merchant {row.merchant_id} already exists as {existing[row.merchant_id]!r}")
            continue
        merchants.add_merchant(row.name, merchant_id=row.merchant_id, actor=actor)
        existing[row.merchant_id] = row.name
        report.merchants.imported += 1


def _stores(found: list[rows.StoreRow], report: Report, actor: str, file: str) -> None:
    known_merchants = {str(m.merchant_id) for m in Merchant.select(Merchant.merchant_id)}
    existing = {str(s.store_id): str(s.merchant_id) for s in Store.select()}
    for row in found:
        if row.store_id in existing:
            if existing[row.store_id] == row.merchant_id:
                report.stores.unchanged += 1
            else:
                _refuse(report, report.stores, file, row.line,
                        f"store {row.store_id} already belongs to merchant {existing[row.store_id]}")
            continue
        if row.merchant_id not in known_merchants:
            _refuse(report, report.stores, file, row.line, f"there is no merchant {row.merchant_id}")
            continue
        merchants.assign_store(row.store_id, row.merchant_id, name=row.name or None, actor=actor)
        existing[row.store_id] = row.merchant_id
        report.stores.imported += 1


def _refuse(report: Report, count: FileCount, file: str, line: int, reason: str) -> None:
    count.refused += 1
    report.refused.append(rows.Refusal(file, line, reason))


def _batches(items: Iterable[rows.MemberRow | rows.Refusal],
             size: int = BATCH) -> Iterator[list[rows.MemberRow | rows.Refusal]]:
    batch: list[rows.MemberRow | rows.Refusal] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _members(found: Iterable[rows.MemberRow | rows.Refusal], report: Report, *, source: str, file: str,
             version: Callable[[], int], chunk: int = BATCH) -> None:
    keys = pii.active()
    now = current().now_ms()
    stores = {str(s.store_id) for s in Store.select(Store.store_id)}
    for batch in _batches(found, chunk):
        present = _present([r.member_id for r in batch if isinstance(r, rows.MemberRow)])
        digests = {member_id: digest for member_id, digest in present.items() if digest is not None}
        cards = [r.card_number for r in batch
                 if isinstance(r, rows.MemberRow) and r.card_number and r.member_id not in present]
        card_owner = {str(c): str(m) for c, m in store.select_in(LegacyCard, "card_number", cards, "card_number",
                                                                 "member_id")}
        members: list[dict[str, Any]] = []
        words: list[dict[str, str]] = []
        staged: list[dict[str, Any]] = []
        legacy: list[dict[str, str]] = []
        for row in batch:
            report.members.read += 1
            if isinstance(row, rows.Refusal):
                report.members.refused += 1
                report.refused.append(row)
                continue
            digest = row.digest()
            if row.member_id in present:
                if digests.get(row.member_id) == digest:
                    report.members.unchanged += 1
                    report.file_balance += row.balance
                    report.file_points += row.points
                else:
                    why = ("was imported before from a different row" if row.member_id in digests
                           else "already exists in the ledger")
                    _refuse(report, report.members, file, row.line, f"member {row.member_id} {why}; "
                            "the import never overwrites a member (change them with cardpos ledger member update)")
                continue
            if row.store_id not in stores:
                _refuse(report, report.members, file, row.line,
                        f"store {row.store_id} belongs to no merchant (add it to the stores file)")
                continue
            if row.card_number and card_owner.get(row.card_number, row.member_id) != row.member_id:
                _refuse(report, report.members, file, row.line,
                        f"card {row.card_number} already belongs to member {card_owner[row.card_number]}")
                continue
            details = pii.MemberDetails(name=row.name, phone=row.phone, email=row.email, notes=row.notes)
            members.append({"member_id": row.member_id, **keys.member_columns(row.member_id, details),
                            "store_id": row.store_id, "opening_tier": row.tier, "currency": report.currency,
                            "opening_balance": row.balance, "opening_points": row.points, "created_ms": now,
                            "version": version()})
            words += [{"word_hash": keys.lookup_hash("name", w), "member_id": row.member_id}
                      for w in pii.name_words(row.name)]
            staged.append({"member_id": row.member_id, "digest": digest, "consents": row.consents, "source": source,
                           "line": row.line, "imported_ms": now})
            if row.card_number:
                legacy.append({"card_number": row.card_number, "member_id": row.member_id})
            report.members.imported += 1
            report.imported_balance += row.balance
            report.imported_points += row.points
            report.file_balance += row.balance
            report.file_points += row.points
        for model, data in ((store.Member, members), (store.MemberNameWord, words), (ImportedMember, staged),
                            (LegacyCard, legacy)):
            store.bulk_insert(model, data, ignore_conflicts=model is store.MemberNameWord)
        _record_consents(staged, now)


def _present(ids: list[str]) -> dict[str, str | None]:
    """Which of ``ids`` the ledger holds, each with the digest of the row it was imported from (None: a member the
    import did not bring): one query per chunk."""
    if not ids:
        return {}
    member, imported = store.Member._meta.table_name, ImportedMember._meta.table_name
    marks = ", ".join(store.db.param for _ in ids)
    found = store.db.execute_sql(f'SELECT m."member_id", i."digest" FROM "{member}" m LEFT JOIN "{imported}" i '
                                 f'ON i."member_id" = m."member_id" WHERE m."member_id" IN ({marks})', ids)
    return {str(member_id): None if digest is None else str(digest) for member_id, digest in found.fetchall()}


CHANNEL_OF = {"email": "mail"}
"""Import purposes named otherwise than the member facts' channels."""


def _record_consents(staged: list[dict[str, Any]], now: int) -> None:
    """The SMS and mail consents the rows gave, as statements of the member facts (source ``import``), so
    campaigns and the member page honour them; other purposes stay in the import's own table."""
    member_facts.create_tables()
    given: dict[str, dict[str, bool]] = {}
    for row in staged:
        consents = {CHANNEL_OF.get(c, c): bool(v) for c, v in row["consents"].items()
                    if CHANNEL_OF.get(c, c) in member_facts.CHANNELS}
        if consents:
            given[row["member_id"]] = consents
    member_facts.record_new_members_consents(given, at_ms=now, source="import")


def source_name(name: str, data: bytes) -> str:
    return f"{name} sha256:{hashlib.sha256(data).hexdigest()[:16]}"


MembersFile = tuple[str, bytes | Path]
"""The members file: its name, and its content or its path (a path is streamed: read in blocks to check and hash
it, then a line at a time, never held whole)."""

READ_BLOCK = 1 << 20
MAX_HEADER_CHARS = 1 << 16  # a header line is a few dozen column names; the check reads no more than this


def _open_text(path: Path) -> TextIO:
    try:
        return path.open(encoding="utf-8", newline="")
    except OSError as exc:
        raise LedgerError(f"cannot read {path}: {exc.strerror}", orig=exc) from exc


def _checked_members_file(given: MembersFile, currency: str) -> tuple[str, str | Path]:
    """(the source name, what to read the rows from: the whole text when given as bytes, else the path), the file
    checked to be UTF-8 with a good header before anything changes (raises ``ImportFileError``)."""
    name, data = given
    content: str | Path
    if isinstance(data, bytes):
        content = rows.decode(data, name)
        header, source = content[:content.find("\n")] if "\n" in content else content, source_name(name, data)
    else:
        content = data
        try:
            with data.open("rb") as binary:
                digest = rows.check_utf8(iter(lambda: binary.read(READ_BLOCK), b""), name)
        except OSError as exc:
            raise LedgerError(f"cannot read {data}: {exc.strerror}", orig=exc) from exc
        with _open_text(data) as stream:
            header, source = stream.readline(MAX_HEADER_CHARS), f"{name} sha256:{digest[:16]}"
    next(iter(rows.read_members(header, currency, name)), None)  # the header alone: raises for a bad one
    return source, content


def import_program(*, merchants_csv: tuple[str, bytes] | None = None, stores_csv: tuple[str, bytes] | None = None,
                   members_csv: MembersFile | None = None, actor: str = "admin", chunk: int = BATCH) -> Report:
    """Import the files given (name, content or path) into the open ledger in one transaction; returns the report.
    Members are checked and written ``chunk`` rows at a time. A file that cannot be read at all raises
    ``ImportFileError`` before anything changes."""
    ensure_tables()
    currency = str(merchants.program_settings().currency)
    report = Report(currency=currency)
    merchant_rows: list[rows.MerchantRow] = []
    store_rows: list[rows.StoreRow] = []
    if merchants_csv is not None:
        merchant_rows, refused = rows.read_merchants(rows.decode(merchants_csv[1], merchants_csv[0]), merchants_csv[0])
        report.merchants.read = len(merchant_rows) + len(refused)
        report.merchants.refused += len(refused)
        report.refused += refused
    if stores_csv is not None:
        store_rows, refused = rows.read_stores(rows.decode(stores_csv[1], stores_csv[0]), stores_csv[0])
        report.stores.read = len(store_rows) + len(refused)
        report.stores.refused += len(refused)
        report.refused += refused
    sources = [source_name(*given) for given in (merchants_csv, stores_csv) if given is not None]
    if members_csv is not None:
        members_source, member_content = _checked_members_file(members_csv, currency)
        sources.append(members_source)
    with store.atomic_write():
        report.before_balance, report.before_points = member_totals()
        _merchants(merchant_rows, report, actor)
        if stores_csv is not None:
            _stores(store_rows, report, actor, stores_csv[0])
        if members_csv is not None:
            bumped: list[int] = []

            def version() -> int:  # one new members version, and only when a member is added
                if not bumped:
                    bumped.append(store.bump("members"))
                return bumped[0]

            opened: contextlib.AbstractContextManager[str | TextIO] = (
                contextlib.nullcontext(member_content) if isinstance(member_content, str)
                else _open_text(member_content))
            with opened as lines:
                _members(rows.read_members(lines, currency, members_csv[0]), report, source=members_source,
                         file=members_csv[0], version=version, chunk=chunk)
        report.after_balance, report.after_points = member_totals()
        report.liability_after = sum(books.outstanding_at(2**62).values())
        _audit(actor, "import", "; ".join(sources), **{k: v for k, v in report.as_dict().items() if k != "refused"},
               refused_lines=[f"{r.file}:{r.line}" for r in report.refused[:200]])
    report.refused.sort(key=lambda r: (r.file, r.line))
    return report
