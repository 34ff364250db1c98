"""Every write in incidents. Each runs in one transaction and adds to the case's timeline;
work for other processes is enqueued only on commit (by oncall, for alerts)."""

import hashlib
import uuid
from contextlib import nullcontext
from datetime import timedelta
from functools import partial
from pathlib import Path

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _

from config import crypto
from config.errors import ConcernlineError
from config.rows import insert_together
from notifications.services import queue_sms
from oncall.models import Alert, AlertState, Urgency
from oncall.selectors import default_rota, on_call_kept
from oncall.services import (
    acknowledge_alert,
    escalate_now,
    raise_alert,
    reassign_alert,
    resolve_alerts,
)
from staff.models import Role, User

from . import audit, selectors
from .models import (
    KIND_SHORT_NAMES,
    SAFEGUARDING_GROUNDS,
    Attachment,
    BreakGlass,
    Case,
    CaseClock,
    CaseNote,
    CaseStatus,
    ClockKind,
    Consent,
    Ground,
    HowKnown,
    HRDecision,
    HRStage,
    Intent,
    Outcome,
    ReferenceSequence,
    Report,
    ReportKind,
    TimelineEvent,
    TimelineKind,
    YesNoUnsure,
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
    details: dict | None = None,
) -> Case:
    """Save a report and open its case; page on-call for an urgent one.

    The report, the case, the timeline and the alert commit together, and only then is
    anything sent: a report is never lost behind a page that failed, nor a page behind a report.
    A resubmission with the same `client_token` (a double tap, a retry on a weak signal)
    returns the case it already opened.
    """
    grounds = sorted(set(grounds or []))
    details = {k: v for k, v in (details or {}).items() if v not in ("", None)}
    _validate(kind=kind, narrative=narrative, grounds=grounds)
    _validate_details(kind=kind, details=details)
    urgent = urgent or kind in ALWAYS_URGENT
    if urgent and kind not in MAY_BE_URGENT:
        urgent = False
    # A resubmission is found by the case_client_token_once constraint refusing its case, not
    # by a look before every insert: a retry is rare, a query on every report is not.
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
            details=details,
        )
    except IntegrityError:
        # The same submission arrived again, or twice at once: the other one opened the case.
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
    details=None,
) -> Case:
    now = timezone.now()
    # Whoever acknowledges an urgent case's page takes it; any other case has its owner from
    # the start. Worked out before anything is written.
    owner = None if urgent else _first_owner(reporter=reporter, now=now)
    case = Case(
        kind=kind,
        urgent=urgent,
        reporter=reporter,
        owner=owner,
        client_token=client_token,
        safeguarding=bool(SAFEGUARDING_GROUNDS.intersection(grounds)),
        personal_data_breach=kind == ReportKind.INAPPROPRIATE_BREACH,
    )
    # On PostgreSQL the case's rows go in one statement (config.rows), all or nothing by
    # themselves: a concern needs no transaction around them. An urgent report's alert
    # commits with them, and elsewhere the case is inserted first to be given its id.
    alone = connection.vendor == "postgresql" and not urgent and not connection.in_atomic_block
    with nullcontext() if alone else transaction.atomic():
        _number(case, year=now.year)
        report = Report(
            case=case,
            narrative=narrative.strip(),
            grounds=grounds,
            service_user_ref=service_user_ref.strip().upper(),
            who_was_told=who_was_told.strip(),
            representative_consulted=representative_consulted,
            emergency_services_called=emergency_services_called,
            details=details or {},
        )
        events = [
            {
                "kind": TimelineKind.REPORTED,
                "actor_id": reporter.pk,
                "at": now,
                "data": {"urgent": urgent},
            }
        ]
        if urgent:
            rota = default_rota()
            # Stored untranslated: each page is put into its recipient's language when sent.
            with translation.override(None):
                title = str(KIND_SHORT_NAMES[kind])
            alert = raise_alert(
                title=title,
                reference=case.reference,
                link=reverse("incidents:case-detail", args=[case.reference]),
                owner_type=Case.ALERT_OWNER_TYPE,
                owner_id=case.id,
                urgency=Urgency.URGENT,
                rota=rota,
                category=kind,
                hints={"line_manager_id": reporter.line_manager_id, "not_to_page": [reporter.id]},
            )
            events.append(
                {
                    "kind": TimelineKind.ALERT_RAISED,
                    "actor_id": None,
                    "at": now,
                    "data": {"alert_id": alert.id, "rota": rota.name if rota else None},
                }
            )
        insert_together(
            [case] if case._state.adding else [],
            [report],
            _new_case_clocks(case=case, now=now),
            audit.first_entries(case=case, events=events),
        )
    # The report was inserted without being told its id: case.report reads it afresh.
    case._state.fields_cache.pop("report", None)
    return case


