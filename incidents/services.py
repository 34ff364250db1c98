"""Every write in incidents. Each runs in one transaction and adds to the case's timeline;
work for other processes is enqueued only on commit (by oncall, for alerts)."""

import uuid

from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from config.errors import ConcernlineError
from oncall.models import Alert, AlertState, Urgency
from oncall.selectors import default_rota
from oncall.services import acknowledge_alert, escalate_now, raise_alert, reassign_alert
from staff.models import User

from .models import (
    KIND_SHORT_NAMES,
    SAFEGUARDING_GROUNDS,
    Case,
    CaseStatus,
    Ground,
    ReferenceSequence,
    Report,
    ReportKind,
    TimelineEvent,
    TimelineKind,
)

ALWAYS_URGENT = {ReportKind.URGENT_DISCLOSURE}
MAY_BE_URGENT = {
    ReportKind.WORRYING_INFORMATION,
    ReportKind.DISCLOSURE_REQUEST,
    ReportKind.URGENT_DISCLOSURE,
    ReportKind.INAPPROPRIATE_BREACH,
}


class ReportInvalid(ConcernlineError):
    code = "invalid_report"


def submit_report(
    *,
    reporter: User,
    kind: str,
    narrative: str,
    urgent: bool = False,
    grounds: list[str] | None = None,
    service_user_ref: str = "",
    who_was_told: str = "",
    representative_consulted: str = "",
    emergency_services_called: str = "",
    client_token: uuid.UUID | None = None,
) -> Case:
    """Save a report and open its case; page on-call for an urgent one.

    The report, the case, the timeline and the alert commit together, and only then is
    anything sent: a report is never lost behind a page that failed, nor a page behind a report.
    A resubmission with the same `client_token` (a double tap, a retry on a weak signal)
    returns the case it already opened.
    """
    grounds = sorted(set(grounds or []))
    _validate(kind=kind, narrative=narrative, grounds=grounds)
    urgent = urgent or kind in ALWAYS_URGENT
    if urgent and kind not in MAY_BE_URGENT:
        urgent = False
    if client_token is not None:
        existing = Case.objects.filter(reporter=reporter, client_token=client_token).first()
        if existing is not None:
            return existing
    try:
        return _open_case(
            reporter=reporter,
            kind=kind,
            urgent=urgent,
            narrative=narrative,
            grounds=grounds,
            service_user_ref=service_user_ref,
            who_was_told=who_was_told,
            representative_consulted=representative_consulted,
            emergency_services_called=emergency_services_called,
            client_token=client_token,
        )
    except IntegrityError:
        # The same submission arrived twice at once; the other one opened the case.
        existing = Case.objects.filter(reporter=reporter, client_token=client_token).first()
        if client_token is None or existing is None:
            raise
        return existing


def _open_case(
    *,
    reporter,
    kind,
    urgent,
    narrative,
    grounds,
    service_user_ref,
    who_was_told,
    representative_consulted,
    emergency_services_called,
    client_token,
) -> Case:
    with transaction.atomic():
        now = timezone.now()
        case = Case.objects.create(
            reference=_next_reference(now.year),
            kind=kind,
            urgent=urgent,
            reporter=reporter,
            client_token=client_token,
            safeguarding=bool(SAFEGUARDING_GROUNDS.intersection(grounds)),
            personal_data_breach=kind == ReportKind.INAPPROPRIATE_BREACH,
        )
        Report.objects.create(
            case=case,
            narrative=narrative.strip(),
            grounds=grounds,
            service_user_ref=service_user_ref.strip().upper(),
            who_was_told=who_was_told.strip(),
            representative_consulted=representative_consulted,
            emergency_services_called=emergency_services_called,
        )
        add_event(
            case=case, kind=TimelineKind.REPORTED, actor=reporter, at=now, data={"urgent": urgent}
        )
        if urgent:
            rota = default_rota()
            alert = raise_alert(
                title=str(KIND_SHORT_NAMES[kind]),
                reference=case.reference,
                link=reverse("incidents:case-detail", args=[case.reference]),
                owner_type=Case.ALERT_OWNER_TYPE,
                owner_id=case.id,
                urgency=Urgency.URGENT,
                rota=rota,
                category=kind,
                hints={"line_manager_id": reporter.line_manager_id},
            )
            add_event(
                case=case,
                kind=TimelineKind.ALERT_RAISED,
                actor=None,
                at=now,
                data={"alert_id": alert.id, "rota": rota.name if rota else None},
            )
    return case


