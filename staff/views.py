import segno
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django_otp import login as otp_login
from django_otp import match_token, user_has_device

from . import services
from .forms import SecondFactorForm


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or "/"
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return "/"


@login_required
def two_factor_setup(request: HttpRequest) -> HttpResponse:
    if user_has_device(request.user, confirmed=True):
        return redirect("two-factor-verify")
    device = services.start_totp_setup(user=request.user)
    form = SecondFactorForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            device, codes = services.confirm_totp_setup(
                user=request.user, token=form.cleaned_data["token"]
            )
        except services.SecondFactorError as exc:
            form.add_error("token", exc.message)
        else:
            otp_login(request, device)
            return render(
                request, "staff/recovery_codes.html", {"codes": codes, "next": _next_url(request)}
            )
    qr = segno.make(device.config_url, error="m").svg_inline(scale=4, dark="#1b1b1b")
    return render(
        request,
        "staff/two_factor_setup.html",
        {"form": form, "qr": qr, "key_b32": _base32(device.bin_key), "next": _next_url(request)},
    )


@login_required
def two_factor_verify(request: HttpRequest) -> HttpResponse:
    if not user_has_device(request.user, confirmed=True):
        return redirect("two-factor-setup")
    form = SecondFactorForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        device = match_token(request.user, form.cleaned_data["token"].strip())
        if device is None:
            form.add_error("token", _("That code is not right, or was used already."))
        else:
            otp_login(request, device)
            return redirect(_next_url(request))
    return render(
        request, "staff/two_factor_verify.html", {"form": form, "next": _next_url(request)}
    )


def _base32(key: bytes) -> str:
    import base64

    return base64.b32encode(key).decode("ascii").rstrip("=")