def _number(case: Case, *, year: int) -> None:
    """Give a new case its reference and its id. On PostgreSQL both come from sequences in one
    round trip, before the case is inserted (its first timeline entries' hashes carry its
    id); elsewhere the case is inserted here to be given its id."""
    if connection.vendor == "postgresql":
        number, case.id = _sequence_next(year)
        case.reference = f"C-{year}-{number:04d}"
    else:
        case.reference = _next_reference(year)
        case.save()


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


# Each kind's own questions beyond the narrative (guidance sections in DESIGN.md):
# name -> (allowed values or None for free text up to 200 characters, required).
KIND_DETAILS = {
    ReportKind.CONCERN_COLLEAGUE: {"colleague": (None, True), "occurred": (None, False)},
    ReportKind.WORRYING_INFORMATION: {"occurred": (None, False)},
    ReportKind.DISCLOSURE_REQUEST: {
        "requester": (None, True),
        "purpose": (None, True),
        "consent": (Consent.values, True),
    },
    ReportKind.URGENT_DISCLOSURE: {},
    ReportKind.INAPPROPRIATE_BREACH: {
        "how_known": (HowKnown.values, True),
        "intent": (Intent.values, True),
        "information": (None, True),
        "personal_data": (YesNoUnsure.values, True),
    },
}
# The shared fields each kind asks (others are dropped for that kind).
KIND_FIELDS = {
    ReportKind.CONCERN_COLLEAGUE: [],
    ReportKind.WORRYING_INFORMATION: ["urgent", "service_user_ref"],
    ReportKind.DISCLOSURE_REQUEST: ["urgent", "service_user_ref"],
    ReportKind.URGENT_DISCLOSURE: [
        "grounds",
        "service_user_ref",
        "who_was_told",
        "representative_consulted",
        "emergency_services_called",
    ],
    ReportKind.INAPPROPRIATE_BREACH: ["urgent", "service_user_ref", "who_was_told"],
}


def _validate_details(*, kind: str, details: dict) -> None:
    spec = KIND_DETAILS.get(kind, {})
    errors = {}
    for name, value in details.items():
        if name not in spec:
            errors[name] = _("This question is not asked for this kind of report.")
            continue
        allowed, _required = spec[name]
        if allowed is not None and value not in allowed:
            errors[name] = _("Choose one of the answers offered.")
        elif allowed is None and (not isinstance(value, str) or len(value) > 200):
            errors[name] = _("Answer in at most 200 characters.")
    for name, (_allowed, required) in spec.items():
        if required and name not in details and name not in errors:
            errors[name] = _("Answer this question.")
    if errors:
        raise ReportInvalid(_("The report is not complete."), extra=errors)


def _next_reference(year: int) -> str:
    """C-<year>-<number>, counted per year; two reports at once never share a number.

    On PostgreSQL the number comes from a sequence per year (_sequence_next, by way of
    _number): nextval() takes no row lock, so reports arriving together do not queue behind
    each other's transactions (a report that rolls back leaves a gap, which is harmless).
    Elsewhere (the embedded SQLite default) the year's ReferenceSequence row is locked and
    bumped."""
    ReferenceSequence.objects.bulk_create([ReferenceSequence(year=year)], ignore_conflicts=True)
    sequence = ReferenceSequence.objects.select_for_update().get(year=year)
    sequence.last += 1
    sequence.save(update_fields=["last"])
    return f"C-{year}-{sequence.last:04d}"


def _sequence_next(year: int) -> tuple[int, int]:
    """The year's next reference number and the next case id, in one round trip."""
    name = f"incidents_case_reference_{int(year)}"
    with connection.cursor() as cursor:
        # to_regclass() is NULL for a sequence not made yet, and nextval(NULL) is NULL: one
        # round trip, and no error to fence off with a savepoint.
        cursor.execute(
            "SELECT nextval(to_regclass(%s)), nextval(pg_get_serial_sequence(%s, 'id'))",
            [name, Case._meta.db_table],
        )
        number, case_id = cursor.fetchone()
        if number is not None:
            return number, case_id
        # The year's first report: make its sequence.
        # Start after any number already used this year (by the row-locked counter before).
        used = ReferenceSequence.objects.filter(year=year).values_list("last", flat=True).first()
        try:
            with transaction.atomic():
                cursor.execute(f"CREATE SEQUENCE IF NOT EXISTS {name} START WITH {(used or 0) + 1}")
        except IntegrityError:
            pass  # another report made it at the same moment: use theirs
        cursor.execute("SELECT nextval(%s)", [name])
        return cursor.fetchone()[0], case_id


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
    key is not recorded again (signals may arrive twice, or at the same moment from two
    processes: a worker's and a status callback's); None is returned then."""
    return record_event(
        case_id=case.id,
        kind=kind,
        actor_id=actor.pk if actor is not None else None,
        at=at,
        data=data,
        dedupe_key=dedupe_key,
    )


def record_event(
    *,
    case_id: int,
    kind: str,
    actor_id: int | None = None,
    at=None,
    data: dict | None = None,
    dedupe_key: str | None = None,
) -> TimelineEvent | None:
    """add_event by the case's id, for news from the apps below (see receivers): nothing is
    read of the case. None when no such case exists or the news was recorded already."""
    return audit.append_timeline_event(
        case_id=case_id,
        kind=kind,
        actor_id=actor_id,
        at=at or timezone.now(),
        data=data or {},
        dedupe_key=dedupe_key,
    )


class AlreadyDone(ConcernlineError):
    """What was asked had been done already (a double tap, a second try on a weak signal):
    news, not a failure; nothing was changed."""

    status_code = 409
    code = "already_done"


class AlreadyAcknowledged(AlreadyDone):
    """The case's page was acknowledged before this request; the message says by whom."""

    code = "already_acknowledged"


