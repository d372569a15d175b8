"""Log setup shared by every process.

Production logs are one JSON object per line so a log drain can filter by call SID,
stream SID or conversation SID. Context ids are passed with ``extra=`` and land as
top-level keys. Secrets never reach a log line: nothing here logs request bodies,
headers or tokens, and callers pass ids only.
"""

from __future__ import annotations

import logging
import sys
import time

import orjson

from common.config import Config

#: Keys that callers may attach with ``extra=`` and that we lift into the JSON line.
CONTEXT_KEYS = (
    "conversation_sid",
    "message_sid",
    "call_sid",
    "stream_sid",
    "session_id",
    "event_type",
    "task_id",
    "client_ip",
    "reason",
    "outcome",
    "attempt",
    "status",
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in CONTEXT_KEYS:
            value = record.__dict__.get(key)
            if value is not None:
                data[key] = value
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(data, default=str).decode()


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        base = super().format(record)
        ctx = " ".join(
            f"{k}={record.__dict__[k]}" for k in CONTEXT_KEYS if record.__dict__.get(k) is not None
        )
        return f"{base} {ctx}" if ctx else base


def configure_logging(cfg: Config, process: str) -> None:
    """Route the root logger to stderr in the configured format (idempotent)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_gateframes", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler._gateframes = True  # type: ignore[attr-defined]
    if cfg.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            TextFormatter(f"%(asctime)s {process} %(levelname)s %(name)s: %(message)s")
        )
    root.addHandler(handler)
    root.setLevel(cfg.log_level)
    # Third-party request logging would print URLs with account SIDs at DEBUG; keep it quiet.
    for noisy in ("twilio.http_client", "urllib3", "httpx", "httpcore", "openai"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
