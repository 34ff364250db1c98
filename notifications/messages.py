"""What a page says, by channel. Built only from a PageMessage, which holds nothing
confidential: a reference, an urgency, a short kind name. Text is in the recipient's language."""

import unicodedata
from dataclasses import dataclass

from django.utils import translation
from django.utils.translation import gettext as _

SMS_SEGMENT = 160  # one GSM-7 segment


@dataclass(frozen=True)
class PageMessage:
    reference: str  # e.g. C-2026-0001
    urgency: str  # "urgent" or "normal"
    title: str  # a short, non-confidential kind name, e.g. "urgent disclosure"
    link: str = ""  # this site's path to what the page is about, e.g. /cases/C-2026-0001/


def _urgency(message: PageMessage) -> str:
    return _("URGENT") if message.urgency == "urgent" else _("Notice")


def _title(message: PageMessage) -> str:
    """The kind name in the active language: titles are stored untranslated (English), and a
    title with no translation is shown as it is."""
    return _(message.title) if message.title else ""


def sms_text(message: PageMessage, *, language: str, code: str = "") -> str:
    """One GSM-7 segment: urgency, kind, reference, and the reply codes. The kind name is
    shortened if it would not fit; the reference and the codes always do."""
    with translation.override(language):
        if code:
            template = _(
                "Concernline %(urgency)s: %(title)s, case %(ref)s. "
                "Reply %(code)sA to acknowledge, %(code)sE to escalate."
            )
        else:
            template = _(
                "Concernline %(urgency)s: %(title)s, case %(ref)s. "
                "Reply ACK %(ref)s to acknowledge."
            )
        values = {"urgency": _urgency(message), "ref": message.reference, "code": code}
        room = SMS_SEGMENT - len(template % {**values, "title": ""})
        title = _title(message)
        title = title if len(title) <= room else title[: room - 1] + "."
        return _gsm7(template % {**values, "title": title})


def _gsm7(text: str) -> str:
    """Welsh circumflexes (ŵ, ŷ, â...) are not GSM-7: one would make the SMS UCS-2 and halve
    its room. They are sent as their plain letters, which Welsh readers read without trouble."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def voice_text(message: PageMessage, *, language: str) -> str:
    """What a call says before the key choices: nothing beyond urgency, kind and reference.
    The reference is spelt out so a speech engine reads it character by character."""
    with translation.override(language):
        spoken_ref = ", ".join(" ".join(part) for part in message.reference.split("-"))
        return _("This is Concernline. %(urgency)s page: %(title)s, case %(ref)s.") % {
            "urgency": _urgency(message),
            "title": _title(message),
            "ref": spoken_ref,
        }


def voice_choices(*, language: str) -> str:
    with translation.override(language):
        return _("Press 1 to acknowledge. Press 2 to pass it to the next person.")


def email_text(message: PageMessage, *, language: str, link: str) -> tuple[str, str]:
    """(subject, body) of a page by email."""
    with translation.override(language):
        subject = _("Concernline %(urgency)s: case %(ref)s") % {
            "urgency": _urgency(message),
            "ref": message.reference,
        }
        body = _(
            "Concernline %(urgency)s: %(title)s, case %(ref)s.\n\n"
            "Open Concernline to respond: %(link)s\n\n"
            "This message holds no case details; they are only in Concernline."
        ) % {
            "urgency": _urgency(message),
            "title": _title(message),
            "ref": message.reference,
            "link": link,
        }
        return subject, body