def acknowledge_case(*, case: Case, actor: User, via: str = "web") -> Case:
    """Acknowledge the case's open alert from the web. The timeline and owner follow from
    oncall's acknowledgement (see receivers.record_acknowledgement), so the case returned is
    read again. Raises AlreadyAcknowledged, changing nothing, when the page was acknowledged
    already (by this person or another, or answered by taking the case into review)."""
    alert = selectors.latest_alert(case)
    if alert is None:
        raise ConcernlineError(_("There is no page to acknowledge for this case."))
    if alert.state == AlertState.TRIGGERED:
        # Under the alert's lock: someone may have acknowledged it since it was read above.
        alert = acknowledge_alert(alert=alert, actor=actor, via=via)
        if alert.acknowledged_by_id == actor.id:
            case.refresh_from_db()
            return case
    raise AlreadyAcknowledged(_already_acknowledged(alert, case=case, actor=actor))


def _already_acknowledged(alert: Alert, *, case: Case, actor: User) -> str:
    taker = alert.acknowledged_by
    if taker is None:
        return _("There is no page to acknowledge for this case.")
    if taker.pk == actor.pk:
        return _("You have already acknowledged this case.")
    owner = Case.objects.filter(pk=case.pk).values_list("owner", flat=True).first()
    if owner in (None, taker.pk):
        return _("%(name)s already acknowledged this case and owns it.") % {"name": taker}
    return _("%(name)s already acknowledged this case; %(owner)s owns it.") % {
        "name": taker,
        "owner": User.objects.get(pk=owner),
    }


def record_acknowledgement(*, case_id: int, user_id: int, at, via: str) -> None:
    """The case's owner becomes whoever acknowledged its page first."""
    with transaction.atomic():
        case = Case.objects.select_for_update(no_key=True).get(pk=case_id)
        actor = User.objects.get(pk=user_id)
        if case.status == CaseStatus.REPORTED:
            case.status = CaseStatus.ACKNOWLEDGED
            case.acknowledged_at = at
            meet_clock(case=case, kind=ClockKind.ACKNOWLEDGEMENT, at=at)
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


def catch_up_acknowledgements() -> int:
    """Give each case its side of an acknowledgement that never arrived: the alert committed
    as acknowledged, then the process died before record_acknowledgement ran (it follows on
    commit, see receivers). Recorded as of the alert's own acknowledgement, so the owner, the
    clock and the timeline read as if nothing had happened; a second run, or the late signal
    itself, changes nothing. Run by the clock sweep, before any clock is judged. Returns how
    many cases were caught up."""
    missed = Alert.objects.filter(
        owner_type=Case.ALERT_OWNER_TYPE,
        state=AlertState.ACKNOWLEDGED,
        owner_id__in=Case.objects.filter(status=CaseStatus.REPORTED).values("id"),
    ).values_list("owner_id", "acknowledged_by_id", "acknowledged_at", "acknowledged_via")
    caught_up = 0
    for case_id, user_id, at, via in missed:
        record_acknowledgement(case_id=case_id, user_id=user_id, at=at, via=via)
        caught_up += 1
    return caught_up


# ---------------------------------------------------------------------------------------------
# Review, outcome and the disciplinary procedure. Each transition locks the case, checks the
# actor's basis (incidents.access) and the current state, writes the state and a timeline event
# in one transaction, and raises IllegalTransition / NotAllowed (plain 4xx) otherwise.


class IllegalTransition(ConcernlineError):
    status_code = 409
    code = "illegal_transition"


class NotAllowed(ConcernlineError):
    status_code = 403
    code = "not_allowed"


class ReviewAlreadyStarted(AlreadyDone, IllegalTransition):
    """Start the review again, by whoever started it (or its reviewer): done already."""


def _hours(name: str, default: float) -> timedelta:
    return timedelta(hours=float(getattr(settings, name, default)))


def clock_duration(kind: str) -> timedelta:
    """Each clock's length, read from settings at use."""
    return {
        ClockKind.ACKNOWLEDGEMENT: _hours("CASE_ACKNOWLEDGE_TARGET_HOURS", 24),
        ClockKind.REVIEW: timedelta(days=float(getattr(settings, "CASE_REVIEW_TARGET_DAYS", 14))),
        ClockKind.BREACH_DECISION: _hours("BREACH_DECISION_HOURS", 72),
        ClockKind.SAFEGUARDING_REFERRAL: _hours("SAFEGUARDING_REFERRAL_HOURS", 24),
    }[kind]


