"""``cardpos card verify`` / ``card inspect`` against real files in a data dir."""

from __future__ import annotations

import io
import json
import os
import subprocess
from pathlib import Path

import pytest

from cardkit.cards.keys import public_key_bytes
from cardkit.cards.revocation import RevocationDelta, RevocationList, sign_revocation_delta
from cardkit.cards.textform import token_to_text
from cardpos.cli import main
from terminal.documents import Enrollment, save_document, write_enrollment
from tests.conftest import CARDPOS
from tests.fixtures.cards import NOW, CardWorld, key_from_seed

CARD = "0123456789abcdef"


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in [v for v in os.environ if v.startswith("CARDPOS_")]:
        monkeypatch.delenv(var)
    path = tmp_path / "config.toml"
    path.write_text("")
    return path


@pytest.fixture
def terminal_dir(data_dir: Path, card_world: CardWorld) -> Path:
    """An enrolled terminal's data dir with a trust list and a revocation list holding one revoked card."""
    write_enrollment(data_dir, Enrollment("t1", "store-1", "http://127.0.0.1:1", "00" * 32, "x25519",
                                          card_world.root_public.hex(), "acme"))
    save_document(data_dir, "trust_list.cose", card_world.signed_trust_list())
    revocations = RevocationList()
    revocations.apply(RevocationDelta(0, 1, revoked=(("dddddddddddddddd", "stolen"),), held=("eeeeeeeeeeeeeeee",)))
    save_document(data_dir, "revocations.bin", revocations.to_bytes())
    return data_dir


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def _verify(capsys: pytest.CaptureFixture[str], config: Path, data_dir: Path, text: str,
            *extra: str) -> tuple[int, str, str]:
    return _run(capsys, "card", "verify", text, "--config", str(config), "--data-dir", str(data_dir),
                "--now", str(NOW), *extra)


def test_accept(capsys, config, terminal_dir, card_world: CardWorld) -> None:
    code, out, err = _verify(capsys, config, terminal_dir, token_to_text(card_world.token()))
    assert code == 0
    assert out.startswith(f"accepted: card {CARD}, member M0001, tier gold")
    assert err == ""


def test_accept_json(capsys, config, terminal_dir, card_world: CardWorld) -> None:
    code, out, _ = _verify(capsys, config, terminal_dir, token_to_text(card_world.challenge_token()), "--json")
    result = json.loads(out)
    assert code == 0
    assert result["accepted"] is True and result["reason"] is None and result["kid"] == "k1"
    assert result["claims"]["card_id"] == CARD and result["claims"]["tier"] == "gold"
    assert result["needs_challenge"] is True and result["revocations_checked"] is True


@pytest.mark.parametrize(("changes", "reason"), [
    ({"expires_at": NOW - 3600}, "expired"),
    ({"card_id": "dddddddddddddddd"}, "revoked"),
    ({"card_id": "eeeeeeeeeeeeeeee"}, "on_hold"),
    ({"issuer": "other"}, "wrong_issuer"),
    ({"kid": "k7"}, "unknown_key"),
])
def test_rejects(capsys, config, terminal_dir, card_world: CardWorld, changes, reason: str) -> None:
    code, out, _ = _verify(capsys, config, terminal_dir, token_to_text(card_world.token(**changes)))
    assert code == 1
    assert out.startswith(f"rejected: {reason}: ")


def test_forged_card(capsys, config, terminal_dir, card_world: CardWorld) -> None:
    forged = token_to_text(card_world.token(key=key_from_seed(bytes([50]) * 32)))
    code, out, _ = _verify(capsys, config, terminal_dir, forged, "--json")
    assert code == 1 and json.loads(out)["reason"] == "bad_signature"
    assert json.loads(out)["words"] == "Forged card: the signature does not match"


@pytest.mark.parametrize("text", ["CP1:XX", "hello", "CP1:" + "0" * 30])
def test_malformed_text_is_a_reject_with_detail(capsys, config, terminal_dir, text: str) -> None:
    code, out, _ = _verify(capsys, config, terminal_dir, text)
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == "rejected: malformed: Card data is unreadable or not a cardpos card"
    assert len(lines) == 2 and lines[1].strip()


def test_explicit_files_without_enrollment(capsys, config, data_dir: Path, tmp_path: Path,
                                           card_world: CardWorld) -> None:
    trust = tmp_path / "trust.cose"
    trust.write_bytes(card_world.signed_trust_list())
    delta = tmp_path / "delta.cose"
    delta.write_bytes(sign_revocation_delta(RevocationDelta(0, 3, revoked=((CARD, "lost"),)), card_world.root_key))
    args = ("--trust", str(trust), "--root-key", card_world.root_public.hex())
    code, out, err = _verify(capsys, config, data_dir, token_to_text(card_world.token()), *args)
    assert code == 0 and "no revocation list" in err  # said once, on stderr, the verdict still on stdout
    code, out, _ = _verify(capsys, config, data_dir, token_to_text(card_world.token()), *args,
                           "--revocations", str(delta))
    assert code == 1 and out.startswith("rejected: revoked")


