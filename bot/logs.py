"""Logging for operators: JSON lines when not on a terminal, readable text when on one.

Secrets (tokens, passwords) are masked in every record, whatever logger emitted it:
httpx, for one, logs request URLs, and a Telegram URL carries the bot token.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


_LEARNT: set[str] = set()


def register_secret(value: str) -> None:
    """Mask a secret learnt at run time (a Matrix login's access token) from now on."""
    if value and len(value) >= 6:
        _LEARNT.add(value)


class RedactSecrets(logging.Filter):
    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s and len(s) >= 6]

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = [*self.secrets, *_LEARNT]
        if not secrets:
            return True

        def clean(text: str) -> str:
            for secret in secrets:
                text = text.replace(secret, "***")
            return text

        message = record.getMessage()
        cleaned = clean(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text, record.exc_info = clean(text), None
        # The JSON lines carry `extra=` fields and stack traces as they are: clean them too.
        for key, value in list(record.__dict__.items()):
            if key in _STANDARD and key not in ("stack_info", "exc_text"):
                continue
            if isinstance(value, str) and any(secret in value for secret in secrets):
                setattr(record, key, clean(value))
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                data[key] = value if isinstance(value, str | int | float | bool) else str(value)
        if record.exc_info:
            data["error"] = self.formatException(record.exc_info)
        elif record.exc_text:
            data["error"] = record.exc_text
        return json.dumps(data, ensure_ascii=False)


def setup_logging(level: str = "INFO", fmt: str = "auto", secrets: Iterable[str] = ()) -> None:
    handler = logging.StreamHandler(sys.stderr)
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    if use_json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
        )
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Request-level chatter from the HTTP clients is noise to an operator.
    # aiosqlite at DEBUG logs every SQL statement with its parameters: message texts, chat
    # ids, and the Matrix access token the adapter keeps in the settings table.
    for name in ("httpx", "httpcore", "aiohttp.access", "nio.responses", "nio.rooms", "aiosqlite"):
        logging.getLogger(name).setLevel(logging.WARNING)
