"""The simulator's wallet: the cards a technician can tap, kept in a JSON file.

Format (UTF-8 JSON)::

    {"version": 1,
     "cards": [
       {"label": "Ann (gold)", "kind": "valid", "token_text": "CP1:...", "card_private_key_hex": null},
       {"label": "Key card", "kind": "challenge", "token_text": "CP1:...", "card_private_key_hex": "<64 hex>"},
       {"label": "Junk", "kind": "malformed", "token_text": "hex:00ff17"}
     ]}

``token_text`` is the card's text form (``CP1:`` + base45, ``cardkit.cards.textform``); ``hex:...`` gives raw
bytes; any other text is sent as its UTF-8 bytes (a malformed card). ``kind`` says what the card is meant to
test; only ``challenge`` and ``cloned`` change how the simulated reader behaves (see ``challenge_capable``).
The file holds card private keys, so ``save`` writes it 0600.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cardkit.errors import WalletError
from cardkit.locations import write_private

KINDS = ("valid", "expired", "revoked", "held", "forged", "cloned", "malformed", "challenge", "blank")
"""``blank``: a card with no token yet (``token_text`` empty) that the reader can write one to (WRITE_CARD)."""
WALLET_VERSION = 1


@dataclass(frozen=True, slots=True)
class WalletCard:
    label: str
    kind: str
    token_text: str
    card_private_key_hex: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise WalletError(f"card kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.card_private_key_hex is not None:
            try:
                ok = len(bytes.fromhex(self.card_private_key_hex)) == 32
            except ValueError:
                ok = False
            if not ok:
                raise WalletError(f"card {self.label!r}: card_private_key_hex must be 64 hex characters")

    @property
    def blank(self) -> bool:
        return self.kind == "blank"

    @property
    def challenge_capable(self) -> bool:
        """The reader flags the card as able to answer challenges (its token carries a card key)."""
        return not self.blank and (self.kind in ("challenge", "cloned") or self.card_private_key_hex is not None)

    def token_bytes(self) -> bytes:
        """The bytes the reader sends for this card (none for a blank card)."""
        if self.blank:
            return b""
        text = self.token_text.strip()
        if text.startswith("hex:"):
            try:
                return bytes.fromhex(text[4:])
            except ValueError:
                return text.encode("utf-8")
        from cardkit.cards.textform import token_from_text
        from cardkit.cards.token import TokenFormatError

        try:
            return token_from_text(text)
        except TokenFormatError:
            return text.encode("utf-8")  # a malformed card: send what is printed on it


@dataclass
class Wallet:
    cards: list[WalletCard] = field(default_factory=list)

    def add(self, card: WalletCard) -> int:
        """Append a card; returns its 1-based number (what ``tap N`` takes)."""
        self.cards.append(card)
        return len(self.cards)

    def card(self, number: int) -> WalletCard:
        if not 1 <= number <= len(self.cards):
            raise WalletError(f"there is no card {number}; the wallet has {len(self.cards)} cards")
        return self.cards[number - 1]

    def to_json(self) -> dict[str, Any]:
        return {"version": WALLET_VERSION, "cards": [asdict(card) for card in self.cards]}

    def save(self, path: Path) -> None:
        write_private(path, (json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n").encode("utf-8"))

    @classmethod
    def load(cls, path: Path) -> Wallet:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise WalletError(f"wallet file {path} does not exist", orig=exc) from exc
        except OSError as exc:
            raise WalletError(f"cannot read wallet file {path}: {exc.strerror}", orig=exc) from exc
        except ValueError as exc:
            raise WalletError(f"wallet file {path} is not valid JSON: {exc}", orig=exc) from exc
        if not isinstance(data, dict) or data.get("version") != WALLET_VERSION or not isinstance(
                data.get("cards"), list):
            raise WalletError(f"wallet file {path} is not a version {WALLET_VERSION} cardpos wallet")
        wallet = cls()
        for i, row in enumerate(data["cards"], start=1):
            try:
                wallet.add(WalletCard(label=str(row["label"]), kind=str(row["kind"]),
                                      token_text=str(row["token_text"]),
                                      card_private_key_hex=row.get("card_private_key_hex")))
            except (KeyError, TypeError) as exc:
                raise WalletError(f"wallet file {path}: card {i} lacks label, kind or token_text",
                                     orig=exc) from exc
        return wallet