def meet_clock(*, case: Case, kind: str, at=None) -> None:
    CaseClock.objects.filter(case=case, kind=kind, met_at__isnull=True).update(
        met_at=at or timezone.now()
    )


def _new_case_clocks(*, case: Case, now) -> list[CaseClock]:
    """A new case's clocks, to be inserted with it (it has none yet)."""
    kinds = [ClockKind.ACKNOWLEDGEMENT, ClockKind.REVIEW]
    if case.personal_data_breach:
        kinds.append(ClockKind.BREACH_DECISION)
    if case.safeguarding:
        kinds.append(ClockKind.SAFEGUARDING_REFERRAL)
    warn_share = float(getattr(settings, "CLOCK_WARN_PERCENT", 75)) / 100
    return [
        CaseClock(
            case=case,
            kind=kind,
            started_at=now,
            due_at=now + clock_duration(kind),
            warn_at=now + clock_duration(kind) * warn_share,
        )
        for kind in kinds
    ]


def _first_owner(*, reporter: User, now) -> User | None:
    """Who takes a case that pages nobody: the reporter's line manager, or with none, the
    manager on call now, never the reporter themselves (a manager on call who reports); if
    nobody is, the acknowledgement clock escalates."""
    manager = reporter.line_manager
    if manager is None or not manager.is_active:
        on_call = on_call_kept(rota_id=None, when=now)
        manager = next((person for person in on_call if person.pk != reporter.pk), None)
        if manager is None and any(person.pk == reporter.pk for person in on_call):
            # They are the manager on call: another manager takes it, as the urgent path's
            # fallback pages every other manager, never nobody.
            manager = _another_manager(passed_over={reporter.pk})
    return manager


def _another_manager(*, passed_over: set[int]) -> User | None:
    """An active manager not among `passed_over`: the first by name (one query)."""
    return (
        User.objects.filter(role=Role.MANAGER, is_active=True)
        .exclude(pk__in=passed_over)
        .order_by("full_name", "pk")
        .first()
    )


def _locked(case: Case) -> Case:
    """The case, locked for a change of its state. FOR NO KEY UPDATE (every Case lock is): it
    still queues other changes of the case, but not the rows added about it (timeline, access
    log, pages' news), whose foreign-key checks only share the key; an escalation step holds
    its alert while writing its news, so a case change waiting for that alert must not block
    the step's news, or each would wait for the other."""
    return (
        Case.objects.select_for_update(of=("self",), no_key=True)
        .select_related("reporter", "owner", "reviewer")
        .get(pk=case.pk)
    )


def _require(actor: User, case: Case, allowed) -> None:
    from .access import bases_for

    if not any(basis in allowed for basis in bases_for(actor, case)):
        raise NotAllowed(_("You may not do that on this case."))


def _require_status(case: Case, *statuses: str) -> None:
    if case.status not in statuses:
        raise IllegalTransition(
            _("Not possible while the case is %(status)s.")
            % {"status": case.get_status_display().lower()}
        )


def _require_not_anonymised(case: Case) -> None:
    """Retention has emptied the case (incidents.retention): nothing new is kept on it."""
    if case.anonymised_at is not None:
        raise IllegalTransition(_("This case has been anonymised: nothing more can be added."))


def start_review(*, case: Case, actor: User) -> Case:
    """reported/acknowledged → under_review. Taking a case that nobody owns makes it yours."""
    from .access import REVIEW

    with transaction.atomic():
        case = _locked(case)
        _require(actor, case, REVIEW)
        if case.status == CaseStatus.UNDER_REVIEW and actor.pk in (case.owner_id, case.reviewer_id):
            # Decided under the case's lock: two taps at once both land here, one after the other.
            raise ReviewAlreadyStarted(
                _("You have already started the review. The case is under review.")
            )
        _require_status(case, CaseStatus.REPORTED, CaseStatus.ACKNOWLEDGED)
        now = timezone.now()
        if case.acknowledged_at is None:
            case.acknowledged_at = now
        case.owner = case.owner or actor
        case.status = CaseStatus.UNDER_REVIEW
        case.review_started_at = now
        case.save()
        meet_clock(case=case, kind=ClockKind.ACKNOWLEDGEMENT, at=now)
        # Taken into review: paging for it ends, review reminders included. Before the
        # timeline entry: a running escalation step holds its alert and then takes the case's
        # chain, so the alerts are locked first here too, or each would wait for the other.
        resolve_alerts(owner_type=Case.ALERT_OWNER_TYPE, owner_id=case.id, actor=actor)
        add_event(case=case, kind=TimelineKind.REVIEW_STARTED, actor=actor, at=now)
    return case


