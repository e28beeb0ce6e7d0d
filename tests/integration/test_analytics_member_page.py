"""The members' own page and the SMS balance query over real processes (a ledger, its console, the SMS gateway
simulator, a real SMTP server with STARTTLS, a terminal): codes by SMS and by mail, no enumeration, five wrong
codes lock, every view audited, BAL answered only to the phone on file."""

from __future__ import annotations

import time
from collections.abc import Callable

from tests.fixtures.member_page import (
    MEMBER_EMAIL,
    MEMBER_ID,
    MEMBER_SENDER,
    STRANGER_SENDER,
    MemberClient,
    MemberPageWorld,
)


def _answers(world: MemberPageWorld, to: str) -> list[str]:
    return [m["text"] for m in world.gateway.messages() if m["to"] == to and "Balance" in m["text"]]


def _wait(predicate: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_a_code_by_sms_signs_the_member_in_and_the_view_is_audited(member_page_world: MemberPageWorld) -> None:
    world = member_page_world
    phone = MemberClient(world.url)
    assert phone.get().status_code == 200
    before = len(world.codes_sent())
    asked = phone.post("/me/code", who="139-1234-5678")
    assert asked.status_code == 200 and 'id="code-sent"' in asked.text
    code = world.wait_for_code(before)
    page = phone.post("/me/signin", code=code)
    assert page.status_code == 200, page.text[:500]
    assert 'id="balance"' in page.text and "200.00" in page.text and "Han Meimei" in page.text
    audit = world.ledger.admin_json("audit", "--limit", "20")["rows"]
    assert any(r["action"] == "member_view" and r["subject"] == MEMBER_ID and r["details"]["via"] == "member_page"
               for r in audit)
    assert any(r["action"] == "member_signin" and r["subject"] == MEMBER_ID for r in audit)


def test_a_stranger_gets_the_same_answer_and_no_code(member_page_world: MemberPageWorld) -> None:
    world = member_page_world
    member, stranger = MemberClient(world.url), MemberClient(world.url)
    member.get()
    stranger.get()
    sent_before = len(world.gateway.messages())
    a = member.post("/me/code", who=MEMBER_SENDER)
    b = stranger.post("/me/code", who=STRANGER_SENDER)
    assert a.status_code == b.status_code == 200
    strip = [t.replace('value="' + t.split('name="csrf" value="')[1].split('"')[0] + '"', "") for t in (a.text, b.text)]
    assert strip[0] == strip[1]  # the same page, whoever asked
    assert _wait(lambda: len(world.gateway.messages()) == sent_before + 1)
    assert not [m for m in world.gateway.messages() if m["to"] == STRANGER_SENDER]


def _same_page(a: str, b: str) -> bool:
    """The two answers are the same page but for their CSRF tokens."""
    strip = [t.replace('value="' + t.split('name="csrf" value="')[1].split('"')[0] + '"', "") for t in (a, b)]
    return strip[0] == strip[1]


def test_a_code_by_mail_over_tls_signs_the_member_in_and_a_stranger_gets_the_same_page_and_no_mail(
        member_page_world: MemberPageWorld) -> None:
    world = member_page_world
    member, stranger = MemberClient(world.url), MemberClient(world.url)
    member.get()
    stranger.get()
    mails_before, sms_before = len(world.mails_to()), len(world.gateway.messages())
    a = member.post("/me/code", who=" Han@Example.COM ")  # as typed on a phone: the address on file gets it
    b = stranger.post("/me/code", who="nobody@example.com")
    assert a.status_code == b.status_code == 200 and _same_page(a.text, b.text)
    code = world.wait_for_mailed_code(mails_before)
    mail = world.mails_to()[-1]
    assert mail["From"] == "club@cardpos.test" and mail["Auto-Submitted"] == "auto-generated"
    assert "sign-in code" in mail["Subject"] and "10 minutes" in mail.get_content()
    page = member.post("/me/signin", code=code)
    assert page.status_code == 200 and 'id="balance"' in page.text and "Han Meimei" in page.text
    time.sleep(0.5)
    with world.smtp.lock:  # the relay requires STARTTLS before any mail: what it took came over TLS
        assert [to for _, tos in world.smtp.envelopes for to in tos if to != MEMBER_EMAIL] == []
    assert len(world.gateway.messages()) == sms_before  # an email's code goes by mail only
    audit = world.ledger.admin_json("audit", "--limit", "20")["rows"]
    assert any(r["action"] == "member_code_sent" and r["subject"] == MEMBER_ID and r["details"]["via"] == "mail"
               for r in audit)


def test_five_wrong_codes_lock_a_sign_in_by_mail(member_page_world: MemberPageWorld) -> None:
    world = member_page_world
    browser = MemberClient(world.url)
    browser.get()
    before = len(world.mails_to())
    browser.post("/me/code", who=MEMBER_EMAIL)
    code = world.wait_for_mailed_code(before)
    wrong = f"{(int(code) + 3) % 10**6:06d}"
    for attempt in range(4):
        assert browser.post("/me/signin", code=wrong).status_code == 400, attempt
    answer = browser.post("/me/signin", code=wrong)
    assert answer.status_code == 429 and "locked for 15 minutes" in answer.text
    assert browser.post("/me/signin", code=code).status_code == 429
    again = MemberClient(world.url)
    again.get()
    count = len(world.mails_to())
    assert again.post("/me/code", who=MEMBER_EMAIL).status_code == 200
    time.sleep(1.0)
    assert len(world.mails_to()) == count  # locked: no mail, and the same answer


def test_five_wrong_codes_lock_the_sign_in(member_page_world: MemberPageWorld) -> None:
    world = member_page_world
    phone = MemberClient(world.url)
    phone.get()
    before = len(world.codes_sent())
    phone.post("/me/code", who=MEMBER_SENDER)
    code = world.wait_for_code(before)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for attempt in range(4):
        answer = phone.post("/me/signin", code=wrong)
        assert answer.status_code == 400 and "That code is not right" in answer.text, attempt
    answer = phone.post("/me/signin", code=wrong)
    assert answer.status_code == 429 and "locked for 15 minutes" in answer.text
    answer = phone.post("/me/signin", code=code)  # the right code no longer works
    assert answer.status_code == 429
    # a new code is not even sent while the phone is locked (the answer looks the same)
    again = MemberClient(world.url)
    again.get()
    count = len(world.codes_sent())
    assert again.post("/me/code", who="13912345678").status_code == 200
    time.sleep(1.0)
    assert len(world.codes_sent()) == count
    audit = world.ledger.admin_json("audit", "--limit", "30")["rows"]
    assert any(r["action"] == "member_signin_locked" for r in audit)


def test_bal_from_the_phone_on_file_is_answered_and_from_another_phone_not(
        member_page_world: MemberPageWorld) -> None:
    world = member_page_world
    world.gateway.inject(MEMBER_SENDER, "bal")
    assert _wait(lambda: len(_answers(world, MEMBER_SENDER)) == 1), world.gateway.messages()
    answer = _answers(world, MEMBER_SENDER)[0]
    assert "余额" in answer and "积分 50" in answer
    world.gateway.inject(STRANGER_SENDER, "余额")
    assert _wait(lambda: all(i["callback"] == "sent" for i in world.gateway.inbound()))
    time.sleep(0.5)
    assert _answers(world, STRANGER_SENDER) == []
    assert len(_answers(world, MEMBER_SENDER)) == 1
    audit = world.ledger.admin_json("audit", "--limit", "30")["rows"]
    assert any(r["action"] == "member_view" and r["subject"] == MEMBER_ID and r["details"]["via"] == "sms"
               for r in audit)


def test_the_sms_callback_refuses_what_is_not_signed_and_answers_a_retried_bal_once(
        member_page_world: MemberPageWorld) -> None:
    import json

    import requests

    from ledger.sms.callbacks import SIGNATURE_HEADER, sign
    from tests.fixtures.smsgateway import SMS_SECRET

    world = member_page_world
    url = world.url + "/sms/callback"
    body = json.dumps({"type": "inbound", "id": "in-retried-1", "from": MEMBER_SENDER, "text": "余额",
                       "at": int(time.time())}).encode()
    unsigned = requests.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=10)
    assert unsigned.status_code == 400 and "signature" in unsigned.text
    forged = requests.post(url, data=body, timeout=10,
                           headers={SIGNATURE_HEADER: sign("not-the-secret", body, int(time.time()))})
    assert forged.status_code == 400
    huge = requests.post(url, data=b"{" + b" " * 70_000 + b"}", timeout=10,
                         headers={SIGNATURE_HEADER: sign(SMS_SECRET, b"{}", int(time.time()))})
    assert huge.status_code == 413
    before = len(_answers(world, MEMBER_SENDER))
    for _ in range(2):  # the gateway retries a callback whose answer it lost: one answer only
        signed = requests.post(url, data=body, timeout=10,
                               headers={SIGNATURE_HEADER: sign(SMS_SECRET, body, int(time.time()))})
        assert signed.status_code == 200
    assert _wait(lambda: len(_answers(world, MEMBER_SENDER)) == before + 1)
    time.sleep(0.5)
    assert len(_answers(world, MEMBER_SENDER)) == before + 1
