"""JSON-lines logging into the data dir.

Only event names, ids that are not secrets (terminal id, sequence numbers, card ids are opaque) and counts
are logged: never a token, a key, a PIN or member PII. ``redact`` drops fields whose names say they are secret.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

_SECRET_WORDS = ("token", "key", "pin", "secret", "password", "name", "phone", "email", "notes", "code")


def redact(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: ("[redacted]" if any(w in k.lower() for w in _SECRET_WORDS) else v) for k, v in fields.items()}


class JsonLineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            data.update(redact(extra))
        if record.exc_info and record.exc_info[0] is not None:
            data["error"] = record.exc_info[0].__name__
        return json.dumps(data, ensure_ascii=False, default=str)


def setup_logging(log_path: Path, level: int = logging.INFO) -> None:
    """Send cardpos loggers to ``log_path`` as JSON lines (idempotent)."""
    root = logging.getLogger("cardpos")
    for handler in root.handlers:
        if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename) == log_path.resolve():
            return
    log_path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_path, encoding="utf-8")
    handler.setFormatter(JsonLineFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False


def log_event(logger: logging.Logger, event: str, **fields: Any) -> None:
    logger.info(event, extra={"fields": fields})
