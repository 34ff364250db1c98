"""Subject access (UK GDPR article 15): everything Concernline holds about one member of staff
or one service-user reference, as one ZIP for the DPO, with every third party marked for
redaction review.

`export_subject_access()` is the one entry point (the DPO's page and the
`subject_access_export` command both call it). It refuses anyone but the DPO, finds the
subject, reads what is held, records a `SubjectAccessExport` (who, why, which cases) and one
access-log row per case read (through incidents.access, action "subject_access", path naming
the export), then writes the ZIP. The ZIP is the information-governance officer's review copy,
never what goes to the requester as it stands: see README.txt inside it.

A third party is marked where the system can recognise one: another member of staff (by
account), a name given in a structured field of a report (the colleague, who asked, who was
told), another service-user reference, and those names wherever they appear in free text. A
mark replaces the value in place with
`{"value": ..., "redaction_review": true, "reason": ..., "third_parties": [...]}` and is
listed again, with its JSON pointer, in redactions.json.
"""

import hashlib
import json
import re
import tempfile
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from cryptography.fernet import InvalidToken
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from config.errors import ConcernlineError
from staff.models import Role, User

from . import access
from .models import (
    AccessAction,
    AccessLogEntry,
    Attachment,
    BreakGlass,
    Case,
    CaseNote,
    Report,
    SubjectAccessExport,
    SubjectKind,
)

# The access-log basis of every row an export writes: the DPO's statutory duty to answer.
BASIS = "subject_access"
REASON_MIN_LENGTH = 10
# Exports are built in memory up to this size, then in a temporary file.
SPOOL_BYTES = 32 * 1024 * 1024
# Structured report fields that hold the name of a person (kind details, see services).
NAME_DETAILS = {"colleague": "the colleague named", "requester": "who asked for information"}


class SubjectAccessRefused(ConcernlineError):
    status_code = 403
    code = "forbidden"


class SubjectAccessInvalid(ConcernlineError):
    """Bad input: `extra` maps the form field (staff, service_user_ref, reason) to the message."""

    status_code = 400
    code = "invalid"


def may_export(user: User) -> bool:
    return access.may_export_subject_access(user)


def normalise_ref(ref: str) -> str:
    """Service-user references are stored stripped and upper-case (services.submit_report)."""
    return (ref or "").strip().upper()


# -- Marks ---------------------------------------------------------------------------------


def mark(value, reason: str, third_parties=None) -> dict:
    marked = {"value": value, "redaction_review": True, "reason": reason}
    if third_parties:
        marked["third_parties"] = sorted(set(third_parties))
    return marked


def _name_pattern(name: str) -> str:
    words = name.split()
    return r"(?<!\w)" + r"\s+".join(re.escape(w) for w in words) + r"(?!\w)"


def _compile(names) -> re.Pattern | None:
    names = sorted({n.strip() for n in names if n and n.strip()}, key=len, reverse=True)
    if not names:
        return None
    return re.compile("|".join(_name_pattern(n) for n in names), re.IGNORECASE)


