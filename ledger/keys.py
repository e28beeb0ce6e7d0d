"""The ledger's key material, in ``<ledger_dir>/keys/`` (files 0600, directory 0700).

- ``root.key``: Ed25519; signs the trust list, revocation deltas, rules and member snapshots. Terminals learn
  its public half at enrollment and trust nothing else.
- ``issuer-<kid>.key``: Ed25519 issuer keys that sign card tokens. ``rotate`` makes a new current key and ends
  the old key's issuing window; cards under an old key keep verifying until ``retire`` (the trust list carries
  ``retired_at``).
- ``pii.key`` and ``pii-lookup.key``: members' personal data at rest (``ledger.pii`` makes and checks them).
- ``hpke-x25519.key`` (32 bytes) and ``hpke-mlkem768x25519.key`` (64-byte ML-KEM-768 seed + 32-byte X25519):
  terminals seal batches to these (RFC 9180).

Public facts (kid, window, retirement) are rows of ``store.KeyRecord``; only private halves live in files.
Public key wire forms: Ed25519 and X25519 raw 32 bytes; the hybrid suite's public key is the ML-KEM-768 public
key (1184 bytes) followed by the X25519 public key (32 bytes), as ``cardkit.envelope`` reads them.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from cardkit.cards.keys import (
    IssuerKey,
    generate_issuer_key,
    private_key_from_bytes,
    private_key_to_bytes,
    public_key_bytes,
)
from cardkit.locations import private_dir, write_private
from ledger import store
from ledger.errors import LedgerError

ROOT_KID = "root"
SUITE_X25519 = "x25519"
SUITE_HYBRID = "mlkem768x25519"
SUITES = (SUITE_X25519, SUITE_HYBRID)
ISSUER_VALID_DAYS = 3650


def keys_dir(ledger_dir: Path) -> Path:
    return ledger_dir / "keys"


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise LedgerError(f"the ledger {what} key file {path} is missing; run 'cardpos ledger init'",
                          orig=exc) from exc
    except OSError as exc:
        raise LedgerError(f"cannot read the ledger {what} key file {path}: {exc.strerror}", orig=exc) from exc


def _create_key_file(path: Path, data: bytes) -> None:
    """Create a key file that never replaces one already there: written whole (0600, fsynced) under a private
    temporary name, then hard-linked into place, which fails when the name exists (a symlink included). Two
    ``ledger init`` runs at once thus keep one root key, never one each."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.new")
    write_private(tmp, data)
    try:
        os.link(tmp, path, follow_symlinks=False)
    except FileExistsError:
        pass  # another init made it first: its key is the ledger's
    finally:
        tmp.unlink(missing_ok=True)


def _x25519_raw(key: x25519.X25519PrivateKey) -> bytes:
    return key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


def hybrid_public_key_bytes(mlkem_key: mlkem.MLKEM768PrivateKey, x_key: x25519.X25519PrivateKey) -> bytes:
    """The hybrid public key's wire form; built from the halves (the hybrid object does not expose them)."""
    return mlkem_key.public_key().public_bytes_raw() + x_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True)
class HpkeKeys:
    """The ledger's HPKE private keys by suite name, and their public wire forms."""

    private: Mapping[str, Any]
    public: Mapping[str, bytes]


