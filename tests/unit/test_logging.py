"""Commands log JSON lines into the data dir, with the command's name but never its arguments."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from cardkit.jsonlog import redact
from tests.conftest import CARDPOS

SECRET_LOOKING_TOKEN = "CP1:THIS-TOKEN-TEXT-MUST-NOT-REACH-THE-LOG"


def test_command_is_logged_without_its_arguments(data_dir: Path, clean_env: dict[str, str]) -> None:
    proc = subprocess.run([*CARDPOS, "card", "verify", SECRET_LOOKING_TOKEN], env=clean_env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode != 0  # not enrolled: no trust store, one clear line
    log_text = (data_dir / "logs" / "cardpos.jsonl").read_text(encoding="utf-8")
    records = [json.loads(line) for line in log_text.splitlines()]
    assert {"event": "command", "command": "card verify"}.items() <= records[0].items()
    assert records[-1]["event"] in {"command failed", "command finished"}
    assert records[-1].get("exit", 1) == proc.returncode
    assert "THIS-TOKEN-TEXT" not in log_text


def test_redact_drops_secret_fields() -> None:
    assert redact({"card_token": "x", "pin": "1234", "member_name": "Li", "seq": 4}) == {
        "card_token": "[redacted]", "pin": "[redacted]", "member_name": "[redacted]", "seq": 4}
