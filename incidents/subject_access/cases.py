"""Finding the cases a subject is in, and writing each one out with its marks."""

import re
from dataclasses import dataclass, field

from oncall.models import Page
from oncall.selectors import owners_paged_to
from staff.models import User

from ..models import (
    AccessLogEntry,
    Attachment,
    BreakGlass,
    Case,
    CaseNote,
    CaseStatus,
    ClockKind,
    HRDecision,
    HRStage,
    Outcome,
    Report,
    ReportKind,
)
from ..selectors import name_people
from .marks import Marker, compile_names, mark
from .values import iso, label, safe_name

# Structured report fields that hold the name of a person (kind details, see services).
NAME_DETAILS = {"colleague": "the colleague named", "requester": "who asked for information"}


@dataclass
class Bundle:
    """What an export holds before it is written: JSON files, attachments and the cases read."""

    files: dict[str, object] = field(default_factory=dict)
    attachments: list[tuple[str, Attachment, str]] = field(default_factory=list)
    cases: list[Case] = field(default_factory=list)


def _texts_of_reports():
    """(case_id, every free-text value of the report) for every report, decrypted."""
    for report in Report.objects.only("case_id", "narrative", "details", "who_was_told").iterator(
        chunk_size=500
    ):
        values = [report.narrative, report.who_was_told]
        values += [v for v in (report.details or {}).values() if isinstance(v, str)]
        yield report.case_id, values


def _texts_of_notes():
    for note in CaseNote.objects.only("case_id", "text").iterator(chunk_size=500):
        yield note.case_id, [note.text]


def _cases_mentioning(pattern: re.Pattern) -> set[int]:
    """Cases whose report or notes mention `pattern`. Encrypted text cannot be searched in
    SQL, so each is decrypted and searched here."""
    found = set()
    for source in (_texts_of_reports(), _texts_of_notes()):
        for case_id, values in source:
            if case_id not in found and any(v and pattern.search(v) for v in values):
                found.add(case_id)
    return found


def staff_case_roles(subject: User) -> dict[int, set[str]]:
    """Each case the subject is in, and how: reporter, owner, reviewer, paged, note author,
    uploaded a file, a clock escalated to them, break-glass, or named in the text."""
    roles: dict[int, set[str]] = {}

    def add(ids, role):
        for case_id in ids:
            roles.setdefault(case_id, set()).add(role)

    add(Case.objects.filter(reporter=subject).values_list("id", flat=True), "reporter")
    add(Case.objects.filter(owner=subject).values_list("id", flat=True), "owner")
    add(Case.objects.filter(reviewer=subject).values_list("id", flat=True), "reviewer")
    add(
        Case.objects.filter(
            id__in=owners_paged_to(user=subject, owner_type=Case.ALERT_OWNER_TYPE)
        ).values_list("id", flat=True),
        "paged",
    )
    add(CaseNote.objects.filter(author=subject).values_list("case_id", flat=True), "note_author")
    add(
        Attachment.objects.filter(uploaded_by=subject).values_list("case_id", flat=True),
        "uploaded_a_file",
    )
    add(
        Case.objects.filter(clocks__escalated_to=subject).values_list("id", flat=True),
        "clock_escalated_to",
    )
    add(BreakGlass.objects.filter(user=subject).values_list("case_id", flat=True), "break_glass")
    pattern = compile_names([n for n in (subject.full_name, subject.email) if n])
    if pattern is not None:
        add(_cases_mentioning(pattern), "named_in_text")
    return roles


def service_user_case_ids(ref: str) -> set[int]:
    ids = set(Report.objects.filter(service_user_ref=ref).values_list("case_id", flat=True))
    return ids | _cases_mentioning(compile_names([ref]))


def load_cases(ids) -> list[Case]:
    return list(
        Case.objects.filter(id__in=ids)
        .select_related("reporter", "owner", "reviewer", "report")
        .prefetch_related(
            "notes__author",
            "attachments__uploaded_by",
            "timeline__actor",
            "clocks__escalated_to",
            "break_glasses__user",
        )
        .order_by("created_at", "id")
    )


