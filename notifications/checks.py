"""Production checks for paging. A webhook that cannot check Twilio's signature is Critical."""

from django.conf import settings
from django.core.checks import Critical, Error, Tags, register


@register(Tags.security, deploy=True)
def check_twilio_settings(app_configs, **kwargs):
    problems = []
    if settings.SMS_BACKEND == "twilio":
        missing = [
            name
            for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER")
            if not getattr(settings, name)
        ]
        if missing:
            problems.append(
                Error(
                    f"SMS_BACKEND is 'twilio' but {', '.join(missing)} is not set.",
                    hint="Set them from the Twilio console, or use SMS_BACKEND=console.",
                    id="notifications.E001",
                )
            )
        if not settings.PUBLIC_BASE_URL.startswith("https://") and not settings.DEBUG:
            problems.append(
                Error(
                    "PUBLIC_BASE_URL is not https: Twilio's callbacks would travel unencrypted.",
                    hint="Set PUBLIC_BASE_URL to the public https address of this site.",
                    id="notifications.E002",
                )
            )
        if not settings.TWILIO_AUTH_TOKEN:
            problems.append(
                Critical(
                    "No TWILIO_AUTH_TOKEN: every Twilio webhook will be refused with 403.",
                    hint="Set TWILIO_AUTH_TOKEN; webhooks are never accepted unsigned.",
                    id="notifications.C001",
                )
            )
    return problems