def _validate(*, kind: str, narrative: str, grounds: list[str]) -> None:
    errors = {}
    if kind not in ReportKind.values:
        errors["kind"] = _("Choose what you are reporting.")
    if not narrative.strip():
        errors["narrative"] = _("Say briefly what happened.")
    unknown = set(grounds) - set(Ground.values)
    if unknown:
        errors["grounds"] = _("Unknown grounds: %(grounds)s.") % {"grounds": ", ".join(unknown)}
    elif kind == ReportKind.URGENT_DISCLOSURE and not grounds:
        errors["grounds"] = _("Tick at least one reason the disclosure could not wait.")
    if errors:
        raise ReportInvalid(_("The report is not complete."), extra=errors)


def _next_reference(year: int) -> str:
    """C-<year>-<number>, numbered without gaps per year. The year's row is locked, so two
    reports at once never share a number."""
    ReferenceSequence.objects.bulk_create([ReferenceSequence(year=year)], ignore_conflicts=True)
    sequence = ReferenceSequence.objects.select_for_update().get(year=year)
    sequence.last += 1
    sequence.save(update_fields=["last"])
    return f"C-{year}-{sequence.last:04d}"


def add_event(
    *,
    case: Case,
    kind: str,
    actor: User | None,
    at=None,
    data: dict | None = None,
    dedupe_key: str | None = None,
) -> TimelineEvent | None:
    """Append to a case's timeline. With `dedupe_key`, an event already recorded under that
    key is not recorded again (signals may arrive twice)."""
    if dedupe_key and TimelineEvent.objects.filter(dedupe_key=dedupe_key).exists():
        return None
    return TimelineEvent.objects.create(
        case=case,
        kind=kind,
        actor=actor,
        at=at or timezone.now(),
        data=data or {},
        dedupe_key=dedupe_key,
    )


def acknowledge_case(*, case: Case, actor: User, via: str = "web") -> Case:
    """Acknowledge the case's open alert from the web. The timeline and owner follow from
    oncall's acknowledgement (see receivers.record_acknowledgement)."""
    alert = (
        Alert.objects.filter(owner_type=Case.ALERT_OWNER_TYPE, owner_id=case.id)
        .order_by("-created_at")
        .first()
    )
    if alert is None:
        raise ConcernlineError(_("There is no page to acknowledge for this case."))
    if alert.state != AlertState.TRIGGERED:
        return case  # already acknowledged: a repeat changes nothing
    acknowledge_alert(alert=alert, actor=actor, via=via)
    return case


def record_acknowledgement(*, case_id: int, user_id: int, at, via: str) -> None:
    """The case's owner becomes whoever acknowledged its page first."""
    with transaction.atomic():
        case = Case.objects.select_for_update().get(pk=case_id)
        actor = User.objects.get(pk=user_id)
        if case.status == CaseStatus.REPORTED:
            case.status = CaseStatus.ACKNOWLEDGED
            case.acknowledged_at = at
        if case.owner_id is None:
            case.owner = actor
        case.save()
        add_event(
            case=case,
            kind=TimelineKind.ACKNOWLEDGED,
            actor=actor,
            at=at,
            data={"via": via},
            dedupe_key=f"ack:{case_id}:{user_id}:{at.isoformat()}",
        )


def _latest_alert(case: Case) -> Alert:
    alert = (
        Alert.objects.filter(owner_type=Case.ALERT_OWNER_TYPE, owner_id=case.id)
        .order_by("-created_at")
        .first()
    )
    if alert is None:
        raise ConcernlineError(_("This case has no page to pass on."))
    return alert


def escalate_case_now(*, case: Case, actor: User) -> Case:
    """Run the case's next escalation step now. The timeline entry comes from oncall's
    alert_event (see receivers.on_alert_event)."""
    alert = _latest_alert(case)
    if alert.state != AlertState.TRIGGERED:
        raise ConcernlineError(
            _("This case's page has been answered; there is nothing to pass on.")
        )
    escalate_now(alert=alert, actor=actor, via="web")
    return case


def reassign_case(*, case: Case, actor: User, to: User) -> Case:
    """Hand the case to `to`: they become its owner and are paged now, and must acknowledge
    (the escalation carries on if they do not)."""
    alert = _latest_alert(case)
    with transaction.atomic():
        case = Case.objects.select_for_update().get(pk=case.pk)
        reassign_alert(alert=alert, actor=actor, to=to)
        case.owner = to
        case.save(update_fields=["owner"])
    return case
