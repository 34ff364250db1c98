"""Reads for oncall."""

import copy
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection
from django.db.models import Prefetch
from django.utils import timezone

from staff.models import User

from . import rotas
from .models import (
    Alert,
    AlertState,
    LayerMember,
    Page,
    PersonalFeed,
    Rota,
    RotaLayer,
    RotaOverride,
)


def default_rota() -> Rota | None:
    return Rota.objects.filter(is_default=True).first()


def _zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def _plans(
    rota_ids: list[int], start: datetime, end: datetime
) -> dict[int, tuple[list[rotas.LayerPlan], list[rotas.OverridePlan]]]:
    """Every layer (with its active people in turn order) and every override touching
    [start, end) of the given rotas: three queries, however many rotas, layers or people."""
    plans: dict[int, tuple[list, list]] = {rota_id: ([], []) for rota_id in rota_ids}
    if not rota_ids:
        return plans
    members = Prefetch(
        "members",
        queryset=LayerMember.objects.filter(person__is_active=True).select_related("person"),
    )
    for layer in RotaLayer.objects.filter(rota_id__in=rota_ids).prefetch_related(members):
        plans[layer.rota_id][0].append(
            rotas.LayerPlan(
                id=layer.id,
                name=layer.name,
                priority=layer.priority,
                start_date=layer.start_date,
                handoff_time=layer.handoff_time,
                every=layer.handoff_every,
                unit=layer.handoff_unit,
                window=layer.window,
                people=[m.person for m in layer.members.all()],
            )
        )
    overrides = RotaOverride.objects.filter(
        rota_id__in=rota_ids, starts_at__lt=end, ends_at__gt=start, person__is_active=True
    ).select_related("person")
    for o in overrides:
        plans[o.rota_id][1].append(
            rotas.OverridePlan(id=o.id, person=o.person, starts_at=o.starts_at, ends_at=o.ends_at)
        )
    return plans


def shifts_for_rotas(
    rota_list: list[Rota], start: datetime, end: datetime
) -> dict[int, list[rotas.Shift]]:
    """The resolved shifts of each rota in [start, end), by rota id: at most three queries."""
    plans = _plans([r.id for r in rota_list], start, end)
    zone = _zone()
    return {
        rota_id: rotas.resolve(layers, overrides, start, end, zone)
        for rota_id, (layers, overrides) in plans.items()
    }


def shifts_between(rota: Rota, start: datetime, end: datetime) -> list[rotas.Shift]:
    """The final shifts of `rota` in [start, end) after layers and overrides, each clipped to
    the span: at most three queries, however long the span."""
    return shifts_for_rotas([rota], start, end)[rota.id]


def on_call_at(rota: Rota, when: datetime) -> list[User]:
    """Who is on call in `rota` at `when` (nobody before any layer starts): at most three
    queries."""
    shifts = shifts_between(rota, when, when + timedelta(microseconds=1))
    return [shift.person for shift in shifts]


@dataclass(frozen=True)
class _KeptSpan:
    """A rota's shifts over [start, end), as resolved from one state of its rows."""

    state: str
    zone: str
    start: datetime
    end: datetime
    shifts: tuple


# The last span resolved for each rota (None: whichever is the default), shared by a process's
# threads: each is replaced whole, in one assignment.
_kept_spans: dict[int | None, _KeptSpan] = {}
KEPT_SPAN = timedelta(hours=1)


def on_call_kept(*, rota_id: int | None, when: datetime) -> list[User]:
    """Who is on call at `when` in rota `rota_id`, or in the default rota for None: what
    `on_call_at` says, without resolving the rota again for every report.

    A span of shifts resolved once is reused while the rota's rows are unchanged: one query
    digests, inside PostgreSQL, every whole row the resolution reads (the rota, its layers,
    their members with each person's user row, and its overrides not yet over), so any edit,
    through the admin, a service or a bulk update that sends no signal, gives a new digest and
    a new resolution. A span is kept only if the digest is the same after resolving it. Only on
    PostgreSQL; elsewhere it resolves every time. The people are copies, never shared."""
    if connection.vendor != "postgresql":
        rota = _rota_or_default(rota_id)
        return on_call_at(rota, when) if rota else []
    state = _rota_state(rota_id, when)
    span = _kept_spans.get(rota_id)
    if not (
        span is not None
        and span.state == state
        and span.zone == settings.TIME_ZONE
        and span.start <= when < span.end
    ):
        rota = _rota_or_default(rota_id)
        shifts = shifts_between(rota, when, when + KEPT_SPAN) if rota else []
        span = _KeptSpan(
            state=state,
            zone=settings.TIME_ZONE,
            start=when,
            end=when + KEPT_SPAN,
            shifts=tuple(shifts),
        )
        if _rota_state(rota_id, when) == state:
            _kept_spans[rota_id] = span
    return [copy.copy(shift.person) for shift in span.shifts if shift.start <= when < shift.end]


