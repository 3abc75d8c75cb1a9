"""Structured JSON logs on stderr. Secrets and tokens never appear: the formatter redacts bearer
tokens, JWTs and configured secrets from every message and field."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any

_JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]+")
_BEARER = re.compile(r"(?i)bearer\s+\S+")
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    text = _BEARER.sub("Bearer [redacted]", _JWT.sub("[redacted-jwt]", text))
    for s in secrets:
        if s:
            text = text.replace(s, "[redacted]")
    return text


class JsonFormatter(logging.Formatter):
    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(time.time(), 3), "level": record.levelname, "logger": record.name,
            "msg": redact(record.getMessage(), self.secrets),
        }
        for k, v in record.__dict__.items():
            if k not in _STANDARD:
                out[k] = redact(str(v), self.secrets) if isinstance(v, str) else v
        if record.exc_info:
            out["exc"] = redact(self.formatException(record.exc_info), self.secrets)
        return json.dumps(out, default=str)


def configure(level: str = "INFO", secrets: tuple[str, ...] = ()) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
