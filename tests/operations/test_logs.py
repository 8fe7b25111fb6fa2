"""Structured logs: LOG_FORMAT=json gives one JSON object per line with the company, integration and
voucher ids where known, never a secret; plain text stays the default."""

import io
import json
import logging
import subprocess
import sys

from django.utils import timezone

from bookkeeping.services.sending import vouchers_dispatch
from bookkeeping.services.vouchers import voucher_queue
from config.logs import ContextFilter, JsonLineFormatter, PlainFormatter, log_context, logging_config
from integrations.http import RedactSecretsFilter
from tests.factories import balanced_voucher

from .processes import ROOT, base_env

TOKEN = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXRva2VuLXZhbHVl"


def capture(formatter: logging.Formatter, name: str = "kontera.test") -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(RedactSecretsFilter())
    handler.addFilter(ContextFilter())
    logger = logging.getLogger(name)
    logger.handlers, logger.propagate, logger.level = [handler], False, logging.INFO
    return logger, stream


def test_json_lines_carry_the_ids_and_never_a_secret():
    logger, stream = capture(JsonLineFormatter())
    with log_context(company_id=3, integration_id=5):
        with log_context(voucher_id=17):
            logger.warning("Fortnox answered 500 for Authorization: Bearer %s", TOKEN)
        try:
            raise RuntimeError(f"refresh failed: access_token={TOKEN}\nsecond line")
        except RuntimeError:
            logger.exception("refresh of the token failed")
    logger.info("outside any block", extra={"voucher_id": 9})
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3  # one line per event, the traceback included
    first, second, third = (json.loads(line) for line in lines)
    assert first["level"] == "WARNING" and first["logger"] == "kontera.test"
    assert (first["company_id"], first["integration_id"], first["voucher_id"]) == (3, 5, 17)
    assert "voucher_id" not in second and second["company_id"] == 3
    assert "RuntimeError" in second["exc_info"]
    assert third["voucher_id"] == 9 and "company_id" not in third
    assert TOKEN not in stream.getvalue() and "[redacted]" in first["message"] and "[redacted]" in second["exc_info"]


def test_plain_text_names_the_ids_at_the_end_of_the_line():
    logger, stream = capture(PlainFormatter("%(levelname)s %(name)s: %(message)s"))
    with log_context(company_id=3, voucher_id=17):
        logger.info("posted")
    assert stream.getvalue().strip() == "INFO kontera.test: posted [company=3 voucher=17]"


def test_the_environment_chooses_the_format():
    assert logging_config(log_format="plain", level="INFO")["handlers"]["console"]["formatter"] == "plain"
    script = "import logging; logging.getLogger('kontera.x').warning('hello')"
    for log_format, is_json in (("json", True), ("plain", False)):
        done = subprocess.run([sys.executable, str(ROOT / "manage.py"), "shell", "-c", script], cwd=ROOT,
                              env=base_env(LOG_FORMAT=log_format, DATABASE_URL="sqlite:///:memory:"),
                              capture_output=True, text=True, timeout=60)
        line = [line for line in done.stderr.splitlines() if "hello" in line][0]
        if is_json:
            assert json.loads(line)["message"] == "hello"
        else:
            assert line.endswith("WARNING kontera.x: hello")


def test_a_send_logs_its_company_integration_and_voucher(connected_fortnox, caplog):
    voucher = balanced_voucher(connected_fortnox.company, rows=((1930, "100.00", "0"), (3011, "0", "100.00", "100")),
                               date=timezone.localdate(), series="A")
    assert voucher_queue(voucher=voucher, actor="test", kick=False) == []
    caplog.handler.addFilter(ContextFilter())
    with caplog.at_level(logging.INFO, logger="kontera"):
        vouchers_dispatch(max_seconds=10)
    posted = [r for r in caplog.records if "sending->posted" in r.getMessage()]
    assert posted, [r.getMessage() for r in caplog.records]
    record = posted[0]
    assert (record.company_id, record.integration_id, record.voucher_id) == (
        connected_fortnox.company_id, connected_fortnox.pk, voucher.pk)