def assign_reviewer(*, case: Case, actor: User, reviewer: User) -> Case:
    """The owner names who reviews the case (a manager); allowed until the outcome."""
    from .access import Basis

    with transaction.atomic():
        case = _locked(case)
        _require(actor, case, {Basis.OWNER})
        _require_status(case, CaseStatus.REPORTED, CaseStatus.ACKNOWLEDGED, CaseStatus.UNDER_REVIEW)
        if reviewer.role != Role.MANAGER or not reviewer.is_active:
            raise ConcernlineError(
                _("A reviewer must be an active manager."), extra={"reviewer": _("Not a manager.")}
            )
        if reviewer.pk == case.reporter_id:
            raise ConcernlineError(
                _("%(name)s made this report and cannot review it: choose someone else.")
                % {"name": reviewer},
                extra={"reviewer": _("Made the report.")},
            )
        case.reviewer = reviewer
        case.save(update_fields=["reviewer"])
        add_event(
            case=case,
            kind=TimelineKind.REVIEWER_ASSIGNED,
            actor=actor,
            data={"reviewer_id": reviewer.id},
        )
    return case


def record_outcome(*, case: Case, actor: User, outcome: str) -> Case:
    """under_review → outcome_recorded. "Refer to disciplinary" opens the HR stages."""
    from .access import REVIEW

    if outcome not in Outcome.values:
        raise ConcernlineError(
            _("Choose an outcome."), extra={"outcome": _("Choose one of the outcomes.")}
        )
    with transaction.atomic():
        case = _locked(case)
        _require(actor, case, REVIEW)
        _require_status(case, CaseStatus.UNDER_REVIEW)
        now = timezone.now()
        case.status = CaseStatus.OUTCOME_RECORDED
        case.outcome = outcome
        case.outcome_at = now
        if outcome == Outcome.DISCIPLINARY:
            case.referred_at = now
            case.hr_stage = HRStage.REFERRED
        case.save()
        meet_clock(case=case, kind=ClockKind.REVIEW, at=now)
        add_event(
            case=case,
            kind=TimelineKind.OUTCOME_RECORDED,
            actor=actor,
            at=now,
            data={"outcome": outcome},
        )
        if outcome == Outcome.DISCIPLINARY:
            add_event(case=case, kind=TimelineKind.REFERRED, actor=actor, at=now)
    return case


def close_case(*, case: Case, actor: User) -> Case:
    """outcome_recorded → closed. A referred case closes when HR closes the procedure."""
    from .access import REVIEW

    with transaction.atomic():
        case = _locked(case)
        _require(actor, case, REVIEW)
        _require_status(case, CaseStatus.OUTCOME_RECORDED)
        if case.referred_at is not None:
            raise IllegalTransition(_("HR closes a case referred to the disciplinary procedure."))
        _close(case=case, actor=actor)
    return case


def _close(*, case: Case, actor: User) -> None:
    now = timezone.now()
    case.status = CaseStatus.CLOSED
    case.closed_at = now
    case.save()
    add_event(case=case, kind=TimelineKind.CLOSED, actor=actor, at=now)


# The ACAS Code's order: stage → the stages it may move to.
HR_NEXT = {
    HRStage.REFERRED: {HRStage.INVESTIGATION},
    HRStage.INVESTIGATION: {HRStage.HEARING, HRStage.DECISION},
    HRStage.HEARING: {HRStage.DECISION},
    HRStage.DECISION: {HRStage.APPEAL, HRStage.CLOSED},
    HRStage.APPEAL: {HRStage.CLOSED},
}


def advance_referral(
    *,
    case: Case,
    actor: User,
    stage: str,
    hearing_at=None,
    decision: str = "",
) -> Case:
    """Move a referred case to its next HR stage. A hearing needs its date (the invitation
    states the right to be accompanied); a decision needs its kind; only "no case to answer"
    may be decided without a hearing. Closing the procedure closes the case."""
    from .access import HR_STAGES

    with transaction.atomic():
        case = _locked(case)
        _require(actor, case, HR_STAGES)
        current = case.hr_stage
        if not current or stage not in HR_NEXT.get(current, set()):
            raise IllegalTransition(
                _("A case at stage “%(now)s” cannot move to “%(next)s”.")
                % {
                    "now": HRStage(current).label if current else _("not referred"),
                    "next": HRStage(stage).label if stage in HRStage.values else stage,
                }
            )
        data = {"from": current, "to": stage}
        if stage == HRStage.HEARING:
            if hearing_at is None:
                raise ConcernlineError(
                    _("Give the hearing's date."), extra={"hearing_at": _("Give a date.")}
                )
            case.hearing_at = hearing_at
            data.update(hearing_at=hearing_at.isoformat(), right_to_be_accompanied=True)
        if stage == HRStage.DECISION:
            if decision not in HRDecision.values:
                raise ConcernlineError(
                    _("Choose the decision."), extra={"decision": _("Choose one.")}
                )
            if current == HRStage.INVESTIGATION and decision != HRDecision.NO_CASE:
                raise IllegalTransition(
                    _("Only “no case to answer” may be decided without a hearing.")
                )
            case.hr_decision = decision
            data["decision"] = decision
        case.hr_stage = stage
        case.save()
        add_event(case=case, kind=TimelineKind.HR_STAGE, actor=actor, data=data)
        if stage == HRStage.CLOSED:
            _close(case=case, actor=actor)
    return case