def _rota_or_default(rota_id: int | None) -> Rota | None:
    return Rota.objects.filter(pk=rota_id).first() if rota_id else default_rota()


# Every row on_call_at reads for one rota (the default one when no id is given), in one digest.
# Each part has its place even when empty (concat_ws would drop a NULL one).
ROTA_STATE = """
WITH rota AS (
    SELECT * FROM oncall_rota
    WHERE CASE WHEN %(rota_id)s::bigint IS NULL THEN is_default ELSE id = %(rota_id)s::bigint END
),
layer AS (SELECT * FROM oncall_rotalayer WHERE rota_id IN (SELECT id FROM rota))
SELECT sha256(convert_to(concat_ws('|',
    coalesce((SELECT string_agg(r::text, ',' ORDER BY r.id) FROM rota r), ''),
    coalesce((SELECT string_agg(l::text, ',' ORDER BY l.id) FROM layer l), ''),
    coalesce((SELECT string_agg(m::text || u::text, ',' ORDER BY m.id)
        FROM oncall_layermember m JOIN staff_user u ON u.id = m.person_id
        WHERE m.layer_id IN (SELECT id FROM layer)), ''),
    coalesce((SELECT string_agg(o::text || u::text, ',' ORDER BY o.id)
        FROM oncall_rotaoverride o JOIN staff_user u ON u.id = o.person_id
        WHERE o.rota_id IN (SELECT id FROM rota) AND o.ends_at > %(when)s), '')
), 'UTF8'))
"""


def _rota_state(rota_id: int | None, when: datetime) -> str:
    with connection.cursor() as cursor:
        cursor.execute(ROTA_STATE, {"rota_id": rota_id, "when": when})
        return cursor.fetchone()[0].hex()


