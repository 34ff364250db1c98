"""Logs never carry a narrative, a name, an email address or a whole phone number."""

import io
import json
import logging

from django.conf import settings
from pythonjsonlogger.json import JsonFormatter

from config.logging import RedactFilter, redact
from incidents.models import ReportKind
from incidents.services import submit_report
from notifications.services import handle_inbound_sms

NARRATIVE = "Mrs Example at 4 Secret Lane told me her son hits her."


def test_redact_masks_phones_and_emails():
    text = redact("to +447700900101 and 07700 900 102, from mina.manager@example.org")
    assert "+447700900101" not in text and "900101" not in text and "******101" in text
    assert "07700 900 102" not in text and "******102" in text
    assert "mina.manager@example.org" not in text and "m***@***" in text


def logger_like_production(level=logging.INFO):
    """The root handler as settings configure it, writing to a buffer we can read."""
    spec = settings.LOGGING["formatters"]["json"]
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter(fmt=spec["fmt"], rename_fields=spec["rename_fields"]))
    handler.addFilter(RedactFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(level)
    return buffer, lambda: (root.removeHandler(handler), root.setLevel(old_level))


def test_the_urgent_path_logs_nothing_confidential(
    people, rota, settings, django_capture_on_commit_callbacks
):
    settings.SMS_BACKEND = "console"  # the provider that logs every SMS it "sends"
    buffer, done = logger_like_production()
    try:
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
    finally:
        done()
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