class LedgerKeys:
    """Loads and makes the ledger's keys. ``now_s`` is injected by the caller (epoch seconds)."""

    def __init__(self, ledger_dir: Path) -> None:
        self.dir = keys_dir(ledger_dir)
        self._root: Ed25519PrivateKey | None = None
        self._hpke: HpkeKeys | None = None
        self._issuers: dict[str, Ed25519PrivateKey] = {}

    # -- creation (ledger init) -----------------------------------------------------------------------------
    def create_all(self, issuer: str, now_s: int) -> None:
        """Make the root, first issuer and HPKE keys unless they exist (init is idempotent)."""
        private_dir(self.dir)
        root_path = self.dir / "root.key"
        if not root_path.exists():
            _create_key_file(root_path, private_key_to_bytes(Ed25519PrivateKey.generate()))
        x_path = self.dir / f"hpke-{SUITE_X25519}.key"
        if not x_path.exists():
            _create_key_file(x_path, _x25519_raw(x25519.X25519PrivateKey.generate()))
        h_path = self.dir / f"hpke-{SUITE_HYBRID}.key"
        if not h_path.exists():
            seed = mlkem.MLKEM768PrivateKey.generate().private_bytes_raw()
            _create_key_file(h_path, seed + _x25519_raw(x25519.X25519PrivateKey.generate()))
        now_ms = now_s * 1000
        root_pub = public_key_bytes(self.root())
        store.KeyRecord.insert(kid=ROOT_KID, kind="root", public_key=root_pub, not_before=now_s,
                               not_after=2**40, created_ms=now_ms, current=True).on_conflict_ignore().execute()
        for suite, public in self.hpke().public.items():
            store.KeyRecord.insert(kid=f"hpke-{suite}", kind=f"hpke_{suite}", public_key=public, not_before=now_s,
                                   not_after=2**40, created_ms=now_ms, current=True).on_conflict_ignore().execute()
        if not store.KeyRecord.select().where(store.KeyRecord.kind == "issuer").exists():
            self.new_issuer_key(issuer, now_s)

    # -- root and HPKE ------------------------------------------------------------------------------------
    def root(self) -> Ed25519PrivateKey:
        if self._root is None:
            self._root = private_key_from_bytes(_read(self.dir / "root.key", "root"))
        return self._root

    def root_public(self) -> bytes:
        return public_key_bytes(self.root())

    def hpke(self) -> HpkeKeys:
        if self._hpke is None:
            x_key = x25519.X25519PrivateKey.from_private_bytes(_read(self.dir / f"hpke-{SUITE_X25519}.key", "HPKE"))
            raw = _read(self.dir / f"hpke-{SUITE_HYBRID}.key", "HPKE")
            if len(raw) != 96:
                raise LedgerError("the ledger hybrid HPKE key file is damaged (expected 96 bytes)")
            m_key = mlkem.MLKEM768PrivateKey.from_seed_bytes(raw[:64])
            hx_key = x25519.X25519PrivateKey.from_private_bytes(raw[64:])
            hybrid = hpke.MLKEM768X25519PrivateKey(m_key, hx_key)
            self._hpke = HpkeKeys(
                private={SUITE_X25519: x_key, SUITE_HYBRID: hybrid},
                public={
                    SUITE_X25519: x_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw),
                    SUITE_HYBRID: hybrid_public_key_bytes(m_key, hx_key),
                },
            )
        return self._hpke

    # -- issuer keys --------------------------------------------------------------------------------------
    def _issuer_path(self, kid: str) -> Path:
        return self.dir / f"issuer-{kid}.key"

    def new_issuer_key(self, issuer: str, now_s: int, valid_days: int = ISSUER_VALID_DAYS) -> str:
        """Make a new current issuer key; the previous current key stops issuing (its window ends now)."""
        count = store.KeyRecord.select().where(store.KeyRecord.kind == "issuer").count()
        kid = f"k{count + 1}"
        while store.KeyRecord.get_or_none(store.KeyRecord.kid == kid) is not None:
            count += 1
            kid = f"k{count + 1}"
        private, record = generate_issuer_key(kid, issuer, now=now_s, valid_days=valid_days)
        write_private(self._issuer_path(kid), private_key_to_bytes(private))
        for old in store.KeyRecord.select().where((store.KeyRecord.kind == "issuer") & store.KeyRecord.current):
            old.current = False
            old.not_after = max(int(old.not_before), min(int(old.not_after), now_s))
            old.save()
        store.KeyRecord.create(kid=kid, kind="issuer", public_key=record.public_key, not_before=record.not_before,
                               not_after=record.not_after, created_ms=now_s * 1000, current=True)
        store.bump("trust")
        return kid

    def retire_issuer_key(self, kid: str, now_s: int) -> None:
        row = store.KeyRecord.get_or_none((store.KeyRecord.kid == kid) & (store.KeyRecord.kind == "issuer"))
        if row is None:
            raise LedgerError(f"there is no issuer key {kid!r} (see 'cardpos ledger keys list')")
        if row.current:
            raise LedgerError(f"issuer key {kid} is the current key; rotate to a new key before retiring it")
        if row.retired_ms is not None:
            raise LedgerError(f"issuer key {kid} is already retired")
        row.retired_ms = now_s * 1000
        row.save()
        store.bump("trust")

    def current_issuer(self, issuer: str) -> tuple[Ed25519PrivateKey, IssuerKey]:
        row = store.KeyRecord.get_or_none((store.KeyRecord.kind == "issuer") & store.KeyRecord.current)
        if row is None:
            raise LedgerError("the ledger has no current issuer key; run 'cardpos ledger keys rotate'")
        kid = str(row.kid)
        if kid not in self._issuers:
            self._issuers[kid] = private_key_from_bytes(_read(self._issuer_path(kid), "issuer"))
        return self._issuers[kid], issuer_key_of(row, issuer)


def issuer_key_of(row: store.KeyRecord, issuer: str) -> IssuerKey:
    retired = None if row.retired_ms is None else int(row.retired_ms) // 1000
    return IssuerKey(kid=str(row.kid), issuer=issuer, public_key=bytes(row.public_key),
                     not_before=int(row.not_before), not_after=int(row.not_after), retired_at=retired)


def issuer_keys(issuer: str) -> list[IssuerKey]:
    rows = store.KeyRecord.select().where(store.KeyRecord.kind == "issuer").order_by(store.KeyRecord.created_ms,
                                                                                      store.KeyRecord.kid)
    return [issuer_key_of(row, issuer) for row in rows]
