"""Logs never carry a narrative, a name, an email address or a whole phone number."""

import copy
import io
import json
import logging
import logging.config
from contextlib import contextmanager

import pytest
from django.conf import settings
from django.utils.log import configure_logging

from config.logging import redact
from incidents.models import ReportKind
from incidents.services import submit_report
from notifications.services import handle_inbound_sms

NARRATIVE = "Mrs Example at 4 Secret Lane told me her son hits her."


def test_redact_masks_phones_and_emails():
    text = redact("to +447700900101 and 07700 900 102, from mina.manager@example.org")
    assert "+447700900101" not in text and "900101" not in text and "******101" in text
    assert "07700 900 102" not in text and "******102" in text
    assert "mina.manager@example.org" not in text and "m***@***" in text


@contextmanager
def production_log(log_format: str = "json"):
    """The logging settings configure (settings.LOGGING, through dictConfig, as Django does),
    in the given format, writing to a buffer we can read; set back as it was afterwards."""
    config = copy.deepcopy(settings.LOGGING)
    config["handlers"]["console"]["formatter"] = log_format
    buffer = io.StringIO()
    config["handlers"]["console"]["stream"] = buffer
    logging.config.dictConfig(config)
    try:
        yield buffer
    finally:
        configure_logging(settings.LOGGING_CONFIG, settings.LOGGING)


def failing_provider_call():
    raise RuntimeError("Unable to create record: +447700900104 is not reachable (to c@example.org)")


@pytest.mark.parametrize("log_format", ["json", "plain"])
def test_every_part_of_a_log_line_is_redacted(log_format):
    log = logging.getLogger("notifications.services")
    with production_log(log_format) as buffer:
        log.warning("texting +447700900101 for a@example.org")
        log.warning("texting %s for %s", "+447700900102", "b@example.org")
        try:
            failing_provider_call()
        except RuntimeError:
            log.exception("attempt 7: sending at once failed")
        log.warning(
            "bounced",
            extra={"recipient": "d@example.org", "to": ["+447700900105"], "attempt": 7},
        )
    output = buffer.getvalue()
    for whole in ("447700900", "7700 900", "@example.org"):
        assert whole not in output, output
    # (The plain format writes no extra fields.)
    for masked in ("******101", "a***@***", "******102", "b***@***", "******104", "c***@***"):
        assert masked in output
    assert "RuntimeError: Unable to create record" in output  # the traceback is still there
    assert "failing_provider_call" in output
    if log_format == "json":
        lines = [json.loads(line) for line in output.splitlines()]
        assert [line["message"] for line in lines] == [
            "texting ******101 for a***@***",
            "texting ******102 for b***@***",
            "attempt 7: sending at once failed",
            "bounced",
        ]
        assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
        assert lines[2]["exc_info"].startswith("Traceback")
        assert "******104" in lines[2]["exc_info"] and "c***@***" in lines[2]["exc_info"]
        assert lines[3]["recipient"] == "d***@***"
        assert lines[3]["to"] == ["******105"]
        assert lines[3]["attempt"] == 7


def test_the_urgent_path_logs_nothing_confidential(
    people, rota, settings, django_capture_on_commit_callbacks
):
    settings.SMS_BACKEND = "console"  # the provider that logs every SMS it "sends"
    with production_log() as buffer:
        with django_capture_on_commit_callbacks(execute=True):
            case = submit_report(
                reporter=people["worker"],
                kind=ReportKind.URGENT_DISCLOSURE,
                narrative=NARRATIVE,
                grounds=["abuse_or_harm"],
                service_user_ref="SU-40411",
            )
        handle_inbound_sms(
            provider_sid="SMx1", from_number="+447700900999", to_number="", body="ACK"
        )
    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert any(case.reference in line["message"] for line in lines)  # it did log the page
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    output = buffer.getvalue()
    for secret in (
        "Secret Lane",
        "son hits",
        "SU-40411",
        "+447700900101",
        "+447700900999",
        people["manager"].full_name,
        people["manager"].email,
        people["worker"].email,
    ):
        assert secret not in output, secret
