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
from typing import Any

from cardkit.journal import EntryKind
from terminal.i18n import phrase
from terminal.service.desk import Desk
from terminal.service.receipt import Receipt
from terminal.service.receipt_lines import Line, label
from terminal.service.signup_form import CONSENT_WORDING, SIGNUP_LANGUAGES, SignupForm, checked

__all__ = ["CONSENT_WORDING", "SIGNUP_LANGUAGES", "SignupForm", "checked", "signup", "signup_lines",
           "signup_payload"]

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
