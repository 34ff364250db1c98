"""Project-wide system checks."""

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security, deploy=True)
def check_secret_key(app_configs, **kwargs):
    # Read past LazySettings, which raises on an empty SECRET_KEY instead of answering.
    if settings._wrapped.SECRET_KEY if settings.configured else False:
        return []
    return [
        Error(
            "SECRET_KEY is not set.",
            hint="Set it to a long random string (python -c 'import secrets; "
            "print(secrets.token_urlsafe(50))'), or set DEBUG=1 for local development.",
            id="config.E001",
        )
    ]


# The timeline's single-row insert gives way to a known dedupe key with
# INSERT ... ON CONFLICT DO NOTHING RETURNING (incidents.audit), which SQLite has from 3.35.
SQLITE_AT_LEAST = (3, 35)


@register(Tags.compatibility)
def check_sqlite_version(app_configs, **kwargs):
    import sqlite3

    engine = settings.DATABASES["default"]["ENGINE"]
    return sqlite_version_errors(engine, sqlite3.sqlite_version_info, sqlite3.sqlite_version)


def sqlite_version_errors(engine: str, version_info: tuple, version: str) -> list[Error]:
    if engine != "django.db.backends.sqlite3" or tuple(version_info) >= SQLITE_AT_LEAST:
        return []
    return [
        Error(
            f"SQLite {version} is too old: the embedded database needs 3.35 or newer.",
            hint="Use a newer Python (its sqlite3 library), or PostgreSQL (DATABASE_URL).",
            id="config.E002",
        )
    ]
