"""Log redaction: whatever a log line was given, no phone number or email address leaves the
process whole. Narrative and names are never logged in the first place (ids only); this filter
is the net under that rule for the identifiers most likely to slip in: in the message and its
arguments, in an exception's text and traceback (a provider's error quoting the number it could
not reach), in a stack and in any field passed with `extra=`."""

import logging
import re

PHONE = re.compile(r"\+?\d[\d ]{6,16}\d")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")

# What every record carries; anything else on a record came in through `extra=`.
STANDARD_FIELDS = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
}
_TRACEBACKS = logging.Formatter()


def redact(text: str) -> str:
    text = EMAIL.sub(lambda m: m.group(0)[0] + "***@***", text)
    return PHONE.sub(lambda m: "*" * 6 + re.sub(r"\D", "", m.group(0))[-3:], text)


def redact_value(value):
    """Text redacted; containers redacted through; numbers, booleans and None as they are;
    anything else redacted as the text it would be logged as."""
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, dict):
        return {redact_value(key): redact_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [redact_value(item) for item in value]
    return redact(str(value))


class RedactFilter(logging.Filter):
    """On a handler: the record leaves it as redacted text (message, exception, stack, extra
    fields), whichever formatter writes it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info:
            # The formatters write exc_text when there is no exc_info left to format afresh.
            record.exc_text = _TRACEBACKS.formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for name, value in list(record.__dict__.items()):
            if name not in STANDARD_FIELDS:
                setattr(record, name, redact_value(value))
        return True