def third_party_names(cases: list[Case]) -> list[str]:
    """Every name the system can recognise: staff accounts, the names given in reports'
    structured fields, and service-user references."""
    names = list(User.objects.values_list("full_name", flat=True))
    names += list(
        Report.objects.exclude(service_user_ref="").values_list("service_user_ref", flat=True)
    )
    for case in cases:
        report = case.report
        names.append(report.who_was_told)
        names += [report.details.get(key, "") for key in NAME_DETAILS]
    return [n for n in names if isinstance(n, str)]


def _case_json(case: Case, *, why: list[str], m: Marker, pages, log_rows, bundle) -> dict:
    report = case.report
    # In a staff export, a case the subject only handled is about others.
    not_theirs = m.subject_user is not None and not {"reporter", "named_in_text"} & set(why)
    is_reporter = m.subject_user is not None and case.reporter_id == m.subject_user.pk
    reporter_words = "the reporter's words" if not is_reporter else ""
    details = {}
    for key, value in (report.details or {}).items():
        if key in NAME_DETAILS and isinstance(value, str):
            details[key] = m.name_field(value, str(NAME_DETAILS[key]))
        elif isinstance(value, str):
            details[key] = m.text(value, not_about_subject=not_theirs)
        else:
            details[key] = value
    attachments = []
    for attachment in case.attachments.all():
        path = f"attachments/{case.reference}/{attachment.id}-{safe_name(attachment.original_name)}"
        bundle.attachments.append((path, attachment, case.reference))
        attachments.append(
            {
                "file": mark(
                    path,
                    "file contents are not checked automatically: review the file itself",
                ),
                # A file's name says what it holds ("Mrs X care plan.pdf"): content about
                # others in a case the subject only handled, as the report's own words are.
                "original_name": m.text(attachment.original_name, not_about_subject=not_theirs),
                "content_type": attachment.content_type,
                "size": attachment.size,
                "sha256": attachment.sha256,
                "uploaded_by": m.person(attachment.uploaded_by, "uploaded the file"),
                "at": iso(attachment.at),
            }
        )
    return {
        "reference": case.reference,
        "why_included": why,
        "kind": case.kind,
        "kind_label": label(ReportKind.choices, case.kind),
        "urgent": case.urgent,
        "status": case.status,
        "status_label": label(CaseStatus.choices, case.status),
        "reported_at": iso(case.created_at),
        "reporter": m.person(case.reporter, "reporter"),
        "owner": m.person(case.owner, "case owner"),
        "reviewer": m.person(case.reviewer, "reviewer"),
        "acknowledged_at": iso(case.acknowledged_at),
        "review_started_at": iso(case.review_started_at),
        "outcome": case.outcome,
        "outcome_label": label(Outcome.choices, case.outcome),
        "outcome_at": iso(case.outcome_at),
        "closed_at": iso(case.closed_at),
        "referred_at": iso(case.referred_at),
        "hr_stage": case.hr_stage,
        "hr_stage_label": label(HRStage.choices, case.hr_stage),
        "hearing_at": iso(case.hearing_at),
        "hr_decision": case.hr_decision,
        "hr_decision_label": label(HRDecision.choices, case.hr_decision),
        "safeguarding": case.safeguarding,
        "personal_data_breach": case.personal_data_breach,
        "ico_notified": case.ico_notified,
        "people_affected_told": case.subjects_told,
        "breach_decided_at": iso(case.breach_decided_at),
        "local_authority_reference": _local_authority_reference(case, m),
        "safeguarding_referred_at": iso(case.safeguarding_referred_at),
        "anonymised_at": iso(case.anonymised_at),
        "report": {
            "narrative": m.text(
                report.narrative, written_by=reporter_words, not_about_subject=not_theirs
            ),
            "grounds": report.grounds,
            "service_user_ref": m.service_user_ref(report.service_user_ref),
            "who_was_told": m.name_field(report.who_was_told, "who received the information"),
            "representative_consulted": report.representative_consulted,
            "emergency_services_called": report.emergency_services_called,
            "details": details,
            "created_at": iso(report.created_at),
        },
        "notes": [
            {
                "author": m.person(note.author, "wrote the note"),
                "from_reporter": note.from_reporter,
                "text": _note_text(note, m, not_theirs),
                "at": iso(note.at),
            }
            for note in case.notes.all()
        ],
        "attachments": attachments,
        "timeline": [
            {
                "kind": event.kind,
                "label": event.get_kind_display(),
                "at": iso(event.at),
                "by": m.person(event.actor, "acted on the case"),
                "data": m.data(event.data),
                "person": (
                    m.person(event.person, "named in the timeline") if event.person else None
                ),
            }
            for event in case.timeline.all()
        ],
        "clocks": [
            {
                "kind": clock.kind,
                "label": label(ClockKind.choices, clock.kind),
                "started_at": iso(clock.started_at),
                "due_at": iso(clock.due_at),
                "met_at": iso(clock.met_at),
                "warned_at": iso(clock.warned_at),
                "ran_out_at": iso(clock.breached_at),
                "escalated_to": m.person(clock.escalated_to, "clock escalated to them"),
            }
            for clock in case.clocks.all()
        ],
        "pages": [
            {
                "to": m.person(page.recipient, "paged for the case"),
                "step": page.step,
                "reason": page.reason,
                "importance": page.importance,
                "at": iso(page.created_at),
            }
            for page in pages.get(case.id, [])
        ],
        "break_glass": [
            {
                "by": m.person(glass.user, "broke the glass"),
                "reason": m.text(glass.reason),
                "at": iso(glass.at),
                "expires_at": iso(glass.expires_at),
            }
            for glass in case.break_glasses.all()
        ],
        "access_log": [
            {
                "at": iso(entry.at),
                "who": m.person(entry.user, "looked at the case"),
                "action": entry.action,
                "action_label": entry.get_action_display(),
                "basis": entry.basis,
            }
            for entry in log_rows.get(case.id, [])
        ],
    }


