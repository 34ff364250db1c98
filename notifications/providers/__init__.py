"""SMS providers, chosen by the SMS_BACKEND setting (a name from SMS_BACKENDS or a dotted path)."""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from .base import SentMessage, SmsProvider

__all__ = ["SentMessage", "SmsProvider", "get_sms_provider"]


def get_sms_provider() -> SmsProvider:
    name = settings.SMS_BACKEND
    path = settings.SMS_BACKENDS.get(name, name)
    try:
        provider_class = import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"SMS_BACKEND={name!r} is neither one of {sorted(settings.SMS_BACKENDS)} nor an "
            f"importable dotted path ({exc})."
        ) from exc
    return provider_class()
