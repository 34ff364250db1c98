"""Reads for incidents. Case lists go through the same need-to-know rules as access.py."""

import statistics
from collections import Counter

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import formats, timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from oncall.models import Alert, AlertState
from oncall.selectors import owners_paged_to
from staff.models import Role, User

from .models import (
    AccessLogEntry,
    BreakGlass,
    Case,
    CaseClock,
    CaseNote,
    CaseStatus,
    ClockKind,
    HRDecision,
    HRStage,
    Outcome,
    ReportKind,
    TimelineEvent,
    TimelineKind,
)


def cases_visible_to(user: User) -> QuerySet[Case]:
    """Cases `user` may open in full (not their own reports as reporter): one query."""
    if not user.is_authenticated or not user.is_active:
        return Case.objects.none()
    rule = Q(owner=user) | Q(reviewer=user)
    rule |= Q(id__in=owners_paged_to(user=user, owner_type=Case.ALERT_OWNER_TYPE))
    if user.role == Role.SAFEGUARDING_LEAD:
        rule |= Q(safeguarding=True)
    if user.role == Role.DPO:
        rule |= Q(personal_data_breach=True)
    if user.role == Role.HR:
        rule |= Q(referred_at__isnull=False)
    rule |= Q(id__in=CaseClock.objects.filter(escalated_to=user).values("case_id"))
    rule |= Q(
        id__in=BreakGlass.objects.filter(user=user, expires_at__gt=timezone.now()).values("case_id")
    )
    overdue = CaseClock.objects.filter(
        case=OuterRef("pk"), met_at__isnull=True, due_at__lte=timezone.now()
    )
    return (
        Case.objects.filter(rule)
        .select_related("owner")
        .annotate(overdue=Exists(overdue))
        .order_by("-created_at", "-id")  # a stable order for the list's pages
    )


CASE_LISTS = ("all", "mine", "review", "referred", "overdue")


def case_list_for(user: User, which: str) -> QuerySet[Case]:
    """One of the per-role lists, always within what `user` may see: one query."""
    cases = cases_visible_to(user)
    if which == "mine":
        cases = cases.filter(owner=user)
    elif which == "review":
        cases = cases.filter(
            Q(reviewer=user) | Q(owner=user),
            status__in=[CaseStatus.REPORTED, CaseStatus.ACKNOWLEDGED, CaseStatus.UNDER_REVIEW],
        )
    elif which == "referred":
        cases = cases.filter(referred_at__isnull=False).exclude(hr_stage=HRStage.CLOSED)
    elif which == "overdue":
        cases = cases.filter(
            id__in=CaseClock.objects.filter(met_at__isnull=True, due_at__lte=timezone.now()).values(
                "case_id"
            )
        )
    return cases


def latest_alert(case: Case) -> Alert | None:
    """The case's latest alert (a reassignment or re-raise makes a new one), or None."""
    return (
        Alert.objects.filter(owner_type=Case.ALERT_OWNER_TYPE, owner_id=case.id)
        .order_by("-created_at")
        .first()
    )


def still_paging(case: Case) -> bool:
    """Whether the case's latest page is still unanswered, so there is a step to pass it on
    to (services.escalate_case_now's own test): one query."""
    alert = latest_alert(case)
    return alert is not None and alert.state == AlertState.TRIGGERED


def open_clocks_for(case: Case) -> list[CaseClock]:
    return list(case.clocks.filter(met_at__isnull=True).order_by("due_at"))


def notes_for(case: Case, *, full: bool, user: User) -> list[CaseNote]:
    """Reviewers see every note; the reporter only what they added themselves."""
    notes = case.notes.select_related("author")
    if not full:
        notes = notes.filter(from_reporter=True, author=user)
    return list(notes)


def access_log_for(case: Case) -> list[AccessLogEntry]:
    return list(case.access_log.select_related("user"))


def breach_log() -> QuerySet[Case]:
    """Every personal-data breach, for the DPO's register."""
    return Case.objects.filter(personal_data_breach=True).order_by("-created_at")


