"""Production checks for sign-in."""

from django.conf import settings
from django.core.checks import Critical, Tags, register


@register(Tags.security, deploy=True)
def check_second_factor(app_configs, **kwargs):
    if settings.SECOND_FACTOR_REQUIRED:
        return []
    return [
        Critical(
            "SECOND_FACTOR_REQUIRED is off: managers, HR, the DPO and admins could open cases "
            "with a password alone.",
            hint="Unset SECOND_FACTOR_REQUIRED (it defaults to on).",
            id="staff.C001",
        )
    ]
