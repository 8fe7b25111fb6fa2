"""Logging: plain text (the default, for ``run``) or one JSON object per line (``LOG_FORMAT=json``).

Every line carries the company, integration and voucher ids known where it was written: from a
``log_context`` scope (the dispatcher opens one per voucher) or from ``extra=``. Secrets never
reach a handler: ``integrations.http.RedactSecretsFilter`` masks the message, and the traceback
is redacted here before any formatter sees it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter

IDS = ("company_id", "integration_id", "voucher_id")

_context: ContextVar[dict] = ContextVar("kontera_log_context", default={})  # noqa: B039 (never mutated)


@contextmanager
def log_context(**ids) -> Iterator[None]:
    """Ids for every log line written inside the block (nested blocks add to the outer one)."""
    token = _context.set({**_context.get(), **{k: v for k, v in ids.items() if v is not None}, "_scoped": True})
    try:
        yield
    finally:
        _context.reset(token)


def bind(**ids) -> None:
    """Add ids to the enclosing ``log_context`` block (undone when it ends); outside one, nothing."""
    current = _context.get()
    if current.get("_scoped"):
        _context.set({**current, **{k: v for k, v in ids.items() if v is not None}})


def current_ids() -> dict:
    return {key: value for key, value in _context.get().items() if not key.startswith("_")}


class ContextFilter(logging.Filter):
    """Puts the known ids on the record (an explicit ``extra=`` wins) and redacts the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in current_ids().items():
            if getattr(record, key, None) is None:
                setattr(record, key, value)
        if record.exc_info:
            from integrations.http import redact

            # Formatters reuse exc_text when it is set; an exception text may quote a token.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class PlainFormatter(logging.Formatter):
    """``2026-01-31 12:00:00 INFO kontera.vouchers: message [company=3 voucher=17]``."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        ids = " ".join(f"{key.removesuffix('_id')}={getattr(record, key)}" for key in IDS
                       if getattr(record, key, None) is not None)
        if not ids:
            return text
        first, sep, rest = text.partition("\n")
        return f"{first} [{ids}]{sep}{rest}"


class JsonLineFormatter(JsonFormatter):
    """One JSON object per line: time, level, logger, message, the ids, and the traceback if any."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        # ISO 8601 in UTC: the same in every process (gunicorn's master never loads Django's TIME_ZONE).
        kwargs.setdefault("timestamp", "time")
        kwargs.setdefault("json_ensure_ascii", False)  # å, ä, ö and æ, ø as they are
        super().__init__("%(levelname)s %(name)s %(message)s", *args, **kwargs)


def logging_config(*, log_format: str, level: str) -> dict:
    """The LOGGING dict for settings.py."""
    formatter = "json" if log_format == "json" else "plain"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "redact": {"()": "integrations.http.RedactSecretsFilter"},
            "context": {"()": "config.logs.ContextFilter"},
        },
        "formatters": {
            "plain": {"()": "config.logs.PlainFormatter", "format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
            "json": {"()": "config.logs.JsonLineFormatter"},
        },
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": formatter, "filters": ["redact", "context"]},
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django_q": {"level": "WARNING"},
            "urllib3": {"level": "WARNING"},
            "oauthlib": {"level": "WARNING"},
            "requests_oauthlib": {"level": "WARNING"},
        },
    }
