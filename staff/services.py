"""Writes in staff: second-factor devices and recovery codes."""

from django.db import transaction
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from config.errors import ConcernlineError

from .models import User

RECOVERY_CODE_COUNT = 10


class SecondFactorError(ConcernlineError):
    code = "second_factor"


def start_totp_setup(*, user: User) -> TOTPDevice:
    """The unconfirmed authenticator-app device to show as a QR code; one at a time."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)
    return device


@transaction.atomic
def confirm_totp_setup(*, user: User, token: str) -> tuple[TOTPDevice, list[str]]:
    """Confirm the app with a code it shows; returns the device and fresh recovery codes,
    which are shown once and never again."""
    device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=False).first()
    if device is None or not device.verify_token(token.strip()):
        raise SecondFactorError(
            "That code is not right. Check the time on your phone and try again."
        )
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    return device, new_recovery_codes(user=user)


@transaction.atomic
def new_recovery_codes(*, user: User) -> list[str]:
    """Replace the person's one-time recovery codes."""
    device, _created = StaticDevice.objects.get_or_create(
        user=user, name="Recovery codes", defaults={"confirmed": True}
    )
    device.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODE_COUNT)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    return codes