def test_missing_trust_store_is_one_line_exit_2(capsys, config, data_dir: Path, card_world: CardWorld) -> None:
    code, out, err = _verify(capsys, config, data_dir, token_to_text(card_world.token()))
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "no trust store" in err


def test_enrolled_without_trust_list_is_exit_2(capsys, config, terminal_dir: Path, card_world: CardWorld) -> None:
    (terminal_dir / "documents" / "trust_list.cose").unlink()
    code, _, err = _verify(capsys, config, terminal_dir, token_to_text(card_world.token()))
    assert code == 2 and "trust_list.cose is missing" in err


@pytest.mark.parametrize("root", ["zz", "00" * 31])
def test_bad_root_key_is_exit_2(capsys, config, terminal_dir: Path, card_world: CardWorld, root: str) -> None:
    code, _, err = _verify(capsys, config, terminal_dir, token_to_text(card_world.token()), "--root-key", root)
    assert code == 2 and "--root-key" in err


def test_trust_list_signed_by_another_root_is_exit_2(capsys, config, terminal_dir: Path,
                                                     card_world: CardWorld) -> None:
    other = public_key_bytes(key_from_seed(bytes([60]) * 32)).hex()
    code, _, err = _verify(capsys, config, terminal_dir, token_to_text(card_world.token()), "--root-key", other)
    assert code == 2 and "signature" in err and len(err.strip().splitlines()) == 1


def test_damaged_revocations_file_is_exit_2(capsys, config, terminal_dir: Path, card_world: CardWorld) -> None:
    (terminal_dir / "documents" / "revocations.bin").write_bytes(b"CPRL garbage")
    code, _, err = _verify(capsys, config, terminal_dir, token_to_text(card_world.token()))
    assert code == 2 and "damaged" in err


def test_token_from_stdin(capsys, config, terminal_dir, card_world: CardWorld, monkeypatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(token_to_text(card_world.token()) + "\n"))
    code, out, _ = _verify(capsys, config, terminal_dir, "-")
    assert code == 0 and out.startswith("accepted")


def test_inspect(capsys, card_world: CardWorld) -> None:
    code, out, _ = _run(capsys, "card", "inspect", token_to_text(card_world.challenge_token()))
    assert code == 0
    assert "NOT verified" in out and f"card id     {CARD}" in out and "challenge-response" in out
    code, out, _ = _run(capsys, "card", "inspect", token_to_text(card_world.token()), "--json")
    result = json.loads(out)
    assert result["verified"] is False and result["kid"] == "k1" and result["claims"]["member_id"] == "M0001"
    assert result["bytes"] == len(card_world.token())


def test_inspect_unreadable(capsys) -> None:
    code, out, err = _run(capsys, "card", "inspect", "CP1:ZZZZ")
    assert code == 1 and out == "" and "cannot read this card" in err


def test_real_process_exit_codes(config: Path, terminal_dir: Path, card_world: CardWorld) -> None:
    base = [*CARDPOS, "card", "verify", "--config", str(config), "--data-dir", str(terminal_dir),
            "--now", str(NOW)]
    good = subprocess.run([*base, token_to_text(card_world.token())], capture_output=True, text=True, timeout=60)
    assert good.returncode == 0, good.stderr
    expired = subprocess.run([*base, token_to_text(card_world.token(expires_at=NOW - 3600))],
                             capture_output=True, text=True, timeout=60)
    assert expired.returncode == 1 and expired.stdout.startswith("rejected: expired")
    usage = subprocess.run([*CARDPOS, "card", "verify"], capture_output=True, text=True, timeout=60)
    assert usage.returncode == 2 and len(usage.stderr.strip().splitlines()) == 1


def test_the_terminal_store_checks_against_the_enrolled_issuer(capsys, config, data_dir: Path,
                                                               card_world: CardWorld) -> None:
    write_enrollment(data_dir, Enrollment("t1", "store-1", "http://127.0.0.1:1", "00" * 32, "x25519",
                                          card_world.root_public.hex(), "globex"))
    save_document(data_dir, "trust_list.cose", card_world.signed_trust_list())
    code, out, _ = _verify(capsys, config, data_dir, token_to_text(card_world.token()))
    assert code == 1 and out.startswith("rejected: wrong_issuer")
