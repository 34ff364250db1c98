"""Encryption at rest for confidential text and files, with keys that rotate.

Keys come from settings.FIELD_ENCRYPTION_KEYS (the FIELD_ENCRYPTION_KEYS environment variable,
comma-separated Fernet keys, the first one current). Values are encrypted with the first key
and decrypted with whichever key made them (cryptography's MultiFernet), so a new key goes
first, `manage.py rotate_keys` re-encrypts everything with it, and then the old key can go.

A database dump, or a copy of the attachments folder, shows only Fernet tokens: AES-128-CBC
with an HMAC-SHA256, so a changed value fails to decrypt rather than reading as something else."""

import json
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

__all__ = [
    "EncryptedJSONField",
    "EncryptedTextField",
    "InvalidToken",
    "decrypt_bytes",
    "encrypt_bytes",
    "fernet",
    "rotate_token",
]


@lru_cache(maxsize=4)
def _multi_fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS is not set: reports cannot be stored or read. Generate a key "
            "with python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'."
        )
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except (ValueError, TypeError):
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS holds a value that is not a Fernet key "
            "(32 bytes, URL-safe base64)."
        ) from None


def fernet() -> MultiFernet:
    """The keys in settings now (tests change them; the instance is cached per key list)."""
    return _multi_fernet(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt_bytes(data: bytes) -> bytes:
    return fernet().encrypt(data)


def decrypt_bytes(token: bytes) -> bytes:
    """Raises InvalidToken if no key in settings made `token`, or it was changed."""
    return fernet().decrypt(token)


def rotate_token(token: bytes) -> bytes:
    """The same plaintext under the first key (MultiFernet.rotate); InvalidToken as above."""
    return fernet().rotate(token)


class EncryptedTextField(models.TextField):
    """Text stored as a Fernet token. It can be read and written, never searched or sorted:
    the database holds only ciphertext."""

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None:
            return None
        return encrypt_bytes(value.encode()).decode()

    def from_db_value(self, value, expression, connection):
        if value is None:
            return None
        return decrypt_bytes(value.encode()).decode()


class EncryptedJSONField(models.TextField):
    """A JSON value (a dict, usually) stored as a Fernet token of its JSON text."""

    def to_python(self, value):
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value

    def get_prep_value(self, value):
        if value is None:
            return None
        text = json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False)
        return encrypt_bytes(text.encode()).decode()

    def from_db_value(self, value, expression, connection):
        if value is None:
            return None
        return json.loads(decrypt_bytes(value.encode()))

    def value_to_string(self, obj):
        return json.dumps(self.value_from_object(obj), cls=DjangoJSONEncoder)
