"""Log redaction: whatever a log line was given, no phone number or email address leaves the
process whole. Narrative and names are never logged in the first place (ids only); this filter
is the net under that rule for the identifiers most likely to slip in."""

import logging
import re

PHONE = re.compile(r"\+?\d[\d ]{6,16}\d")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")


def redact(text: str) -> str:
    text = EMAIL.sub(lambda m: m.group(0)[0] + "***@***", text)
    return PHONE.sub(lambda m: "*" * 6 + re.sub(r"\D", "", m.group(0))[-3:], text)


class RedactFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg = redact(message)
        record.args = None
        return True
