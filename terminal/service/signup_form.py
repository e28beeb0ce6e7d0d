"""What a sign-up at the till asks for, and its checks (no journal, no database: the app's screen imports it).

``CONSENT_WORDING`` names the consent text shown now (catalogue key ``consent.consent_1`` in each language); a
new text gets a new id, and the id is journaled with the member's answers (``terminal.service.signup``).
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

from cardkit.errors import DomainError

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


def checked(form: SignupForm, *, today: datetime.date) -> SignupForm:
    """The form with its values tidied; ``DomainError`` (one sentence, a catalogue key) for the first bad field."""
    name = " ".join(form.name.split())
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise DomainError(f"Enter the member's name (1 to {MAX_NAME} characters)", code="bad_input",
                          sentence="signup_name")
    phone = form.phone.strip()
    digits = re.sub(r"\D", "", phone)
    if not _PHONE.fullmatch(phone) or not 5 <= len(digits) <= 15:
        raise DomainError("Enter the member's phone number (5 to 15 digits)", code="bad_input", sentence="signup_phone")
    birthday = (form.birthday or "").strip() or None
    if birthday is not None:
        try:
            born = datetime.date.fromisoformat(birthday)
        except ValueError:
            born = None
        if born is None or len(birthday) != 10 or born > today or born.year < 1900:
            raise DomainError("Enter the birthday as YYYY-MM-DD (a past date), or leave it empty", code="bad_input",
                              sentence="signup_birthday")
    if form.language not in SIGNUP_LANGUAGES:
        raise DomainError("The member's language is zh or en", code="bad_input", sentence="signup_language")
    return SignupForm(name=name, phone=phone, birthday=birthday, language=form.language, sms=form.sms,
                      mail=form.mail)
