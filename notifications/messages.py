"""What a page says, by channel. Built only from a PageMessage, which holds nothing
confidential: a reference, an urgency, a short kind name. Text is in the recipient's language."""

from dataclasses import dataclass

from django.utils import translation
from django.utils.translation import gettext as _


@dataclass(frozen=True)
class PageMessage:
    reference: str  # e.g. C-2026-0001
    urgency: str  # "urgent" or "normal"
    title: str  # a short, non-confidential kind name, e.g. "urgent disclosure"


def sms_text(message: PageMessage, *, language: str) -> str:
    """One GSM-7 segment: reference, urgency, kind, how to answer."""
    with translation.override(language):
        urgency = _("URGENT") if message.urgency == "urgent" else _("Notice")
        return _(
            "Concernline %(urgency)s: %(title)s, case %(ref)s. Reply ACK %(ref)s to acknowledge."
        ) % {"urgency": urgency, "title": message.title, "ref": message.reference}
