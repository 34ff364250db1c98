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


@register()
def check_paging_settings(app_configs, **kwargs):
    """Per-phone limits must read "count/seconds" with both above zero."""
    problems = []
    for name in ("PAGING_THROTTLE_SMS", "PAGING_THROTTLE_CALL"):
        value = str(getattr(settings, name))
        count, _sep, seconds = value.partition("/")
        if not (count.isdigit() and seconds.isdigit() and int(count) > 0 and int(seconds) > 0):
            problems.append(
                Error(
                    f"{name}={value!r} is not a limit like '6/60' (count/seconds).",
                    hint="Set it to how many sends per how many seconds, e.g. 6/60.",
                    id="notifications.E003",
                )
            )
    return problems
