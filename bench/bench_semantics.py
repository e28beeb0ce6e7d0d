"""What the ledger's semantic checks cost (issue 13: "the ledger checks what an entry means before applying it").

Figures, each a ratio to a baseline measured in the same run on the same sealed batches:
- ledger ingest (``ingest_batch``: verify, decrypt, chain, judge, apply) with the semantic checks, against the
  same ingest with them off (``semantic_checks=False``), on copies of one SQLite ledger;
- the SQLite triggers that enforce identifier lengths, against the same ledger with them dropped (checks off in
  both, so only the triggers differ);
- ``ledger verify`` with its semantic re-check of history, against chains and folds alone.

The load is a till's day: 90% sales (a third paid from stored value), 6% top-ups, 4% partial refunds of an
earlier sale of the same member (so the checks look originals up, in the batch and in the database). 500
members with one card each, one terminal, batches of 2,000 entries. ``run(quick=True)`` uses 10,000 entries
instead of 100,000.
"""

from __future__ import annotations

import random
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

N_MEMBERS = 500
PER_BATCH = 2_000


def _ledger(root: Path) -> tuple[Path, list[tuple[str, str]], str, Any, bytes]:
    """A ledger with members and cards and one enrolled terminal: (dir, [(member, card)], terminal id, key,
    the ledger's HPKE public key)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from ledger import admin
    from ledger.home import init_ledger
    from tests.fixtures.ledger import enroll_in_process

    ledger_dir = root / "ledger"
    ledger = init_ledger(ledger_dir, issuer="bench")
    members = []
    for i in range(N_MEMBERS):
        member_id = admin.add_member(f"Member {i}", balance=100_000_000, member_id=f"M{i:05d}")
        members.append((member_id, admin.issue_card(member_id).card_id))
    _, code = admin.add_terminal("bench till", "store-1")
    key = Ed25519PrivateKey.generate()
    body = enroll_in_process(ledger, code, key)
    ledger.database.close()
    return ledger_dir, members, body["terminal_id"], key, bytes.fromhex(body["ledger_hpke_public_key"])


def _payloads(rng: random.Random, members: list[tuple[str, str]], n_ops: int) -> list[tuple[str, dict[str, Any],
                                                                                          str]]:
    out: list[tuple[str, dict[str, Any], str]] = []
    sales: dict[str, list[tuple[str, int, int]]] = {}  # member -> [(uuid, net, sv left)]
    for _ in range(n_ops):
        member, card = rng.choice(members)
        entry_uuid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        roll = rng.random()
        mine = sales.get(member)
        if roll < 0.04 and mine:
            orig, net, sv = mine.pop()
            amount = max(1, net // 2)
            part_sv = sv * amount // net
            out.append(("refund", {"card": card, "member": member, "cur": "CNY", "orig": orig, "amount": amount,
                                   "sv": part_sv, "pts_back": 0, "pts_rev": 0, "tender": "sv" if sv else "cash",
                                   "supervisor": "s1", "offline": False}, entry_uuid))
        elif roll < 0.10:
            out.append(("topup", {"card": card, "member": member, "cur": "CNY", "amount": rng.randint(1, 500) * 100,
                                  "bonus": 0, "tender": "cash", "offline": False}, entry_uuid))
        else:
            net = rng.randint(100, 50_000)
            sv = net if rng.random() < 0.33 else 0
            out.append(("sale", {"card": card, "member": member, "cur": "CNY", "gross": net, "tier_disc": 0,
                                 "coupon_disc": 0, "pts_disc": 0, "net": net, "tender": "sv" if sv else "cash",
                                 "sv": sv, "pts_earn": net // 100, "pts_redeem": 0, "coupons": [],
                                 "offline": False}, entry_uuid))
            sales.setdefault(member, []).append((entry_uuid, net, sv))
    return out


def _seal(terminal_id: str, key: Any, hpke_public: bytes, ops: list[tuple[str, dict[str, Any], str]]) -> list[bytes]:
    from cardkit.envelope import seal_batch
    from cardkit.journal import GENESIS_HASH, make_entry

    wall = time.time_ns() // 1_000_000 - 3_600_000
    envelopes: list[bytes] = []
    prev = GENESIS_HASH
    for first in range(0, len(ops), PER_BATCH):
        batch = []
        for i, (kind, payload, entry_uuid) in enumerate(ops[first:first + PER_BATCH], start=first + 1):
            entry = make_entry(terminal_id=terminal_id, seq=i, prev_hash=prev, wall_ms=wall + i * 20,
                               mono_ns=i * 20_000_000, cashier_id="c1", kind=kind, payload=payload,
                               entry_uuid=entry_uuid)
            batch.append(entry)
            prev = entry.hash
        envelopes.append(seal_batch(batch, terminal_id=terminal_id, batch_id=f"b{first}", terminal_key=key,
                                    ledger_public_key=hpke_public))
    return envelopes


def _ingest_interleaved(copies: dict[str, tuple[Path, bool]], envelopes: list[bytes],
                        n_ops: int) -> dict[str, tuple[float, float]]:
    """Ingest the same batches into every copy, batch by batch in turn, so each side meets the same load on a
    shared machine: {name: (wall seconds, CPU seconds)}. ``copies``: name -> (ledger dir, checks on?)."""
    from ledger import store
    from ledger.home import open_ledger
    from ledger.ingest import ingest_batch

    ledgers = {name: open_ledger(path) for name, (path, _) in copies.items()}
    spent = {name: [0.0, 0.0] for name in copies}
    applied = dict.fromkeys(copies, 0)
    try:
        for i, envelope in enumerate(envelopes):
            names = list(copies)
            for name in names[i % len(names):] + names[:i % len(names)]:  # rotate who goes first
                store.db.initialize(ledgers[name].database)
                wall, cpu = time.perf_counter(), time.process_time()
                applied[name] += ingest_batch(envelope, now_ms=time.time_ns() // 1_000_000, ledger=ledgers[name],
                                              semantic_checks=copies[name][1]).applied
                spent[name][0] += time.perf_counter() - wall
                spent[name][1] += time.process_time() - cpu
    finally:
        for ledger in ledgers.values():
            ledger.database.close()
    for name, count in applied.items():
        if count != n_ops:
            raise RuntimeError(f"ingest into {name} applied {count} of {n_ops}")
    return {name: (wall, cpu) for name, (wall, cpu) in spent.items()}


def _drop_length_triggers(copy: Path) -> None:
    import sqlite3

    conn = sqlite3.connect(copy / "ledger.sqlite3")
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE "
                                            "'%_length_%'")]
        for name in names:
            conn.execute(f'DROP TRIGGER "{name}"')
        conn.commit()
    finally:
        conn.close()


def _verify_s(copy: Path, *, semantics: bool) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one ``ledger verify`` of ``copy``."""
    from ledger import verify
    from ledger.home import open_ledger

    ledger = open_ledger(copy)
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        problems = verify.verify_chains() + verify.verify_members(semantics=semantics)
        spent = (time.perf_counter() - wall, time.process_time() - cpu)
    finally:
        ledger.database.close()
    if problems:
        raise RuntimeError(f"verify found problems in the bench ledger: {problems[:3]}")
    return spent