def add_note(
    *, case: Case, actor: User, text: str, client_token: uuid.UUID | None = None
) -> CaseNote:
    """A reviewer's note. The timeline records that a note was added, never what it says.

    A resubmission with the same `client_token` (a double tap, a browser sending the form again)
    adds nothing and raises AlreadyDone. It is decided under the case's lock, so two taps at
    once are seen one after the other; the casenote_client_token_once constraint backs it."""
    from .access import FULL_VIEW

    text = text.strip()
    if not text:
        raise ConcernlineError(_("Write the note."), extra={"text": _("Write the note.")})
    with transaction.atomic():
        case = _locked(case)
        _require(actor, case, FULL_VIEW)
        if _sent_before(case, client_token):
            raise AlreadyDone(_("Your note was added already. It is shown once."))
        _require_not_anonymised(case)
        note = CaseNote.objects.create(
            case=case, author=actor, text=text, client_token=client_token
        )
        add_event(case=case, kind=TimelineKind.NOTE_ADDED, actor=actor, data={"note_id": note.id})
    return note


def _sent_before(case: Case, client_token: uuid.UUID | None) -> bool:
    """Whether a note or addition with this one-time token is on the case already (asked
    under the case's lock; the casenote_client_token_once constraint backs it)."""
    return (
        client_token is not None
        and CaseNote.objects.filter(case=case, client_token=client_token).exists()
    )


def add_report_information(
    *, case: Case, actor: User, text: str, client_token: uuid.UUID | None = None
) -> CaseNote:
    """The reporter adds to their own report later (a CaseNote `from_reporter`).

    A resubmission with the same `client_token` (a double tap, a browser sending the form again,
    a phone retrying on a weak signal) adds nothing and raises AlreadyDone, as add_note does: it
    is decided under the case's lock, after the reporter check, so two taps at once are seen one
    after the other; the casenote_client_token_once constraint backs it."""
    text = text.strip()
    if not text:
        raise ConcernlineError(_("Say what you want to add."), extra={"text": _("Write it.")})
    with transaction.atomic():
        case = _locked(case)
        if case.reporter_id != actor.id:
            raise NotAllowed(_("You may not do that on this case."))
        if _sent_before(case, client_token):
            raise AlreadyDone(_("What you added is on your report already. It is shown once."))
        if case.status == CaseStatus.CLOSED:
            raise IllegalTransition(_("The case is closed."))
        note = CaseNote.objects.create(
            case=case, author=actor, text=text, from_reporter=True, client_token=client_token
        )
        add_event(case=case, kind=TimelineKind.INFORMATION_ADDED, actor=actor)
    return note


# Types recognised by their first bytes, never by the file's name.
MAGIC = [
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
]


def sniff_type(head: bytes) -> str | None:
    for magic, content_type in MAGIC:
        if head.startswith(magic):
            return content_type
    # Plain text: UTF-8 with no control bytes but tab, newline, form feed and carriage return.
    if any(byte < 32 and byte not in (9, 10, 12, 13) or byte == 127 for byte in head):
        return None
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the sample is still text.
        if exc.start < len(head) - 3:
            return None
    return "text/plain"


def attachments_dir() -> Path:
    return Path(settings.ATTACHMENTS_DIR)


def read_attachment(attachment: Attachment) -> bytes | None:
    """The attachment's contents, decrypted; None if its file is missing. Callers have
    already passed the access check (incidents.access) and logged the access."""
    path = attachments_dir() / attachment.stored_name
    if not path.is_file():
        return None
    return crypto.decrypt_bytes(path.read_bytes())


def add_attachment(*, case: Case, actor: User, upload) -> Attachment:
    """Keep an uploaded file (PDF, PNG, JPEG or plain text, by content; at most
    ATTACHMENT_MAX_BYTES) outside the web root under a random name, encrypted."""
    from .access import FULL_VIEW

    limit = int(settings.ATTACHMENT_MAX_BYTES)
    if upload.size > limit:
        raise ConcernlineError(
            _("The file is too large."),
            extra={"file": _("Files may be at most %(mb)s MB.") % {"mb": round(limit / 1e6, 1)}},
        )
    head = upload.read(2048)
    upload.seek(0)
    content_type = sniff_type(head)
    if content_type is None:
        raise ConcernlineError(
            _("That kind of file is not accepted."),
            extra={"file": _("Attach a PDF, PNG, JPEG or plain-text file.")},
        )
    _require(actor, case, FULL_VIEW)  # again under the lock below; no file for the refused
    folder = attachments_dir()
    folder.mkdir(parents=True, exist_ok=True)
    stored_name = uuid.uuid4().hex
    digest = hashlib.sha256()
    path = folder / stored_name
    # At most ATTACHMENT_MAX_BYTES, so held in memory to be encrypted in one token.
    contents = b"".join(upload.chunks())
    digest.update(contents)
    with open(path, "xb") as out:
        out.write(crypto.encrypt_bytes(contents))
    try:
        with transaction.atomic():
            case = _locked(case)
            _require(actor, case, FULL_VIEW)
            _require_not_anonymised(case)
            attachment = Attachment.objects.create(
                case=case,
                uploaded_by=actor,
                original_name=Path(upload.name or "file").name[:200],
                content_type=content_type,
                size=upload.size,
                sha256=digest.hexdigest(),
                stored_name=stored_name,
            )
            add_event(
                case=case,
                kind=TimelineKind.ATTACHMENT_ADDED,
                actor=actor,
                data={"attachment_id": attachment.id},
            )
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return attachment


