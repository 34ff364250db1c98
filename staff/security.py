"""Sign-in and session protections: login lockout answers, idle sign-out on case pages, the
second factor required of those who can see cases (pages and API), and the Permissions-Policy
header."""

import math
import time
from urllib.parse import parse_qs, urlencode, urlsplit

from axes.helpers import get_cool_off
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render, resolve_url
from django.urls import Resolver404, resolve, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from config.errors import api_error

from .models import Role

# Roles whose sessions must carry a verified second factor (TOTP or a recovery code).
SECOND_FACTOR_ROLES = frozenset(
    {Role.MANAGER, Role.HR, Role.DPO, Role.SAFEGUARDING_LEAD, Role.ADMIN}
)
IDLE_KEY = "concernline_last_seen"
# Activity is written to the session at most this often, not on every request.
IDLE_TOUCH_SECONDS = 60


def start_idle_clock(sender, request, user, **kwargs) -> None:
    """Connected to user_logged_in: a new session starts its idle clock at sign-in."""
    request.session[IDLE_KEY] = time.time()


def attempted_username(request: HttpRequest, credentials: dict | None) -> str | None:
    """The email a sign-in tried, lower-cased as stored, so "Cara@" and "cara@" count as one."""
    source = credentials or getattr(request, "data", None) or request.POST
    username = source.get("username") or source.get("email")
    return username.strip().lower() if isinstance(username, str) else None


def lockout_response(request: HttpRequest, original_response=None, credentials=None):
    """What a locked-out sign-in gets (django-axes calls this): 429, Retry-After, and in plain
    words how long to wait. Never a 500, never a hint whether the account exists."""
    cool_off = get_cool_off(request)
    seconds = int(cool_off.total_seconds()) if cool_off else 3600
    minutes = max(1, math.ceil(seconds / 60))
    message = ngettext(
        "Too many failed sign-ins. Try again in %(minutes)d minute.",
        "Too many failed sign-ins. Try again in %(minutes)d minutes.",
        minutes,
    ) % {"minutes": minutes}
    if request.path.startswith("/api/"):
        response = api_error("locked_out", message, 429)
    else:
        response = render(request, "registration/locked_out.html", {"message": message}, status=429)
    response["Retry-After"] = str(seconds)
    return response


def needs_second_factor(user) -> bool:
    if not user.is_authenticated:
        return False
    return user.role in SECOND_FACTOR_ROLES or user.is_superuser or user.is_staff


def held_to_second_factor(user, *, has_device: bool | None = None) -> bool:
    """Whether `user` must prove a second factor, on the web and in the API alike: their role
    needs one, or they set one up themselves (a care worker who opted in). `has_device` saves
    the query when the caller already knows."""
    if not settings.SECOND_FACTOR_REQUIRED or not user.is_authenticated:
        return False
    if needs_second_factor(user):
        return True
    if has_device is None:
        from django_otp import user_has_device

        has_device = user_has_device(user)
    return has_device


class PermissionsPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.setdefault("Permissions-Policy", settings.PERMISSIONS_POLICY)
        return response


class IdleSignOutMiddleware:
    """Signs a session out when it asks for a page that shows case content (settings.
    SESSION_IDLE_PROTECTED_PATHS, the session-authenticated API among them) after
    SESSION_IDLE_SECONDS without any request.

    Once a session has been idle that long, no request restarts its clock: only signing in
    again does. Other pages still open, and the report form and adding to one's own report still
    take what was typed (a care worker is never thrown out mid-report), but the next page with
    case content signs out whatever was visited in between."""

    # Where an idle session may still hand in what it typed, even under a protected path.
    HAND_IN_VIEWS = frozenset({"incidents:report", "incidents:my-report-add"})

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            now = time.time()
            last_seen = request.session.get(IDLE_KEY, now)
            idle = now - last_seen
            if idle > settings.SESSION_IDLE_SECONDS:
                if self.is_protected(request):
                    return self.sign_out(request)
                # A view handing in what was typed says so before the next page signs out.
                request.idle_expired = True
                return self.get_response(request)
            if idle > IDLE_TOUCH_SECONDS or IDLE_KEY not in request.session:
                request.session[IDLE_KEY] = now
        return self.get_response(request)

    def is_protected(self, request: HttpRequest) -> bool:
        if not request.path.startswith(tuple(settings.SESSION_IDLE_PROTECTED_PATHS)):
            return False
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return True
        return match.view_name not in self.HAND_IN_VIEWS

    def sign_out(self, request: HttpRequest) -> HttpResponse:
        logout(request)
        if request.path.startswith("/api/"):
            # The request goes on without the session: a token it carries still counts, and
            # without one DRF answers 401 in the API's own error shape.
            return self.get_response(request)
        messages.info(request, _("You were signed out after a time without activity."))
        return redirect_to_login(request.get_full_path())


