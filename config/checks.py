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
