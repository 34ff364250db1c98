"""Who is on call (every member of staff), the rota calendar and cover (managers), and the
calendar feeds (a secret address each, no sign-in)."""

from datetime import date, datetime, timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from icalendar import Calendar, Event

from config.errors import ConcernlineError

from . import selectors, services
from .forms import OverrideForm
from .models import Rota

# The rota page shows this many weeks, and at most this many.
DEFAULT_WEEKS = 2
MAX_WEEKS = 8
# A feed holds shifts from a week back to this far ahead.
FEED_AHEAD = timedelta(days=90)
FEED_BEHIND = timedelta(days=7)


def _managers_only(request: HttpRequest) -> None:
    if not services.can_manage_rotas(request.user):
        raise PermissionDenied(_("Only managers can see and change rotas."))


@login_required
@require_GET
def who_is_on_call(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "oncall/now.html",
        {
            "rotas": selectors.on_call_now(),
            "can_manage": services.can_manage_rotas(request.user),
        },
    )


def _rota_page(request, rota, *, form=None, status=200):
    try:
        first_day = date.fromisoformat(request.GET.get("from", ""))
    except ValueError:
        first_day = timezone.localdate()
    try:
        weeks = min(max(int(request.GET.get("weeks", DEFAULT_WEEKS)), 1), MAX_WEEKS)
    except ValueError:
        weeks = DEFAULT_WEEKS
    calendar = selectors.rota_calendar(rota, first_day, weeks * 7)
    form = form or OverrideForm()
    return render(
        request,
        "oncall/rota.html",
        {
            "rota": rota,
            "calendar": calendar,
            "gap_count": sum(1 for day in calendar if day.has_gap),
            "form": form,
            "can_cover": form.fields["person"].queryset.filter(pk=request.user.pk).exists(),
            "feed_url": request.build_absolute_uri(
                reverse("oncall:feed-rota", args=[rota.feed_secret])
            ),
            "earlier": (first_day - timedelta(days=weeks * 7)).isoformat(),
            "later": (first_day + timedelta(days=weeks * 7)).isoformat(),
            "weeks": weeks,
            # A refused cover is shown at the address it was sent to, which takes only a POST:
            # the language switcher goes back to the rota's page.
            "page_path": reverse("oncall:rota", args=[rota.id]),
        },
        status=status,
    )


@login_required
@require_GET
def rota_detail(request: HttpRequest, rota_id: int) -> HttpResponse:
    _managers_only(request)
    return _rota_page(request, get_object_or_404(Rota, pk=rota_id))


@login_required
@require_POST
def rota_override(request: HttpRequest, rota_id: int) -> HttpResponse:
    _managers_only(request)
    rota = get_object_or_404(Rota, pk=rota_id)
    form = OverrideForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.add_override(
                rota=rota,
                person=data["person"],
                starts_at=data["starts_at"],
                ends_at=data["ends_at"],
                reason=data["reason"],
                actor=request.user,
            )
        except ConcernlineError as exc:
            for field, message in exc.extra.items():
                form.add_error(field if field in form.fields else None, message)
            if not exc.extra:
                form.add_error(None, exc.message)
        else:
            messages.success(
                request,
                _("%(person)s is on call from %(start)s until %(end)s.")
                % {
                    "person": data["person"],
                    "start": _local(data["starts_at"]),
                    "end": _local(data["ends_at"]),
                },
            )
            return redirect("oncall:rota", rota_id=rota.id)
    return _rota_page(request, rota, form=form, status=400)


@login_required
@require_POST
def rota_rotate_feed(request: HttpRequest, rota_id: int) -> HttpResponse:
    _managers_only(request)
    rota = get_object_or_404(Rota, pk=rota_id)
    services.rotate_feed_secret(rota=rota, actor=request.user)
    messages.success(request, _("The calendar address has changed; the old one no longer works."))
    return redirect("oncall:rota", rota_id=rota.id)


@login_required
@require_GET
def my_calendar(request: HttpRequest) -> HttpResponse:
    feed = services.personal_feed(person=request.user)
    now = timezone.now()
    return render(
        request,
        "oncall/my_calendar.html",
        {
            "feed_url": request.build_absolute_uri(
                reverse("oncall:feed-person", args=[feed.secret])
            ),
            "shifts": selectors.shifts_of_person(request.user, now, now + timedelta(days=28)),
        },
    )


@login_required
@require_POST
def my_calendar_rotate(request: HttpRequest) -> HttpResponse:
    services.rotate_feed_secret(person=request.user, actor=request.user)
    messages.success(request, _("Your calendar address has changed; the old one no longer works."))
    return redirect("oncall:my-calendar")


def _local(when: datetime) -> str:
    return formats.date_format(timezone.localtime(when), "D j M H:i")


def _ics(name: str, events: list[tuple[str, str, datetime, datetime]]) -> HttpResponse:
    calendar = Calendar()
    calendar.add("prodid", "-//Concernline//On-call rota//EN")
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", name)
    stamp = timezone.now()
    for uid, summary, start, end in events:
        event = Event()
        event.add("uid", uid)
        event.add("summary", summary)
        event.add("dtstart", start)
        event.add("dtend", end)
        event.add("dtstamp", stamp)
        calendar.add_component(event)
    response = HttpResponse(calendar.to_ical(), content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = 'inline; filename="on-call.ics"'
    return response


def _uid(rota_id: int, person_id: int, start: datetime) -> str:
    return f"rota{rota_id}-person{person_id}-{start:%Y%m%dT%H%M%SZ}@concernline"


@never_cache
@require_GET
def feed_rota(request: HttpRequest, secret: str) -> HttpResponse:
    """A rota's shifts for phone calendars; the secret in the address is the only key."""
    rota = selectors.rota_by_feed_secret(secret)
    if rota is None:
        raise Http404
    now = timezone.now()
    shifts = selectors.shifts_between(rota, now - FEED_BEHIND, now + FEED_AHEAD)
    return _ics(
        _("On call: %(rota)s") % {"rota": rota.name},
        [
            (
                _uid(rota.id, s.person.pk, s.start),
                _("On call: %(person)s") % {"person": s.person},
                s.start,
                s.end,
            )
            for s in shifts
        ],
    )


@never_cache
@require_GET
def feed_person(request: HttpRequest, secret: str) -> HttpResponse:
    """One person's own shifts in every rota; the secret in the address is the only key."""
    person = selectors.person_by_feed_secret(secret)
    if person is None:
        raise Http404
    now = timezone.now()
    mine = selectors.shifts_of_person(person, now - FEED_BEHIND, now + FEED_AHEAD)
    return _ics(
        _("My on-call shifts"),
        [
            (
                _uid(rota.id, person.pk, s.start),
                _("On call: %(rota)s") % {"rota": rota.name},
                s.start,
                s.end,
            )
            for rota, s in mine
        ],
    )