def gaps_between(rota: Rota, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The windows in [start, end) when nobody in `rota` is on call."""
    return rotas.gaps(shifts_between(rota, start, end), start, end)


@dataclass
class OnCallNow:
    rota: Rota
    shift: rotas.Shift | None  # None: nobody is on call in this rota now
    next_shift: rotas.Shift | None


# How far ahead "until when" and "who is next" look.
NOW_HORIZON = timedelta(days=28)


def on_call_now(now: datetime | None = None) -> list[OnCallNow]:
    """Every rota, the default first, with who is on call now, until when, and who is next:
    four queries however many rotas."""
    now = now or timezone.now()
    rota_list = sorted(Rota.objects.all(), key=lambda r: (not r.is_default, r.name))
    shifts = shifts_for_rotas(rota_list, now, now + NOW_HORIZON)
    result = []
    for rota in rota_list:
        found = shifts[rota.id]
        current = found[0] if found and found[0].start <= now else None
        upcoming = [s for s in found if s.start > now]
        result.append(OnCallNow(rota, current, upcoming[0] if upcoming else None))
    return result


def shifts_of_person(
    person: User, start: datetime, end: datetime
) -> list[tuple[Rota, rotas.Shift]]:
    """One person's own shifts in every rota, in time order: four queries."""
    rota_list = list(Rota.objects.all())
    by_id = {r.id: r for r in rota_list}
    mine = [
        (by_id[rota_id], shift)
        for rota_id, shifts in shifts_for_rotas(rota_list, start, end).items()
        for shift in shifts
        if shift.person.pk == person.pk
    ]
    return sorted(mine, key=lambda pair: pair[1].start)


@dataclass
class CalendarEntry:
    start: datetime
    end: datetime
    person: User | None  # None: a gap, nobody on call
    is_override: bool = False
    source: str = ""
    # The whole gap this piece belongs to, so "I'll cover" covers all of it, not one day's part.
    gap_start: datetime | None = None
    gap_end: datetime | None = None
    offer_cover: bool = False  # the first piece of a gap shown: where "I'll cover" goes
    to_midnight: bool = False  # runs to the end of the day (shown as 24:00)


@dataclass
class CalendarDay:
    day: date
    entries: list[CalendarEntry]

    @property
    def has_gap(self) -> bool:
        return any(entry.person is None for entry in self.entries)


CALENDAR_MARGIN = timedelta(days=7)


def rota_calendar(rota: Rota, first_day: date, days: int) -> list[CalendarDay]:
    """The rota day by day (local days) from `first_day`: who is on call when, and the gaps,
    each cut at local midnight. Three queries."""
    zone = _zone()
    start = rotas.to_utc(datetime.combine(first_day, time(0)), zone)
    end = rotas.to_utc(datetime.combine(first_day + timedelta(days=days), time(0)), zone)
    # A week either side, so a gap that began before the first day is offered for cover from
    # its real start (and shifts are not split at the edges).
    search_start, search_end = start - CALENDAR_MARGIN, end + CALENDAR_MARGIN
    shifts = shifts_between(rota, search_start, search_end)
    pieces = [CalendarEntry(s.start, s.end, s.person, s.is_override, s.source) for s in shifts]
    pieces += [
        CalendarEntry(g_start, g_end, None, gap_start=g_start, gap_end=g_end)
        for g_start, g_end in rotas.gaps(shifts, search_start, search_end)
    ]
    pieces.sort(key=lambda entry: entry.start)
    calendar = []
    for n in range(days):
        day = first_day + timedelta(days=n)
        opens = rotas.to_utc(datetime.combine(day, time(0)), zone)
        closes = rotas.to_utc(datetime.combine(day + timedelta(days=1), time(0)), zone)
        entries = [
            replace(
                entry,
                start=max(entry.start, opens),
                end=min(entry.end, closes),
                offer_cover=entry.person is None and (entry.start >= opens or n == 0),
                to_midnight=entry.end >= closes,
            )
            for entry in pieces
            if entry.start < closes and entry.end > opens
        ]
        calendar.append(CalendarDay(day, entries))
    return calendar


def rota_by_feed_secret(secret: str) -> Rota | None:
    return Rota.objects.filter(feed_secret=secret).first() if secret else None


def person_by_feed_secret(secret: str) -> User | None:
    if not secret:
        return None
    feed = (
        PersonalFeed.objects.filter(secret=secret, person__is_active=True)
        .select_related("person")
        .first()
    )
    return feed.person if feed else None


def open_alerts_paged_to(user: User) -> list[Alert]:
    """Triggered alerts this person has been paged for, newest first."""
    alert_ids = Page.objects.filter(recipient=user).values("alert_id")
    return list(Alert.objects.filter(id__in=alert_ids, state=AlertState.TRIGGERED))


def people_paged_for(*, owner_type: str, owner_id: int) -> set[int]:
    return set(
        Page.objects.filter(alert__owner_type=owner_type, alert__owner_id=owner_id).values_list(
            "recipient_id", flat=True
        )
    )


def owners_paged_to(*, user: User, owner_type: str):
    """The owner ids of every alert `user` was paged for, as a subquery."""
    return Page.objects.filter(recipient=user, alert__owner_type=owner_type).values(
        "alert__owner_id"
    )


def unreachable_on_call(*, when: datetime | None = None) -> list[str]:
    """Plain-words warnings about people a page cannot reach: on call now in any rota, or named
    in an active policy, with no mobile number (ids and names only)."""
    from .models import EscalationStep

    when = when or timezone.now()
    people = {}
    every_rota = list(Rota.objects.all())
    shifts = shifts_for_rotas(every_rota, when, when + timedelta(microseconds=1))
    for rota in every_rota:
        for shift in shifts.get(rota.id, []):
            people[shift.person.id] = (shift.person, f"on call in {rota.name}")
    steps = EscalationStep.objects.filter(
        policy__is_active=True, person__isnull=False
    ).select_related("person", "policy")
    for step in steps:
        people.setdefault(step.person_id, (step.person, f"named in policy {step.policy.name}"))
    return [
        f"{person.full_name} (id {person.id}), {why}, has no mobile number"
        for person, why in people.values()
        if not person.phone or not person.is_active
    ]


# Each page's news is relayed as it comes (two or more an escalation step), so this is one
# plain statement: only the columns told, not the alert's snapshot, which is large.
PAGE_NEWS = """
SELECT p.id, p.recipient_id, p.step, p.reason, p.alert_id, a.owner_type, a.owner_id
FROM oncall_page AS p JOIN oncall_alert AS a ON a.id = p.alert_id
WHERE p.id = %s
"""


def page_news(page_id: int) -> dict | None:
    """What the case's record is told about a page: who, which step and why, and the alert's
    owner. None for a page that does not exist."""
    with connection.cursor() as cursor:
        cursor.execute(PAGE_NEWS, [page_id])
        row = cursor.fetchone()
    if row is None:
        return None
    keys = ("id", "recipient_id", "step", "reason", "alert_id", "owner_type", "owner_id")
    return dict(zip(keys, row, strict=True))
