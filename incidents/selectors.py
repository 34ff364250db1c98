"""Reads for incidents. Case lists go through the same need-to-know rules as access.py."""

from django.db.models import Q, QuerySet

from oncall.selectors import owners_paged_to
from staff.models import Role, User

from .models import Case, TimelineEvent, TimelineKind


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
    return Case.objects.filter(rule).select_related("owner").order_by("-created_at")


def reports_by(user: User) -> QuerySet[Case]:
    return Case.objects.filter(reporter=user).order_by("-created_at")


def timeline_for(case: Case, *, full: bool) -> list[TimelineEvent]:
    """The case's timeline. The reporter sees only that it was reported and acknowledged."""
    events = case.timeline.select_related("actor")
    if not full:
        events = events.filter(kind__in=[TimelineKind.REPORTED, TimelineKind.ACKNOWLEDGED])
    return list(events)