def outcomes_summary() -> dict:
    """Counts and times across the organisation, with no case content: three queries."""
    rows = list(
        Case.objects.values_list(
            "kind", "outcome", "reporter__team__name", "created_at", "outcome_at"
        )
    )
    by_kind = Counter(kind for kind, *_ in rows)
    by_outcome = Counter(outcome for _k, outcome, *_ in rows if outcome)
    by_team = Counter(team or "—" for _k, _o, team, *_ in rows)
    hours = [(done - start).total_seconds() / 3600 for *_x, start, done in rows if done]
    overdue = Counter(
        CaseClock.objects.filter(met_at__isnull=True, due_at__lte=timezone.now()).values_list(
            "kind", flat=True
        )
    )
    kinds = dict(ReportKind.choices)
    outcomes = dict(Outcome.choices)
    return {
        "total": len(rows),
        "by_kind": [(kinds[k], by_kind[k]) for k in kinds if by_kind[k]],
        "by_outcome": [(outcomes[o], by_outcome[o]) for o in outcomes if by_outcome[o]],
        "by_team": sorted(by_team.items()),
        "median_hours_to_outcome": round(statistics.median(hours), 1) if hours else None,
        "with_outcome": len(hours),
        "overdue": [(ClockKind(k).label, n) for k, n in sorted(overdue.items())],
        "overdue_total": sum(overdue.values()),
    }


def outcomes_export_rows() -> list[Case]:
    """The cases behind the outcomes report, for the CSV (no narrative, no names): 2 queries."""
    return list(
        Case.objects.select_related("reporter__team")
        .prefetch_related("clocks")
        .order_by("created_at")
    )


def reports_by(user: User) -> QuerySet[Case]:
    return Case.objects.filter(reporter=user).order_by("-created_at")


def timeline_for(case: Case, *, full: bool) -> list[TimelineEvent]:
    """The case's timeline. The reporter sees only that it was reported and acknowledged."""
    events = case.timeline.select_related("actor")
    if not full:
        events = events.filter(
            kind__in=[
                TimelineKind.REPORTED,
                TimelineKind.ACKNOWLEDGED,
                TimelineKind.REVIEW_STARTED,
                TimelineKind.OUTCOME_RECORDED,
                TimelineKind.CLOSED,
            ]
        )
    events = list(events)
    name_people(events)
    describe(events)
    return events


# Timeline data names people by staff id only (so anonymising a case never has to rewrite its
# hash-chained timeline); names are looked up as the timeline is shown.
PERSON_KEYS = ("recipient_id", "reviewer_id", "escalated_to_id", "to_id")


def name_people(events: list[TimelineEvent]) -> None:
    """Set `event.person` to the named person's User (or None), in one query at most."""
    wanted = {
        event.data.get(key)
        for event in events
        for key in PERSON_KEYS
        if isinstance(event.data, dict)
    } - {None}
    people = {u.id: u for u in User.objects.filter(id__in=wanted)} if wanted else {}
    for event in events:
        data = event.data if isinstance(event.data, dict) else {}
        ids = [data[key] for key in PERSON_KEYS if data.get(key) is not None]
        event.person = people.get(ids[0]) if ids else None


# How something was done, as the timeline records it ("via"), in words.
VIA = {
    "web": gettext_lazy("on the web"),
    "api": gettext_lazy("in the app"),
    "sms": gettext_lazy("by SMS"),
    "call": gettext_lazy("by phone call"),
    "resolved": gettext_lazy("by starting the review"),
}
# Codes kept in timeline data, and the choices that name them.
CODED = {
    "outcome": Outcome,
    "to": HRStage,
    "decision": HRDecision,
    "clock": ClockKind,
}


def describe(events: list[TimelineEvent]) -> None:
    """Set `event.details` to what its data says in words, in the reader's language: how it
    was done, the outcome, the disciplinary stage and decision, the hearing's date, the clock
    (never the stored codes, which a reader preparing a hearing should not have to decode)."""
    for event in events:
        data = event.data if isinstance(event.data, dict) else {}
        details = []
        if data.get("via"):
            details.append(str(VIA.get(data["via"], data["via"])))
        for key, choices in CODED.items():
            code = data.get(key)
            if isinstance(code, str) and code:
                details.append(str(choices(code).label) if code in choices.values else code)
        if data.get("hearing_at"):
            when = parse_datetime(data["hearing_at"])
            if when is not None:
                when = formats.date_format(timezone.localtime(when), "j M Y H:i")
                details.append(_("hearing on %(when)s") % {"when": when})
        event.details = details