class SignedOutSendMiddleware:
    """A form sent by someone no longer signed in (the session ended, or idled out on a page
    with case content) is not saved. Left alone, the sign-in page would say nothing of it and
    then go on to where the form was sent: a note, a stage, an acknowledgement only take POST,
    so a manager signing in again at 3 a.m. got a bare "405". Instead the sign-in page says what
    was sent was not saved, and afterwards brings them back to the page the form was on."""

    NOT_SAVED_VIEWS = {"incidents:report"}

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            request.method != "POST"
            or request.path.startswith("/api/")
            or request.user.is_authenticated
            or response.status_code != 302
        ):
            return response
        location = urlsplit(response["Location"])
        asked_for = parse_qs(location.query).get("next", [""])[0]
        if location.path != resolve_url(settings.LOGIN_URL) or asked_for != request.get_full_path():
            return response  # not the sign-in redirect for this very form
        try:
            report = resolve(request.path_info).view_name in self.NOT_SAVED_VIEWS
        except Resolver404:
            report = False
        messages.warning(request, self._not_saved(report))
        # The report page takes a GET too, so a report goes back to it as asked; report.js
        # then never mistakes the sign-in page for a report received (its `next` is no
        # /my-reports/ page, whatever page was open when a draft went).
        return redirect_to_login(request.get_full_path() if report else self._form_page(request))

    @staticmethod
    def _not_saved(report: bool) -> str:
        if report:
            return _(
                "You were signed out, so your report was not sent. Sign in, then send it again."
            )
        return _(
            "You were signed out, so what you sent was not saved. Sign in, then send it again."
        )

    @staticmethod
    def _form_page(request: HttpRequest) -> str:
        """The page the form was on (this site's, from Referer), else the home page."""
        referer = request.headers.get("Referer", "")
        if referer and url_has_allowed_host_and_scheme(
            referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            parts = urlsplit(referer)
            if parts.path != resolve_url(settings.LOGIN_URL):
                return parts.path + (f"?{parts.query}" if parts.query else "")
        return "/"


class SecondFactorRequiredMiddleware:
    """Those who can see cases (managers, HR, the DPO, the safeguarding lead, admins) must prove a
    second factor before any page but the sign-in and two-factor pages. Care workers who set one
    up are held to it too. Runs after django_otp's OTPMiddleware. The API is held to the same
    rule by its own authentication (staff.authentication): a 403 there, not a redirect."""

    OPEN_PREFIXES = ("/accounts/", "/static/", "/twilio/", "/api/", "/i18n/", "/health/")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if (
            settings.SECOND_FACTOR_REQUIRED
            and user.is_authenticated
            and not user.is_verified()
            and not request.path.startswith(self.OPEN_PREFIXES)
        ):
            from django_otp import user_has_device

            has_device = user_has_device(user)
            if held_to_second_factor(user, has_device=has_device):
                target = "two-factor-verify" if has_device else "two-factor-setup"
                query = urlencode({"next": request.get_full_path()})
                return redirect(f"{reverse(target)}?{query}")
        return self.get_response(request)
