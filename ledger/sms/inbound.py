"""What the ledger does with the gateway's verified callbacks: receipts update campaign messages, a refusal
(STOP, 退订, R ...) withdraws SMS consent of every member with that phone on file, and other replies go to the
handlers other features register (the balance query).

Each callback id is handled once (``SmsCallbackSeen``): the gateway retries a callback whose answer it did not get.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from cardkit.errors import CardposError
from ledger import member_facts, store
from ledger.campaigns.model import MessageStatus
from ledger.campaigns.tables import CampaignMessage, SmsCallbackSeen
from ledger.sms.callbacks import DeliveryReceipt, DeliveryStatus, InboundMessage, read_callback
from ledger.sms.config import HttpSmsConfig

log = logging.getLogger("cardpos.ledger.sms")

InboundHandler = Callable[[InboundMessage, int], bool]
"""(reply, now_ms) → True when the handler took the reply (e.g. a balance query)."""
_handlers: list[InboundHandler] = []


def add_inbound_handler(handler: InboundHandler) -> None:
    if handler not in _handlers:
        _handlers.append(handler)


def _first_time(callback_id: str, now_ms: int) -> bool:
    """Record the callback id (inside the caller's transaction); False when it was handled before."""
    if SmsCallbackSeen.get_or_none(SmsCallbackSeen.callback_id == callback_id[:140]) is not None:
        return False
    SmsCallbackSeen.create(callback_id=callback_id[:140], at_ms=now_ms)
    return True


def handle(config: HttpSmsConfig, body: bytes, signature: str | None, now_ms: int) -> str:
    """Verify and act on one callback; returns what was done in a few words. Raises ``CallbackError`` (answer
    400) for a callback that is not signed right or not in the schema. The id is recorded in the same
    transaction as the action, so a failure leaves the callback to be handled when the gateway retries it."""
    callback = read_callback(config.callback_secret, body, signature, now=now_ms / 1000,
                             tolerance_s=config.callback_tolerance_s)
    with store.atomic_write():
        if isinstance(callback, DeliveryReceipt):
            if not _first_time(f"receipt:{callback.message_id}", now_ms):
                return "duplicate"
            return _receipt(callback)
        if not _first_time(f"inbound:{callback.message_id}", now_ms):
            return "duplicate"
        if callback.opt_out:
            members = member_facts.withdraw_sms_by_phone(callback.sender, at_ms=now_ms, source="sms_reply")
            log.info("SMS refusal", extra={"fields": {"members": len(members)}})
            return f"opted out {len(members)} member(s)"
    for handler in list(_handlers):  # after the commit: a handler may send an answer
        if handler(callback, now_ms):
            return "handled"
    return "ignored"


class ReceiptTooEarly(CardposError):
    """A receipt for a message whose sending is not committed yet (answer 503: the gateway tries again)."""

    title = "Receipt too early"


def _receipt(receipt: DeliveryReceipt) -> str:
    """Matched on our reference (known before the gateway's answer is committed; indexed), else on the gateway's
    id (for a gateway that does not echo references: a scan, so configure the reference field where you can)."""
    status = MessageStatus.DELIVERED if receipt.status is DeliveryStatus.DELIVERED else MessageStatus.FAILED
    M = CampaignMessage
    row = (M.get_or_none(M.reference == receipt.reference) if receipt.reference
           else M.get_or_none(M.provider_id == receipt.message_id))
    if row is None:
        return "receipt for no campaign message"
    if row.status == MessageStatus.PENDING.value:
        raise ReceiptTooEarly("the message of this receipt is still being sent; try again")
    if row.status != MessageStatus.SENT.value:
        return f"receipt for a message already {row.status}"
    M.update(status=status.value, last_error=receipt.error[:500]).where(M.id == row.id).execute()
    return f"receipt {status.value}"
