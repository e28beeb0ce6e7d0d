"""Console admin credentials: scrypt password hashes, RFC 6238 TOTP (the RFC's own test vectors), role table."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.console import passwords, totp
from ledger.console.roles import BY_NAME, ROUTES, Role, allowed
from ledger.errors import LedgerError

# RFC 6238 Appendix B: the seeds are ASCII "12345678901234567890" repeated to the hash's block of key material.
SEED_SHA1 = b"12345678901234567890"
SEED_SHA256 = b"12345678901234567890123456789012"
SEED_SHA512 = b"1234567890123456789012345678901234567890123456789012345678901234"
RFC6238 = [  # time, sha1, sha256, sha512 (8 digits)
    (59, "94287082", "46119246", "90693936"),
    (1111111109, "07081804", "68084774", "25091201"),
    (1111111111, "14050471", "67062674", "99943326"),
    (1234567890, "89005924", "91819424", "93441116"),
    (2000000000, "69279037", "90698825", "38618901"),
    (20000000000, "65353130", "77737706", "47863826"),
]


@pytest.mark.parametrize(("unix_s", "sha1", "sha256", "sha512"), RFC6238)
def test_totp_matches_rfc6238_vectors(unix_s: int, sha1: str, sha256: str, sha512: str) -> None:
    assert totp.totp(SEED_SHA1, unix_s, digits=8) == sha1
    assert totp.totp(SEED_SHA256, unix_s, digits=8, algorithm="sha256") == sha256
    assert totp.totp(SEED_SHA512, unix_s, digits=8, algorithm="sha512") == sha512


def test_hotp_matches_rfc4226_vectors() -> None:
    expected = ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"]
    assert [totp.hotp(SEED_SHA1, i) for i in range(10)] == expected


def test_totp_verify_accepts_one_step_of_drift_and_refuses_replay() -> None:
    secret = bytes(range(20))
    now = 1_800_000_000
    code = totp.totp(secret, now)
    step = totp.verify(secret, code, now)
    assert step == now // 30
    assert totp.verify(secret, code, now + 30) == step  # the next step still takes it (clock drift)
    assert totp.verify(secret, code, now + 90) is None  # too old
    assert totp.verify(secret, code, now, after_step=step) is None  # used once already
    assert totp.verify(secret, "12345", now) is None
    assert totp.verify(secret, "abcdef", now) is None


def test_totp_secret_text_round_trips_and_uri_names_issuer() -> None:
    secret = bytes(range(20))
    assert totp.secret_from_text(totp.secret_to_text(secret).lower()) == secret
    uri = totp.provisioning_uri(secret, "ana", "cardpos console")
    assert uri.startswith("otpauth://totp/cardpos%20console:ana?secret=")
    assert "period=30" in uri and "digits=6" in uri


def test_password_hash_is_scrypt_with_stated_parameters() -> None:
    stored = passwords.hash_password("correct horse battery", b"0123456789abcdef")
    assert stored.startswith("scrypt$15$8$1$")
    assert passwords.DEFAULT_PARAMS.memory_bytes == 32 * 1024 * 1024
    assert passwords.verify_password("correct horse battery", stored)
    assert not passwords.verify_password("correct horse batterY", stored)
    assert not passwords.needs_rehash(stored)
    assert passwords.needs_rehash(stored, passwords.ScryptParams(log2_n=16))


def test_salts_make_different_hashes() -> None:
    a = passwords.hash_password("same password here", b"salt-one-16bytes")
    b = passwords.hash_password("same password here", b"salt-two-16bytes")
    assert a != b


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_damaged_stored_forms_never_match(stored: str) -> None:
    assert passwords.verify_password("anything at all", stored) is False


def test_password_rules() -> None:
    passwords.check_password_rules("long enough!")
    for bad in ("short", " leading space", "x" * 1025):
        with pytest.raises(LedgerError):
            passwords.check_password_rules(bad)


def test_route_table_is_consistent() -> None:
    assert len(BY_NAME) == len(ROUTES), "route names are unique"
    assert len({(r.method, r.path) for r in ROUTES}) == len(ROUTES), "one row per method and path"
    for route in ROUTES:
        if route.changes_state and not route.public and route.name not in ("signout", "account_password"):
            assert Role.AUDITOR not in route.roles, f"the auditor is read-only, yet may {route.name}"
    assert allowed(None, "signin") and not allowed(None, "dashboard")
    assert allowed(Role.OWNER, "admin_add") and not allowed(Role.SUPPORT, "admin_add")
    assert not allowed(Role.MARKETING, "member_edit") and allowed(Role.MARKETING, "member")
    assert Role.parse("Merchant-Manager") is Role.MERCHANT_MANAGER
    with pytest.raises(LedgerError):
        Role.parse("root")