def record_breach_decision(
    *,
    case: Case,
    actor: User,
    ico_notified: bool,
    subjects_told: bool,
    reason: str = "",
) -> Case:
    """The DPO's decision on a personal-data breach: notify the ICO or record why not; tell
    the people affected or record why not. Stops the 72-hour clock."""
    from .access import Basis

    if (not ico_notified or not subjects_told) and not reason.strip():
        raise ConcernlineError(
            _("Record why not."),
            extra={"reason": _("Say why the ICO or the people were not told.")},
        )
    with transaction.atomic():
        case = _locked(case)
        _require(actor, case, {Basis.DPO})
        if case.breach_decided_at is not None:
            raise IllegalTransition(_("The decision on this breach is already recorded."))
        now = timezone.now()
        case.ico_notified = ico_notified
        case.subjects_told = subjects_told
        case.breach_decided_at = now
        case.save()
        meet_clock(case=case, kind=ClockKind.BREACH_DECISION, at=now)
        CaseNote.objects.create(case=case, author=actor, text=reason.strip() or "—")
        add_event(
            case=case,
            kind=TimelineKind.BREACH_DECISION,
            actor=actor,
            at=now,
            data={"ico_notified": ico_notified, "subjects_told": subjects_told},
        )
    return case


def record_safeguarding_referral(*, case: Case, actor: User, reference: str) -> Case:
    """The referral to the local authority, with its reference. Stops the 24-hour clock."""
    from .access import Basis

    reference = reference.strip()
    if not reference:
        raise ConcernlineError(
            _("Give the local authority's reference."), extra={"reference": _("Required.")}
        )
    with transaction.atomic():
        case = _locked(case)
        _require(actor, case, {Basis.SAFEGUARDING, Basis.OWNER})
        if not case.safeguarding:
            raise IllegalTransition(_("This case has no safeguarding grounds."))
        if case.safeguarding_referred_at is not None:
            raise IllegalTransition(_("The referral is already recorded."))
        now = timezone.now()
        case.local_authority_reference = reference[:64]
        case.safeguarding_referred_at = now
        case.save()
        meet_clock(case=case, kind=ClockKind.SAFEGUARDING_REFERRAL, at=now)
        add_event(
            case=case,
            kind=TimelineKind.SAFEGUARDING_REFERRAL,
            actor=actor,
            at=now,
        )
    return case


def break_glass(*, case: Case, actor: User, reason: str, request=None) -> BreakGlass:
    """Open a case one has no basis for, for BREAK_GLASS_MINUTES, with a typed reason. Logged
    on the timeline and the access log; every DPO is emailed (reference and who, no content)."""
    from .access import may_break_glass

    reason = reason.strip()
    if len(reason) < 10:
        raise ConcernlineError(
            _("Say why you need to open this case."),
            extra={"reason": _("Give the reason in a sentence.")},
        )
    if not may_break_glass(actor):
        raise NotAllowed(_("You may not do that on this case."))
    minutes = int(getattr(settings, "BREAK_GLASS_MINUTES", 60))
    with transaction.atomic():
        now = timezone.now()
        glass = BreakGlass.objects.create(
            case=case, user=actor, reason=reason, expires_at=now + timedelta(minutes=minutes)
        )
        add_event(case=case, kind=TimelineKind.BREAK_GLASS, actor=actor, at=now)
        from .access import log_access

        log_access(
            user=actor, case=case, action="break_glass", basis="break_glass", request=request
        )
        for dpo in User.objects.filter(role=Role.DPO, is_active=True).exclude(email=""):
            # Each DPO in their own language.
            with translation.override(dpo.language):
                values = {
                    "ref": case.reference,
                    "name": actor.full_name,
                    "email": actor.email,
                    "when": formats.date_format(timezone.localtime(now), "j M Y H:i"),
                }
                subject = _("Concernline: break-glass access to case %(ref)s") % values
                body = (
                    _(
                        "%(name)s (%(email)s) used break-glass access to case %(ref)s at "
                        "%(when)s UK time. The reason is recorded in Concernline, in the "
                        "case's access log."
                    )
                    % values
                )
            transaction.on_commit(
                partial(send_mail, subject, body, None, [dpo.email], fail_silently=False)
            )
    return glass