def _local_authority_reference(case: Case, m: Marker):
    """The local authority's reference for a safeguarding referral: it leads to the service
    user's record there, so it is theirs, and marked unless they are the subject."""
    value = case.local_authority_reference
    if not value or (m.subject_ref and case.report.service_user_ref == m.subject_ref):
        return value
    return mark(value, "the local authority's reference for a service user's safeguarding referral")


def _note_text(note: CaseNote, m: Marker, not_theirs: bool):
    by_subject = m.subject_user is not None and note.author_id == m.subject_user.pk
    return m.text(
        note.text,
        written_by="" if by_subject else "written by someone else",
        not_about_subject=not_theirs and not by_subject,
    )


def cases_json(cases: list[Case], roles: dict[int, set[str]], m: Marker, bundle) -> list[dict]:
    ids = [case.id for case in cases]
    # The people timeline data names by staff id (paged, made reviewer...), in one query.
    name_people([event for case in cases for event in case.timeline.all()])
    pages: dict[int, list] = {}
    for page in (
        Page.objects.filter(alert__owner_type=Case.ALERT_OWNER_TYPE, alert__owner_id__in=ids)
        .select_related("recipient", "alert")
        .order_by("created_at", "id")
    ):
        pages.setdefault(page.alert.owner_id, []).append(page)
    log_rows: dict[int, list] = {}
    for entry in (
        AccessLogEntry.objects.filter(case_id__in=ids).select_related("user").order_by("at", "id")
    ):
        log_rows.setdefault(entry.case_id, []).append(entry)
    return [
        _case_json(
            case,
            why=sorted(roles.get(case.id, set())),
            m=m,
            pages=pages,
            log_rows=log_rows,
            bundle=bundle,
        )
        for case in cases
    ]
