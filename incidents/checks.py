"""Production checks for encryption at rest."""

from django.conf import settings
from django.core.checks import Critical, Tags, register
from django.core.exceptions import ImproperlyConfigured

from config.crypto import fernet


@register(Tags.security, deploy=True)
def check_field_encryption_keys(app_configs, **kwargs):
    if not settings.FIELD_ENCRYPTION_KEYS:
        return [
            Critical(
                "FIELD_ENCRYPTION_KEYS is not set: reports, notes and attachments cannot be "
                "stored or read.",
                hint="Set FIELD_ENCRYPTION_KEYS to a key from python -c 'from "
                "cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'. "
                "Keep it apart from database backups.",
                id="incidents.C001",
            )
        ]
    try:
        fernet()
    except ImproperlyConfigured as exc:
        return [Critical(str(exc), id="incidents.C002")]
    return []