# ---------------------------------------------------------------------------------------------
# Clocks: the beat task calls sweep_clocks().


def _clock_people(clock: CaseClock) -> list[User]:
    case = clock.case
    people = [p for p in (case.owner, case.reviewer) if p is not None]
    if clock.kind == ClockKind.BREACH_DECISION:
        people += list(User.objects.filter(role=Role.DPO, is_active=True))
    if clock.kind == ClockKind.SAFEGUARDING_REFERRAL:
        people += list(User.objects.filter(role=Role.SAFEGUARDING_LEAD, is_active=True))
    seen, unique = set(), []
    for person in people:
        if person.id not in seen and person.is_active:
            seen.add(person.id)
            unique.append(person)
    return unique


def _next_manager(clock: CaseClock, people: list[User], now) -> User | None:
    """Whoever is above the people on the clock: the first one's line manager, otherwise the
    on-call manager now, otherwise another manager. Never the case's reporter: the escalation
    opens the case to them."""
    passed_over = {p.id for p in people} | {clock.case.reporter_id}
    for person in people:
        manager = person.line_manager
        if manager is not None and manager.is_active and manager.id not in passed_over:
            return manager
    for person in on_call_kept(rota_id=None, when=now):
        if person.id not in passed_over:
            return person
    # Nobody on call, or everyone on call is already on the clock or reported the case: another
    # manager, so that a clock that ran out is never told to nobody.
    return _another_manager(passed_over=passed_over)


def _tell(people: list[User], *, clock: CaseClock, ran_out: bool) -> None:
    """SMS and email with the reference, which clock and when: nothing from the case. Each
    person in their own language."""
    for person in people:
        with translation.override(person.language):
            values = {
                "ref": clock.case.reference,
                "clock": clock.get_kind_display(),
                "due": formats.date_format(timezone.localtime(clock.due_at), "j M H:i"),
            }
            if ran_out:
                subject = _("Concernline: case %(ref)s clock ran out") % values
                body = _(
                    "Concernline: case %(ref)s, %(clock)s: clock ran out (due %(due)s). "
                    "Open Concernline to act."
                )
            else:
                subject = _("Concernline: case %(ref)s clock runs out soon") % values
                body = _(
                    "Concernline: case %(ref)s, %(clock)s: clock runs out soon (due %(due)s). "
                    "Open Concernline to act."
                )
            body = body % values
        queue_sms(recipient=person, body=body, topic=f"clock:{clock.id}")
        if person.email:
            transaction.on_commit(
                partial(send_mail, subject, body, None, [person.email], fail_silently=True)
            )


def due_clocks(now):
    """Running clocks owing a warning or an escalation at `now`."""
    return CaseClock.objects.filter(met_at__isnull=True).filter(
        Q(warned_at__isnull=True, warn_at__lte=now) | Q(breached_at__isnull=True, due_at__lte=now)
    )


def sweep_clocks(*, now=None) -> dict:
    """Warn before a clock runs out, escalate when it has. Each clock is handled under its row
    lock and marked, so a second sweep (or two beats at once) does nothing again."""
    now = now or timezone.now()
    # An acknowledgement the case never heard of meets its clock first: no false breach.
    done = {"acknowledgements_caught_up": catch_up_acknowledgements(), "warned": 0, "breached": 0}
    for clock_id in list(due_clocks(now).values_list("id", flat=True)):
        with transaction.atomic():
            clock = (
                CaseClock.objects.select_for_update(of=("self",))
                .select_related("case__owner__line_manager", "case__reviewer")
                .get(pk=clock_id)
            )
            if clock.met_at is not None:
                continue
            people = _clock_people(clock)
            if clock.due_at <= now and clock.breached_at is None:
                clock.breached_at = now
                manager = _next_manager(clock, people, now)
                clock.escalated_to = manager
                clock.save(update_fields=["breached_at", "escalated_to"])
                _tell(people + ([manager] if manager else []), clock=clock, ran_out=True)
                add_event(
                    case=clock.case,
                    kind=TimelineKind.CLOCK_BREACHED,
                    actor=None,
                    at=now,
                    data={
                        "clock": clock.kind,
                        "escalated_to_id": manager.id if manager else None,
                    },
                )
                done["breached"] += 1
            elif clock.warn_at <= now and clock.warned_at is None and clock.due_at > now:
                clock.warned_at = now
                clock.save(update_fields=["warned_at"])
                _tell(people, clock=clock, ran_out=False)
                add_event(
                    case=clock.case,
                    kind=TimelineKind.CLOCK_WARNED,
                    actor=None,
                    at=now,
                    data={"clock": clock.kind},
                )
                done["warned"] += 1
    return done


def _latest_alert(case: Case) -> Alert:
    alert = selectors.latest_alert(case)
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
        case = Case.objects.select_for_update(no_key=True).get(pk=case.pk)
        reassign_alert(alert=alert, actor=actor, to=to)
        case.owner = to
        case.save(update_fields=["owner"])
    return case
