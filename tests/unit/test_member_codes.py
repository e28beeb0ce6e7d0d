"""Sign-in codes leave off the request path (``ledger.console.member_codes``): handing a code over never waits for
the relay, even one that hangs; a code by mail reaches a real SMTP server over STARTTLS in both languages."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from ledger.console.member_codes import CodeCourier, CodeDelivery
from ledger.delivery import EmailConfig
from tests.fixtures.alerts import SmtpServer


@pytest.fixture
def hanging_relay() -> Iterator[int]:
    """A TCP listener that accepts connections and never says a word (an SMTP relay stuck before its greeting)."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.listen(8)
    try:
        yield int(listener.getsockname()[1])
    finally:
        listener.close()


def test_handing_a_code_over_does_not_wait_for_a_relay_that_hangs(hanging_relay: int) -> None:
    courier = CodeCourier(None, EmailConfig(host="127.0.0.1", port=hanging_relay, timeout_s=2))
    try:
        courier.hand_over(CodeDelivery("mail", "han@example.com", "123456", "code-a"))
        courier.hand_over(None)  # a stranger: nothing to send, the same call
        # Both calls returned while the relay still hangs (it answers nothing for the 2 s timeout): the code is
        # still waiting to be sent, so handing over did not wait for it.
        assert courier.pending == 1
        started = time.perf_counter()
        courier.wait_idle()  # the courier itself waited for the relay's timeout, and gave up with a log line
        assert time.perf_counter() - started > 1.0
    finally:
        courier.stop()


def test_a_code_by_mail_reaches_the_relay_over_starttls(smtp_tls_server: SmtpServer) -> None:
    cfg = EmailConfig(host=smtp_tls_server.host, port=smtp_tls_server.port, sender="club@cardpos.test",
                      starttls=True, cafile=smtp_tls_server.cafile or "")
    courier = CodeCourier(None, cfg)
    try:
        assert courier.can_send("mail") and not courier.can_send("sms")
        courier.hand_over(CodeDelivery("mail", "han@example.com", "042517", "code-b"))
        courier.wait_idle()
    finally:
        courier.stop()
    (mail,) = smtp_tls_server.wait_for(1)
    assert mail["To"] == "han@example.com" and mail["From"] == "club@cardpos.test"
    body = mail.get_content()
    assert "042517" in body and "验证码" in body and "sign-in code" in body
    assert mail["Auto-Submitted"] == "auto-generated" and "signin.cardpos" in mail["Message-ID"]
