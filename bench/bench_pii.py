"""Members' personal data encrypted at rest at the ledger: what a lookup by phone costs.

Figures (baselines measured in the same run, on the same SQLite file):
- member lookup by phone over 100,000 members, the way ``cardpos ledger member find --phone`` does it
  (normalise, HMAC-SHA256 under the lookup key, indexed select on ``phone_hash``, decrypt the found row's name,
  phone and email), as a ratio to a plain indexed lookup of the clear phone in a table holding the same members'
  details in clear (select, read the name, phone and email);
- writing one member's details (five AES-GCM encryptions, two lookup hashes, the name-word rows), as a ratio to
  writing the same details in clear (set-up cost of ``member add`` and of the migration of an old ledger).

``run(quick=True)`` uses 10,000 members instead of 100,000.
Run: .venv/bin/python -m bench --only bench_pii
"""

from __future__ import annotations

import random
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import peewee

LOOKUP_TARGET = 3.0  # a keyed lookup costs at most three plain ones (both well under a millisecond)
CHUNK = 1_000


class PlainMember(peewee.Model):
    """The baseline: the same details in clear, the phone's digits indexed."""

    member_id = peewee.CharField(primary_key=True, max_length=40)
    name = peewee.TextField()
    phone = peewee.TextField()
    email = peewee.TextField()
    phone_digits = peewee.CharField(max_length=32, index=True)

    class Meta:
        table_name = "bench_plain_member"


def _people(n: int, rng: random.Random) -> list[dict[str, str]]:
    family = ["Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou", "Lee", "Smith"]
    given = ["Fang", "Wei", "Min", "Jing", "Lei", "Yan", "Ann", "Bo", "Xiu", "Hui", "Mei", "Tao"]
    return [{"member_id": f"M{i:07d}", "name": f"{rng.choice(given)} {rng.choice(family)} {i}",
             "phone": f"+86 1{rng.randrange(30, 90)} {i:04d} {rng.randrange(10_000):04d}"[:22],
             "email": f"member{i}@example.cn"} for i in range(n)]


def _best_per_call(fn: Callable[[str], object], queries: list[str], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for query in queries:
            fn(query)
        best = min(best, (time.perf_counter() - started) / len(queries))
    return best


def _figure(figure: str, value: float, unit: str, baseline: float, label: str, target: str,
            passed: bool) -> dict[str, Any]:
    return {"figure": figure, "value": round(value, 3), "unit": unit, "baseline": round(baseline, 3),
            "baseline_label": label, "ratio": round(value / baseline, 3) if baseline else 0.0, "target": target,
            "passed": passed}


def run(quick: bool = False) -> list[dict[str, Any]]:
    from ledger import pii, store
    from ledger.home import init_ledger

    n_members = 10_000 if quick else 100_000
    rng = random.Random(13)
    root = Path(tempfile.mkdtemp(prefix="cardpos-bench-pii-"))
    try:
        ledger = init_ledger(root / "ledger", issuer="bench")
        people = _people(n_members, rng)
        store.db.obj.bind([PlainMember])
        store.db.create_tables([PlainMember])

        # Writing: encrypted rows (through ledger.pii, as member add does) against the same rows in clear.
        started = time.perf_counter()
        with store.atomic_write():
            for start in range(0, n_members, CHUNK):
                rows, words = [], []
                for p in people[start:start + CHUNK]:
                    details = pii.MemberDetails(name=p["name"], phone=p["phone"], email=p["email"])
                    rows.append({"member_id": p["member_id"], **pii.active().member_columns(p["member_id"], details),
                                 "store_id": "store-1", "opening_tier": "standard", "currency": "CNY",
                                 "created_ms": 0, "version": 1})
                    words += [{"word_hash": pii.active().lookup_hash("name", w), "member_id": p["member_id"]}
                              for w in pii.name_words(p["name"])]
                store.Member.insert_many(rows).execute()
                store.MemberNameWord.insert_many(words).on_conflict_ignore().execute()
        write_sealed_s = (time.perf_counter() - started) / n_members
        started = time.perf_counter()
        with store.atomic_write():
            for start in range(0, n_members, CHUNK):
                PlainMember.insert_many([{**p, "phone_digits": pii.normal_phone(p["phone"])}
                                         for p in people[start:start + CHUNK]]).execute()
        write_plain_s = (time.perf_counter() - started) / n_members

        queries = [rng.choice(people)["phone"] for _ in range(2_000)]

        def keyed(phone: str) -> object:
            (member,) = pii.find_members(phone=phone)
            details = pii.details_of(member)
            return details.name, details.phone, details.email

        def plain(phone: str) -> object:
            row = PlainMember.get(PlainMember.phone_digits == pii.normal_phone(phone))
            return row.name, row.phone, row.email

        for fn in (keyed, plain):  # warm the page cache and the statement cache
            _best_per_call(fn, queries[:200], 1)
        keyed_s = _best_per_call(keyed, queries, 3)
        plain_s = _best_per_call(plain, queries, 3)
        ledger.database.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    label = f"{n_members:,} members"
    return [
        _figure(f"lookup by phone, keyed hash + decrypt ({label})", keyed_s * 1e6, "us/lookup", plain_s * 1e6,
                "plain indexed lookup of the clear phone", f"<= {LOOKUP_TARGET:g}x",
                keyed_s <= LOOKUP_TARGET * plain_s),
        _figure(f"write one member's details encrypted ({label})", write_sealed_s * 1e6, "us/member",
                write_plain_s * 1e6, "the same details in clear", "reported", True),
    ]
