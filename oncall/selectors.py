"""Reads for oncall."""

from datetime import datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone

from staff.models import User

from .models import Alert, AlertState, Page, Rota


def default_rota() -> Rota | None:
    return Rota.objects.filter(is_default=True).first()


def on_call_at(rota: Rota, when: datetime) -> list[User]:
    """Who is on call in `rota` at `when`: one query. Weekly turns, handing over at the rota's
    local weekday and time; before the first handover nobody is."""
    zone = ZoneInfo(settings.TIME_ZONE)
    local = timezone.localtime(when, zone)
    first = datetime.combine(rota.start_date, rota.handoff_time, tzinfo=zone)
    if local < first:
        return []
    days_since = (local.date() - rota.start_date).days
    weeks = days_since // 7
    if days_since % 7 == 0 and local.time() < rota.handoff_time:
        weeks -= 1  # handover day, before the handover time: last week's person
    people = [
        p.person for p in rota.participants.select_related("person").filter(person__is_active=True)
    ]
    if not people:
        return []
    return [people[weeks % len(people)]]


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
    for rota in Rota.objects.all():
        for person in on_call_at(rota, when):
            people[person.id] = (person, f"on call in {rota.name}")
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