def run(quick: bool = False) -> list[dict[str, Any]]:
    from ledger import alerts  # noqa: F401  (loaded in `ledger serve` before any batch: not part of the figure)

    n_ops = 10_000 if quick else 100_000
    root = Path(tempfile.mkdtemp(prefix="cardpos-bench-semantics-"))
    try:
        ledger_dir, members, terminal_id, key, hpke_public = _ledger(root)
        envelopes = _seal(terminal_id, key, hpke_public, _payloads(random.Random(13), members, n_ops))
        copies = {"checked": (root / "checked", True), "unchecked": (root / "unchecked", False),
                  "no-triggers": (root / "no-triggers", False)}
        for path, _ in copies.values():
            shutil.copytree(ledger_dir, path)
        _drop_length_triggers(root / "no-triggers")
        spent = _ingest_interleaved(copies, envelopes, n_ops)
        verifies = {True: [], False: []}  # type: dict[bool, list[tuple[float, float]]]
        for _ in range(3):
            for semantics in (True, False):
                verifies[semantics].append(_verify_s(root / "checked", semantics=semantics))
    finally:
        shutil.rmtree(root, ignore_errors=True)

    def rate(name: str, which: int) -> float:
        return n_ops / spent[name][which]

    verify_with = min(v[1] for v in verifies[True])
    verify_without = min(v[1] for v in verifies[False])
    note = "CPU time of the ingesting process (the machine's cores are shared); wall-clock ratio "
    return [
        {"figure": f"ledger ingest with the semantic checks, {n_ops:,} entries (sales, top-ups, refunds), SQLite",
         "value": round(rate("checked", 1), 1), "unit": "ops/CPU-s", "baseline": round(rate("unchecked", 1), 1),
         "baseline_label": "the same batches, checks off, interleaved batch by batch",
         "ratio": round(rate("checked", 1) / rate("unchecked", 1), 3),
         "target": note + f"{rate('checked', 0) / rate('unchecked', 0):.3f} "
                          f"({rate('checked', 0):,.0f} vs {rate('unchecked', 0):,.0f} ops/s)", "passed": True},
        {"figure": "ledger ingest with the SQLite identifier-length triggers (checks off)",
         "value": round(rate("unchecked", 1), 1), "unit": "ops/CPU-s", "baseline": round(rate("no-triggers", 1), 1),
         "baseline_label": "the same ledger with the triggers dropped",
         "ratio": round(rate("unchecked", 1) / rate("no-triggers", 1), 3),
         "target": note + f"{rate('unchecked', 0) / rate('no-triggers', 0):.3f}", "passed": True},
        {"figure": f"ledger verify with the semantic re-check of history, {n_ops:,} entries",
         "value": round(verify_with, 3), "unit": "CPU-s", "baseline": round(verify_without, 3),
         "baseline_label": "verify: chains and folds only (best of 3 each, alternated)",
         "ratio": round(verify_with / verify_without, 3), "target": "ratio reported", "passed": True},
    ]


if __name__ == "__main__":
    import sys

    for row in run(quick="--quick" in sys.argv):
        print(row)
