"""Online authorization at the counter: which path an operation took, and asking the ledger for it.

An operation that takes stored value, points or a coupon asks the ledger first (``Authorizer``, implemented by
``terminal.sync.authorize.OnlineAuthorizer``) with the uuid its journal entry will carry. Three outcomes:
- approved: the entry is journaled with ``"auth": <the ledger's auth id>`` and is not subject to offline limits;
- declined: nothing is journaled; the cashier sees the ledger's reason (``DomainError`` ``ledger_declined``);
- no answer in time: the operation is decided offline under the offline limits, exactly as without a ledger,
  and journaled with ``"auth": "offline"``.
A refund or void (a credit) can use the same path with negative amounts (``ask(..., sv=-amount)``): the ledger
records it as a negative hold, always approved for a known member, counted only once its entry is applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from cardkit.authorization import AUTH_FIELD, DECLINE_REASONS, OFFLINE_PATH, AuthorizationAnswer, AuthorizationRequest
from cardkit.errors import CardposError, DomainError

__all__ = ["AUTH_FIELD", "OFFLINE_PATH", "AuthorizationPath", "Authorizer", "ask"]


class Authorizer(Protocol):
    def request(self, *, entry_uuid: str, member_id: str, card_id: str, currency: str, sv: int, points: int,
                coupons: tuple[str, ...]) -> AuthorizationRequest: ...

    def authorize(self, request: AuthorizationRequest) -> AuthorizationAnswer: ...


@dataclass(frozen=True, slots=True)
class AuthorizationPath:
    """What the ledger said: ``auth_id`` when it approved online, None when the operation went offline."""

    auth_id: str | None

    @property
    def online(self) -> bool:
        return self.auth_id is not None

    @property
    def payload_value(self) -> str:
        return self.auth_id if self.auth_id is not None else OFFLINE_PATH


def ask(authorizer: Authorizer, *, entry_uuid: str, member_id: str, card_id: str, currency: str, sv: int,
        points: int, coupons: tuple[str, ...]) -> AuthorizationPath:
    """Ask the ledger; an approval or no answer in time is a path, a decline raises ``DomainError``."""
    request = authorizer.request(entry_uuid=entry_uuid, member_id=member_id, card_id=card_id, currency=currency,
                                 sv=sv, points=points, coupons=coupons)
    try:
        answer = authorizer.authorize(request)
    except CardposError:
        return AuthorizationPath(None)  # no believable answer in time: offline limits decide
    if answer.approved:
        return AuthorizationPath(answer.auth_id)
    reason = answer.reason if answer.reason in DECLINE_REASONS else "other"
    raise DomainError(f"The ledger declined: {DECLINE_REASONS.get(reason, answer.reason)}", code="ledger_declined",
                      sentence="ledger_declined", params={"reason": reason})
