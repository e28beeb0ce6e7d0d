"""Member sign-up at the till: a new member's name, phone, optional birthday, consents and language, journaled.

The entry (``member_signup``) carries a **provisional** member id (``P`` + 10 hex digits) that the ledger confirms
at sync: it creates the member, or merges the sign-up onto the member who already has that phone
(``ledger.signup``). Name, phone and birthday are personal data, kept encrypted in the journal. The consent
answers travel with the id of the wording the member was shown (``CONSENT_WORDING``; the text is in the
terminal's catalogue under ``consent.*`` in each language), so the ledger knows what was agreed to.

Payload: ``member`` (provisional id), ``name``, ``phone``, ``birthday`` (``YYYY-MM-DD`` or null), ``language``
(``zh``/``en``), ``consent`` ``{"sms": bool, "mail": bool, "wording": id}``, ``store``, ``cur``.
The card is asked for afterwards like an upgrade's new card (``terminal.service.newcard``).
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from typing import Any

from cardkit.errors import DomainError
from cardkit.journal import EntryKind
from terminal.i18n import phrase
from terminal.service.desk import Desk
from terminal.service.receipt import Receipt
from terminal.service.receipt_lines import Line, label

CONSENT_WORDING = "consent_1"
"""The consent wording shown at the till now (catalogue key ``consent.consent_1``); a new text gets a new id."""
SIGNUP_LANGUAGES = ("zh", "en")
MAX_NAME = 80
_PHONE = re.compile(r"\+?[0-9][0-9 ()-]{3,23}")


@dataclass(frozen=True)
class SignupForm:
    """What the cashier typed in, checked by ``checked``."""

    name: str
    phone: str
    birthday: str | None = None
    language: str = "zh"
    sms: bool = False
    mail: bool = False


def _refuse(field: str, message: str) -> DomainError:
    return DomainError(message, code="bad_input", sentence=f"signup_{field}")


def checked(form: SignupForm, *, today: datetime.date) -> SignupForm:
    """The form with its values tidied; ``DomainError`` (one sentence, a catalogue key) for the first bad field."""
    name = " ".join(form.name.split())
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise _refuse("name", f"Enter the member's name (1 to {MAX_NAME} characters)")
    phone = form.phone.strip()
    digits = re.sub(r"\D", "", phone)
    if not _PHONE.fullmatch(phone) or not 5 <= len(digits) <= 15:
        raise _refuse("phone", "Enter the member's phone number (5 to 15 digits)")
    birthday = (form.birthday or "").strip() or None
    if birthday is not None:
        try:
            born = datetime.date.fromisoformat(birthday)
        except ValueError:
            born = None
        if born is None or len(birthday) != 10 or born > today or born.year < 1900:
            raise _refuse("birthday", "Enter the birthday as YYYY-MM-DD (a past date), or leave it empty")
    if form.language not in SIGNUP_LANGUAGES:
        raise _refuse("language", "The member's language is zh or en")
    return SignupForm(name=name, phone=phone, birthday=birthday, language=form.language, sms=form.sms,
                      mail=form.mail)


def signup_payload(form: SignupForm, *, provisional_id: str, store_id: str, currency: str) -> dict[str, Any]:
    return {"member": provisional_id, "name": form.name, "phone": form.phone, "birthday": form.birthday,
            "language": form.language,
            "consent": {"sms": form.sms, "mail": form.mail, "wording": CONSENT_WORDING},
            "store": store_id, "cur": currency}


def signup_lines(payload: dict[str, Any]) -> list[Line]:
    consent = payload.get("consent") or {}
    yes_no = {True: phrase("receipt.value.yes"), False: phrase("receipt.value.no")}
    lines: list[Line] = [
        (label("member_id"), phrase("receipt.value.provisional", member=str(payload["member"]))),
        (label("member_name"), str(payload.get("name", ""))),
        (label("phone"), str(payload.get("phone", ""))),
    ]
    if payload.get("birthday"):
        lines.append((label("birthday"), str(payload["birthday"])))
    lines += [(label("language"), phrase(f"receipt.value.language_{payload.get('language', 'zh')}")),
              (label("consent_sms"), yes_no[bool(consent.get("sms"))]),
              (label("consent_mail"), yes_no[bool(consent.get("mail"))])]
    return lines


def signup(desk: Desk, form: SignupForm, *, store_id: str, cashier_id: str | None = None) -> Receipt:
    """Journal a sign-up under a new provisional member id."""
    form = checked(form, today=datetime.datetime.fromtimestamp(desk.clock(), datetime.UTC).date())
    provisional = "P" + desk.randbytes(5).hex()
    payload = signup_payload(form, provisional_id=provisional, store_id=store_id, currency=desk.rules.currency)
    with desk.operation_lock.hold():
        entry = desk.store.journal.append(EntryKind.MEMBER_SIGNUP, payload, cashier_id)
    return Receipt(entry=entry, lines=tuple(signup_lines(entry.payload)), after=None, offline=desk.offline)
