"""Structured (JSON-lines) logs. Message text and personal data never go in a log record:
handlers log ids, intents, timings and error codes only. As defence in depth, every record's
strings (the message, its arguments, extra fields, a traceback) pass through the personal-data
masker before they are written (``MaskingFilter``)."""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone

from bot.privacy.masking import mask

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
        }
        data.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


class MaskingFilter(logging.Filter):
    """Masks personal data in a record's strings in place; a traceback is formatted and
    masked into the ``exc`` field. Never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = mask(record.msg, lang="en")
        if isinstance(record.args, tuple):
            record.args = tuple(
                mask(a, lang="en") if isinstance(a, str) else a for a in record.args
            )
        for key, value in list(vars(record).items()):
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, mask(value, lang="en"))
        if record.exc_info:
            record.exc = mask(logging.Formatter().formatException(record.exc_info), lang="en")
            record.exc_info, record.exc_text = None, None
        if record.stack_info:
            record.stack_info = mask(record.stack_info, lang="en")
        return True


def configure(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(MaskingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Uvicorn's access log carries query strings; ours logs what matters without them.
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("httpx").setLevel(logging.WARNING)