class Marker:
    """Decides what is the subject's and what is someone else's, and marks the latter."""

    def __init__(self, *, subject_user: User | None, subject_ref: str, third_party_names):
        self.subject_user = subject_user
        self.subject_ref = subject_ref
        own = []
        if subject_user is not None:
            own = [n for n in (subject_user.full_name, subject_user.email) if n]
        if subject_ref:
            own.append(subject_ref)
        self._own = _compile(own)
        # Matched case-insensitively; reported in the spelling the text uses.
        self._others = _compile(
            n for n in third_party_names if not self.is_subject_text(n) and len(n.strip()) > 1
        )

    def is_subject_text(self, text: str) -> bool:
        return bool(text) and self._own is not None and bool(self._own.search(text))

    def third_parties_in(self, text: str) -> list[str]:
        """Names of others in `text`, leaving out any that are part of the subject's own
        name (another "Sam" inside "Sam Jones" is not a third party)."""
        if not text or self._others is None:
            return []
        own = [m.span() for m in self._own.finditer(text)] if self._own else []
        return sorted(
            {
                m.group(0)
                for m in self._others.finditer(text)
                if not any(start <= m.start() and m.end() <= end for start, end in own)
            }
        )

    def person(self, user: User | None, what: str):
        """A member of staff: the subject plainly, anyone else marked."""
        if user is None:
            return None
        name = user.full_name or user.email
        if self.subject_user is not None and user.pk == self.subject_user.pk:
            return name
        return mark(name, f"another member of staff ({what})")

    def text(self, text: str, *, written_by: str = "", not_about_subject: bool = False):
        """Free text: marked when it names a third party the system knows, or, in a staff
        export, when it is content about others the subject only handled."""
        if not text:
            return text
        found = self.third_parties_in(text)
        if not_about_subject:
            return mark(
                text,
                "content about others: the subject handled this case, it is not about them",
                found,
            )
        if found:
            reason = "free text naming third parties"
            if written_by:
                reason = f"{reason} ({written_by})"
            return mark(text, reason, found)
        return text

    def name_field(self, value: str, what: str):
        """A structured field that names a person: marked unless it names the subject."""
        if not value or self.is_subject_text(value):
            return value
        return mark(value, f"third party named in the report ({what})")

    def service_user_ref(self, ref: str):
        if not ref or ref == self.subject_ref:
            return ref
        return mark(ref, "service user reference (a third party)")

    def data(self, value):
        """Timeline data and the like: any string naming a third party is marked."""
        if isinstance(value, dict):
            return {k: self.data(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.data(v) for v in value]
        if isinstance(value, str):
            found = self.third_parties_in(value)
            if found:
                return mark(value, "names a third party", found)
        return value


# -- Values --------------------------------------------------------------------------------


def iso(value):
    """Datetimes in UTC (ISO 8601, to the second); dates as YYYY-MM-DD."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _label(choices, value) -> str:
    return str(dict(choices).get(value, value)) if value else ""


def _safe_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name or "file").strip("._") or "file"
    return cleaned[:120]


# -- Finding the subject's cases -------------------------------------------------------------


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


def _staff_case_roles(subject: User) -> dict[int, set[str]]:
    """Each case the subject is in, and how: reporter, owner, reviewer, paged, note author,
    uploaded a file, a clock escalated to them, break-glass, or named in the text."""
    from oncall.selectors import owners_paged_to

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
    pattern = _compile([n for n in (subject.full_name, subject.email) if n])
    if pattern is not None:
        add(_cases_mentioning(pattern), "named_in_text")
    return roles


def _service_user_case_ids(ref: str) -> set[int]:
    ids = set(Report.objects.filter(service_user_ref=ref).values_list("case_id", flat=True))
    return ids | _cases_mentioning(_compile([ref]))


def _load_cases(ids) -> list[Case]:
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


def _third_party_names(cases: list[Case]) -> list[str]:
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


# -- Serialising a case --------------------------------------------------------------------


def _case_json(case: Case, *, why: list[str], m: Marker, pages, log_rows, bundle) -> dict:
    from .models import CaseStatus, ClockKind, HRDecision, HRStage, Outcome, ReportKind

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
        path = (
            f"attachments/{case.reference}/{attachment.id}-{_safe_name(attachment.original_name)}"
        )
        bundle.attachments.append((path, attachment, case.reference))
        attachments.append(
            {
                "file": mark(
                    path,
                    "file contents are not checked automatically: review the file itself",
                ),
                "original_name": m.text(attachment.original_name),
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
        "kind_label": _label(ReportKind.choices, case.kind),
        "urgent": case.urgent,
        "status": case.status,
        "status_label": _label(CaseStatus.choices, case.status),
        "reported_at": iso(case.created_at),
        "reporter": m.person(case.reporter, "reporter"),
        "owner": m.person(case.owner, "case owner"),
        "reviewer": m.person(case.reviewer, "reviewer"),
        "acknowledged_at": iso(case.acknowledged_at),
        "review_started_at": iso(case.review_started_at),
        "outcome": case.outcome,
        "outcome_label": _label(Outcome.choices, case.outcome),
        "outcome_at": iso(case.outcome_at),
        "closed_at": iso(case.closed_at),
        "referred_at": iso(case.referred_at),
        "hr_stage": case.hr_stage,
        "hr_stage_label": _label(HRStage.choices, case.hr_stage),
        "hearing_at": iso(case.hearing_at),
        "hr_decision": case.hr_decision,
        "hr_decision_label": _label(HRDecision.choices, case.hr_decision),
        "safeguarding": case.safeguarding,
        "personal_data_breach": case.personal_data_breach,
        "ico_notified": case.ico_notified,
        "people_affected_told": case.subjects_told,
        "breach_decided_at": iso(case.breach_decided_at),
        "local_authority_reference": case.local_authority_reference,
        "safeguarding_referred_at": iso(case.safeguarding_referred_at),
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
            }
            for event in case.timeline.all()
        ],
        "clocks": [
            {
                "kind": clock.kind,
                "label": _label(ClockKind.choices, clock.kind),
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


def _note_text(note: CaseNote, m: Marker, not_theirs: bool):
    by_subject = m.subject_user is not None and note.author_id == m.subject_user.pk
    return m.text(
        note.text,
        written_by="" if by_subject else "written by someone else",
        not_about_subject=not_theirs and not by_subject,
    )


def _cases_json(cases: list[Case], roles: dict[int, set[str]], m: Marker, bundle) -> list[dict]:
    from oncall.models import Page

    ids = [case.id for case in cases]
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


# -- A member of staff ---------------------------------------------------------------------


def _account_json(subject: User, m: Marker) -> dict:
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog
    from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from notifications.models import ContactPreferences

    prefs = ContactPreferences.objects.filter(user=subject).first()

    def sign_ins(model, *extra):
        rows = model.objects.filter(username__iexact=subject.email).order_by("attempt_time")
        return [
            {
                "at": iso(row.attempt_time),
                "ip_address": row.ip_address,
                "browser": row.user_agent,
                "path": row.path_info,
                **{name: iso(getattr(row, name)) for name in extra},
            }
            for row in rows
        ]

    return {
        "account": {
            "email": subject.email,
            "full_name": subject.full_name,
            "role": subject.role,
            "role_label": _label(Role.choices, subject.role),
            "mobile_phone": str(subject.phone) if subject.phone else "",
            "team": subject.team.name if subject.team else None,
            "line_manager": m.person(subject.line_manager, "line manager"),
            "language": subject.language,
            "employee_or_volunteer": subject.engagement,
            "active": subject.is_active,
            "admin_site_access": subject.is_staff,
            "date_joined": iso(subject.date_joined),
            "last_sign_in": iso(subject.last_login),
        },
        "two_step_sign_in": {
            "authenticator_apps": [
                {
                    "name": device.name,
                    "confirmed": device.confirmed,
                    "created_at": iso(device.created_at),
                    "last_used_at": iso(device.last_used_at),
                }
                for device in TOTPDevice.objects.filter(user=subject).order_by("id")
            ],
            "recovery_codes_left": StaticToken.objects.filter(
                device__in=StaticDevice.objects.filter(user=subject)
            ).count(),
        },
        "api_tokens": [
            {
                "name": token.name,
                "starts_with": token.prefix,
                "created_at": iso(token.created_at),
                "expires_at": iso(token.expires_at),
                "last_used_at": iso(token.last_used_at),
                "revoked_at": iso(token.revoked_at),
                "revoked_by": m.person(token.revoked_by, "revoked the token"),
            }
            for token in subject.api_tokens.select_related("revoked_by").order_by("created_at")
        ],
        "paging_preferences": {
            "important": prefs.important_rule if prefs else None,
            "normal": prefs.normal_rule if prefs else None,
            "sms_stopped": prefs.sms_opted_out if prefs else False,
            "updated_at": iso(prefs.updated_at) if prefs else None,
            "note": "" if prefs else "none saved: the defaults apply",
        },
        "sign_ins": sign_ins(AccessLog, "logout_time"),
        "failed_sign_ins": sign_ins(AccessFailureLog),
        "sign_in_lockout_counters": sign_ins(AccessAttempt),
    }


def _paging_json(subject: User, m: Marker) -> dict:
    from notifications.models import InboundMessage, NotificationAttempt, PageRequest
    from oncall.models import (
        Alert,
        EscalationStep,
        HandoffReminder,
        LayerMember,
        Page,
        PersonalFeed,
        RotaOverride,
    )

    phone = str(subject.phone) if subject.phone else ""
    to = [v for v in (phone, subject.email) if v]
    attempts = (
        NotificationAttempt.objects.filter(Q(recipient=subject) | Q(to__in=to))
        .select_related("recipient")
        .prefetch_related("status_changes")
        .order_by("created_at", "id")
    )
    inbound = InboundMessage.objects.filter(
        Q(sender=subject) | (Q(from_number=phone) if phone else Q(pk__in=[]))
    ).order_by("received_at", "id")
    return {
        "rota_turns": [
            {"rota": member.layer.rota.name, "layer": member.layer.name, "order": member.position}
            for member in LayerMember.objects.filter(person=subject).select_related("layer__rota")
        ],
        "rotas_owned": list(subject.owned_rotas.values_list("name", flat=True)),
        "cover_overrides": [
            {
                "rota": o.rota.name,
                "from": iso(o.starts_at),
                "until": iso(o.ends_at),
                "reason": m.text(o.reason),
                "made_by": m.person(o.created_by, "made the override"),
                "made_at": iso(o.created_at),
            }
            for o in RotaOverride.objects.filter(person=subject)
            .select_related("rota", "created_by")
            .order_by("starts_at")
        ],
        "personal_calendar_feed": PersonalFeed.objects.filter(person=subject).exists(),
        "handover_reminders": [
            {"rota": r.rota.name, "shift_starts_at": iso(r.starts_at), "sent_at": iso(r.created_at)}
            for r in HandoffReminder.objects.filter(person=subject)
            .select_related("rota")
            .order_by("created_at")
        ],
        "named_in_escalation_policies": [
            {"policy": s.policy.name, "step": s.position, "kind": s.kind}
            for s in EscalationStep.objects.filter(person=subject).select_related("policy")
        ],
        "alert_pages": [
            {
                "case_reference": page.alert.reference,
                "title": page.alert.title,
                "step": page.step,
                "reason": page.reason,
                "importance": page.importance,
                "due_at": iso(page.due_at),
                "at": iso(page.created_at),
                "every_channel_failed_at": iso(page.exhausted_at),
            }
            for page in Page.objects.filter(recipient=subject)
            .select_related("alert")
            .order_by("created_at", "id")
        ],
        "alerts_acknowledged": [
            {
                "case_reference": alert.reference,
                "at": iso(alert.acknowledged_at),
                "how": alert.acknowledged_via,
            }
            for alert in Alert.objects.filter(acknowledged_by=subject).order_by("acknowledged_at")
        ],
        "page_requests": [
            {
                "reply_code": request.code,
                "case_reference": request.reference,
                "title": request.title,
                "importance": request.importance,
                "at": iso(request.created_at),
                "first_sent_at": iso(request.first_sent_at),
                "first_delivered_at": iso(request.first_delivered_at),
                "acknowledged_at": iso(request.acknowledged_at),
                "acknowledged_how": request.acknowledged_via,
                "closed_at": iso(request.closed_at),
            }
            for request in PageRequest.objects.filter(recipient=subject).order_by("created_at")
        ],
        "messages_sent": [
            {
                "to_person": m.person(attempt.recipient, "the number or address was theirs"),
                "channel": attempt.channel,
                "to": attempt.to,
                "text": attempt.body,
                "about": attempt.topic,
                "status": attempt.status,
                "error_code": attempt.error_code,
                "error": attempt.error_message,
                "answered_by": attempt.answered_by,
                "key_pressed": attempt.digits,
                "at": iso(attempt.created_at),
                "statuses": [
                    {"status": c.status, "at": iso(c.at), "error_code": c.error_code}
                    for c in attempt.status_changes.all()
                ],
            }
            for attempt in attempts
        ],
        "messages_received": [
            {
                "from": message.from_number,
                "text": message.body,
                "our_answer": message.reply,
                "at": iso(message.received_at),
            }
            for message in inbound
        ],
    }


def _guidance_json(subject: User, m: Marker) -> dict:
    from staff.models import GuidanceAcknowledgement, GuidanceQuestion, TeamExport

    return {
        "guidance_signed": [
            {
                "document": s.document.title,
                "version": s.document.version,
                "for": s.document.audience,
                "confirmed_at": iso(s.confirmed_at),
            }
            for s in GuidanceAcknowledgement.objects.filter(user=subject)
            .select_related("document")
            .order_by("confirmed_at")
        ],
        "guidance_questions": [
            {
                "document": q.document.title,
                "version": q.document.version,
                "question": m.text(q.question),
                "asked_at": iso(q.asked_at),
                "to": m.person(q.manager, "line manager asked"),
                "discussed_at": iso(q.discussed_at),
                "discussed_by": m.person(q.discussed_by, "discussed the question"),
            }
            for q in GuidanceQuestion.objects.filter(asked_by=subject)
            .select_related("document", "manager", "discussed_by")
            .order_by("asked_at")
        ],
        "training": [
            {
                "level": t.level.name,
                "due_on": iso(t.due_on),
                "assigned_by": m.person(t.assigned_by, "assessed the training"),
                "assigned_at": iso(t.assigned_at),
                "completed_on": iso(t.completed_on),
                "completion_recorded_by": m.person(
                    t.completed_recorded_by, "recorded the completion"
                ),
                "completion_recorded_at": iso(t.completed_recorded_at),
                "reminders": [
                    {"due_on": iso(r.due_on), "period": r.period, "sent_at": iso(r.sent_at)}
                    for r in t.reminders.all()
                ],
            }
            for t in subject.training.select_related(
                "level", "assigned_by", "completed_recorded_by"
            ).prefetch_related("reminders")
        ],
        "team_lists_downloaded": [
            {"team": e.team.name if e.team else None, "rows": e.rows, "at": iso(e.at)}
            for e in TeamExport.objects.filter(actor=subject).select_related("team")
        ],
    }


def _access_json(subject: User, m: Marker) -> dict:
    return {
        "cases_looked_at": [
            {
                "case_reference": entry.case.reference,
                "at": iso(entry.at),
                "action": entry.action,
                "action_label": entry.get_action_display(),
                "basis": entry.basis,
                "path": entry.path,
                "ip_address": entry.ip_address,
            }
            for entry in AccessLogEntry.objects.filter(user=subject)
            .select_related("case")
            .order_by("at", "id")
        ],
        "break_glass": [
            {
                "case_reference": glass.case.reference,
                "reason": m.text(glass.reason),
                "at": iso(glass.at),
                "expires_at": iso(glass.expires_at),
            }
            for glass in BreakGlass.objects.filter(user=subject)
            .select_related("case")
            .order_by("at")
        ],
    }


def collect_for_staff(subject: User) -> Bundle:
    roles = _staff_case_roles(subject)
    cases = _load_cases(roles)
    m = Marker(subject_user=subject, subject_ref="", third_party_names=_third_party_names(cases))
    bundle = Bundle(cases=cases)
    bundle.files["subject.json"] = _account_json(subject, m)
    bundle.files["cases.json"] = _cases_json(cases, roles, m, bundle)
    bundle.files["paging.json"] = _paging_json(subject, m)
    bundle.files["guidance_and_training.json"] = _guidance_json(subject, m)
    bundle.files["access_log.json"] = _access_json(subject, m)
    return bundle


def collect_for_service_user(ref: str) -> Bundle:
    ids = _service_user_case_ids(ref)
    cases = _load_cases(ids)
    roles = {
        case.id: {
            "service_user_reference" if case.report.service_user_ref == ref else "named_in_text"
        }
        for case in cases
    }
    m = Marker(subject_user=None, subject_ref=ref, third_party_names=_third_party_names(cases))
    bundle = Bundle(cases=cases)
    bundle.files["subject.json"] = {
        "service_user_reference": ref,
        "cases": [case.reference for case in cases],
    }
    bundle.files["cases.json"] = _cases_json(cases, roles, m, bundle)
    return bundle


# -- Writing the ZIP -----------------------------------------------------------------------


def redactions_in(files: dict[str, object]) -> list[dict]:
    """Every mark, as (file, JSON pointer (RFC 6901), reason, value): the reviewer's list."""
    found = []

    def walk(value, file, pointer):
        if isinstance(value, dict):
            if value.get("redaction_review") is True and "value" in value:
                entry = {"file": file, "path": pointer, "reason": value["reason"]}
                if value.get("third_parties"):
                    entry["third_parties"] = value["third_parties"]
                entry["value"] = value["value"]
                found.append(entry)
                return
            for key, inner in value.items():
                token = str(key).replace("~", "~0").replace("/", "~1")
                walk(inner, file, f"{pointer}/{token}")
        elif isinstance(value, list):
            for index, inner in enumerate(value):
                walk(inner, file, f"{pointer}/{index}")

    for name, data in files.items():
        walk(data, name, "")
    return found


def _json_bytes(data) -> bytes:
    text = json.dumps(data, ensure_ascii=False, indent=2, cls=DjangoJSONEncoder)
    return (text + "\n").encode("utf-8")


README = """Concernline subject access export {export_id}
{rule}

Subject:        {subject}
Made:           {made_at} (UTC) by {made_by}, {via}
Reason given:   {reason}
Cases included: {case_count}{case_list}
Marks for redaction review: {mark_count} (see redactions.json)

THIS IS THE REVIEW COPY. Do not send it to the requester as it stands: first work
through every entry in redactions.json and decide, for each, whether to disclose,
redact or withhold it (UK GDPR art. 15(4); DPA 2018 sch. 2 para. 16, information
about other individuals).

Files
{file_list}

How the marks work
Where a value may identify someone other than the subject, it is replaced in place by

    {{"value": <the original>, "redaction_review": true, "reason": "<why>",
     "third_parties": [<the names found, for free text>]}}

redactions.json lists every mark again as {{"file", "path", "reason", "value"}}, where
"path" is a JSON pointer (RFC 6901) into that file, e.g. /0/report/narrative is the
narrative of the first case in cases.json. Values not marked are the subject's own
data or carry no other person's identity.

Marked automatically: other members of staff (every account's name), names given in a
report's structured fields (the colleague named, who asked for information, who received
it), other service users' references, those names wherever they appear in free text,
every attached file (its contents are not read), and, in a staff export, the content of
cases the subject only handled (owner, reviewer, paged) rather than reported or was named
in. Not found automatically: people the system has no record of, nicknames or first
names alone, and descriptions that identify someone without naming them. Read every
free-text field and every file before disclosing.

Conventions: UTF-8 JSON; times in UTC as ISO 8601 (2026-11-30T14:05:00+00:00); dates as
YYYY-MM-DD; codes (kind, status, outcome) with an English label beside them. Attachments
are decrypted copies, byte for byte as uploaded; each one's sha256 is in cases.json.
Reading this export was recorded in each case's access log (action "subject_access",
path ending ?export={export_id}).
"""


def _readme(export: SubjectAccessExport, bundle: Bundle, subject: str, file_lines, marks) -> str:
    refs = [case.reference for case in bundle.cases]
    return README.format(
        export_id=export.pk,
        rule="=" * 44,
        subject=subject,
        made_at=iso(export.at),
        made_by=f"{export.requested_by.full_name} <{export.requested_by.email}>",
        via=_via_words(export.via),
        reason=export.reason.replace("\n", " "),
        case_count=len(refs),
        case_list=(": " + ", ".join(refs)) if refs else "",
        mark_count=marks,
        file_list="\n".join(file_lines),
    )


def _via_words(via: str) -> str:
    return "from the Concernline page" if via == "page" else "with manage.py subject_access_export"


FILE_NOTES = {
    "README.txt": "this file",
    "manifest.json": "the export: who, when, why, and every file's size and sha256",
    "redactions.json": "every value marked for redaction review, with where it is",
    "subject.json": "the subject: account, sign-ins, paging preferences (staff); the reference",
    "cases.json": "each case the subject is in and why: report, notes, timeline, access log",
    "paging.json": "rotas, pages and alerts, every SMS, call and email to them or their number",
    "guidance_and_training.json": "guidance signed, questions asked, training",
    "access_log.json": "the cases they looked at, and any break-glass",
}


def write_zip(out, *, export: SubjectAccessExport, bundle: Bundle, subject: str) -> dict:
    """Write the export to the file object `out`; returns counts for the export record."""
    from .services import read_attachment

    manifest_files = []
    file_lines = []
    marks = redactions_in(bundle.files)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:

        def put(name: str, data: bytes, note: str) -> None:
            archive.writestr(name, data)
            manifest_files.append(
                {"name": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            )
            file_lines.append(f"  {name:<28} {note}")

        for name, data in bundle.files.items():
            put(name, _json_bytes(data), FILE_NOTES.get(name, ""))
        put("redactions.json", _json_bytes(marks), FILE_NOTES["redactions.json"])
        missing = []
        for path, attachment, reference in bundle.attachments:
            try:
                contents = read_attachment(attachment)
            except InvalidToken:
                contents = None  # no key listed opens it (rotate_keys names such files)
            if contents is None:
                missing.append(path)
                continue
            put(path, contents, f"an attachment of case {reference}")
        manifest = {
            "export_id": export.pk,
            "made_at": iso(export.at),
            "made_by": {
                "name": export.requested_by.full_name,
                "email": export.requested_by.email,
            },
            "via": export.via,
            "reason": export.reason,
            "subject": {
                "kind": export.subject_kind,
                "email": export.subject_user.email if export.subject_user else None,
                "service_user_reference": export.service_user_ref or None,
            },
            "cases": [case.reference for case in bundle.cases],
            "redaction_marks": len(marks),
            "attachments_missing": missing,
            "files": list(manifest_files),
        }
        file_lines.insert(0, f"  {'manifest.json':<28} {FILE_NOTES['manifest.json']}")
        file_lines.insert(0, f"  {'README.txt':<28} {FILE_NOTES['README.txt']}")
        archive.writestr("manifest.json", _json_bytes(manifest))
        readme = _readme(export, bundle, subject, file_lines, len(marks))
        archive.writestr("README.txt", readme.encode("utf-8"))
    return {"files": len(manifest_files) + 2, "redaction_marks": len(marks)}


# -- The use case --------------------------------------------------------------------------


@dataclass
class Export:
    record: SubjectAccessExport
    file: object  # a file object positioned at 0, holding the ZIP
    filename: str


def find_staff_member(email: str) -> User:
    email = (email or "").strip()
    user = User.objects.filter(email__iexact=email).first() if email else None
    if user is None:
        raise SubjectAccessInvalid(
            _("No member of staff has that email address."),
            extra={"staff": _("No member of staff has that email address.")},
        )
    return user


def export_subject_access(
    *,
    actor: User,
    reason: str,
    staff: User | None = None,
    service_user_ref: str = "",
    via: str,
    request: HttpRequest | None = None,
) -> Export:
    """Everything held about `staff` or `service_user_ref`, as a ZIP, for the DPO `actor`.

    Refuses anyone but the DPO (SubjectAccessRefused); bad input raises SubjectAccessInvalid
    with the field it concerns. The export record and one access-log row per case commit
    together before the ZIP is written, so a read is never left unrecorded."""
    if not may_export(actor):
        raise SubjectAccessRefused(
            _("Only the data protection officer can export what Concernline holds about someone.")
        )
    reason = (reason or "").strip()
    ref = normalise_ref(service_user_ref)
    errors = {}
    if len(reason) < REASON_MIN_LENGTH:
        errors["reason"] = _("Say why, e.g. the request's date and your reference for it.")
    if (staff is None) == (not ref):
        errors["staff"] = _("Choose a member of staff or enter a service user reference.")
    elif staff is not None and staff.pk == actor.pk:
        errors["staff"] = _(
            "You cannot export your own data: another data protection officer must do it."
        )
    elif ref and (len(ref) > 32 or not re.fullmatch(r"[A-Z0-9][A-Z0-9 /._-]*", ref)):
        errors["service_user_ref"] = _("Enter a service user reference, e.g. SU-1042.")
    if errors:
        raise SubjectAccessInvalid(next(iter(errors.values())), extra=errors)

    # Labels and reasons inside the export are in English, whoever asks.
    with translation.override("en"):
        if staff is not None:
            bundle = collect_for_staff(staff)
            subject = f"{staff.full_name} <{staff.email}> (member of staff)"
        else:
            bundle = collect_for_service_user(ref)
            subject = f"service user reference {ref}"
    if staff is None and not bundle.cases:
        message = _("No report or note mentions that service user reference.")
        raise SubjectAccessInvalid(message, extra={"service_user_ref": message})

    with translation.override("en"):
        with transaction.atomic():
            record = SubjectAccessExport.objects.create(
                requested_by=actor,
                subject_kind=SubjectKind.STAFF if staff is not None else SubjectKind.SERVICE_USER,
                subject_user=staff,
                service_user_ref=ref,
                reason=reason,
                via=via,
                case_references=[case.reference for case in bundle.cases],
            )
            # The path names the export, so each row leads to its recorded reason.
            where = request.path if request is not None else "manage.py subject_access_export"
            access.log_many(
                user=actor,
                cases=bundle.cases,
                action=AccessAction.SUBJECT_ACCESS,
                basis=BASIS,
                request=request,
                path=f"{where}?export={record.pk}",
            )

        # Handed to the caller (the response or the command), which closes it.
        out = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
        counts = write_zip(out, export=record, bundle=bundle, subject=subject)
    out.seek(0)
    digest = hashlib.sha256()
    size = 0
    for chunk in iter(lambda: out.read(1024 * 1024), b""):
        digest.update(chunk)
        size += len(chunk)
    out.seek(0)
    SubjectAccessExport.objects.filter(pk=record.pk).update(
        size=size, sha256=digest.hexdigest(), **counts
    )
    record.refresh_from_db()
    stamp = timezone.localtime(record.at).strftime("%Y%m%d")
    return Export(record=record, file=out, filename=f"subject-access-{record.pk}-{stamp}.zip")
