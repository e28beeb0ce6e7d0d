"""Delivering members' sign-in codes (``member_access``) off the request path: by SMS through the campaigns'
gateway, by mail through the campaigns' SMTP relay (``campaigns.toml`` ``[mail]``, TLS as configured there).

Why a courier thread: the page must answer a member and a stranger alike, in what it says and in how long it
takes. Sending a code takes a gateway's or a mail relay's round trip, which only a member's request would pay;
so the request only hands the code over (a queue put, the same few microseconds whether or not there is
anything to send) and this thread sends it. A code is a secret valid for 10 minutes: it lives in this queue
only (never in the database), and a console restart loses the codes not yet sent (the member asks again).
The queue is bounded: past ``MAX_WAITING`` codes waiting, more are dropped and logged (the limits in
``member_access`` keep any one phone, email or client far below that).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from ledger.delivery import EmailConfig, send_mail
from ledger.errors import LedgerError
from ledger.sms.provider import SmsProvider

log = logging.getLogger("cardpos.ledger.console.members")

MAX_WAITING = 1_000

SMS_TEXT = "cardpos: {code} 是您的登录验证码，10 分钟内有效 / is your sign-in code, valid 10 minutes."
MAIL_SUBJECT = "cardpos 登录验证码 / sign-in code"
MAIL_TEXT = ("您的登录验证码是 {code}，10 分钟内有效。如果不是您本人操作，请忽略此邮件。\n\n"
             "Your cardpos sign-in code is {code}. It works for 10 minutes. If you did not ask for it, ignore "
             "this mail.\n")


@dataclass(frozen=True, slots=True)
class CodeDelivery:
    channel: str  # sms, mail
    to: str  # the phone or the email on file
    code: str
    reference: str  # for the gateway (de-duplication), and the mail's Message-ID


def code_mail(sender: str, delivery: CodeDelivery, now_s: float) -> EmailMessage:
    """The sign-in code as a mail, in both languages (the member is not known to the page yet)."""
    message = EmailMessage()
    message["Subject"] = MAIL_SUBJECT
    message["From"] = sender
    message["To"] = delivery.to
    message["Date"] = formatdate(now_s, usegmt=True)
    message["Message-ID"] = make_msgid(idstring=delivery.reference[:32], domain="signin.cardpos")
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to a code
    message.set_content(MAIL_TEXT.format(code=delivery.code))
    return message


class CodeCourier:
    """One daemon thread sending the codes handed to ``hand_over``."""

    def __init__(self, sms: SmsProvider | None, mail: EmailConfig | None) -> None:
        self.sms, self.mail = sms, mail
        self._waiting: queue.Queue[CodeDelivery | None] = queue.Queue(maxsize=MAX_WAITING)
        self._thread = threading.Thread(target=self._run, name="member-codes", daemon=True)
        self._thread.start()

    def can_send(self, channel: str) -> bool:
        return (self.sms if channel == "sms" else self.mail) is not None

    def hand_over(self, delivery: CodeDelivery | None) -> None:
        """Queue a code to send; ``None`` (nothing to send) costs the caller the same as a code."""
        if delivery is None:
            return
        try:
            self._waiting.put_nowait(delivery)
        except queue.Full:
            log.warning("member sign-in code dropped: too many waiting", extra={"fields": {"waiting": MAX_WAITING}})

    @property
    def pending(self) -> int:
        """Codes handed over and not yet sent or given up."""
        return self._waiting.unfinished_tasks

    def wait_idle(self) -> None:
        """Until every code handed over is sent or given up (tests, shutdown)."""
        self._waiting.join()

    def stop(self) -> None:
        self._waiting.put(None)
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            delivery = self._waiting.get()
            try:
                if delivery is None:
                    return
                self._send(delivery)
            except Exception as exc:  # the thread outlives any one delivery: logged, never raised
                log.warning("member sign-in code not sent", extra={"fields": {"channel": getattr(
                    delivery, "channel", ""), "error": str(exc)[:200]}})
            finally:
                self._waiting.task_done()

    def _send(self, delivery: CodeDelivery) -> None:
        if delivery.channel == "sms":
            if self.sms is None:
                return
            result = self.sms.send(delivery.to, SMS_TEXT.format(code=delivery.code), delivery.reference)
            if not result.ok:
                log.warning("member sign-in code not sent", extra={"fields": {"channel": "sms",
                                                                              "reason": result.reason}})
            return
        if self.mail is None:
            return
        try:
            send_mail(self.mail, code_mail(self.mail.sender, delivery, time.time()))
        except LedgerError as exc:
            log.warning("member sign-in code not sent", extra={"fields": {"channel": "mail", "error": exc.message}})
