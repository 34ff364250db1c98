"""Retention: anonymise closed cases once their retention period is over.

The period comes from the RetentionRule for the case's kind and outcome (editable in the
admin; the defaults below are seeded by migration 0008). The clock starts at closure: an open
case is never anonymised, nor one under a legal hold. `purge_expired()` is run nightly by the
beat task `incidents.purge_expired` and by `manage.py purge_expired [--dry-run]`.

Anonymising removes what the case says and who it names: the narrative, the kind's details
(a colleague's name, who asked, what was shared), the service-user reference, who received the
information, the local-authority reference, notes and the reporter's additions, attachments
(rows and the encrypted files), the reasons typed for break-glass and legal holds. What stays is
what registers and figures count: reference, kind, urgency, grounds, outcome, HR stage and
decision, dates, clocks, and the staff ids on the case and in its audit trail.

The timeline and the access log are not rewritten: they hold ids, codes and dates, not what
was reported (see the README, "Retention"), so their hash chains stay whole and
`verify_audit` still passes. Anonymising adds one timeline event, like any other change."""

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from config.errors import ConcernlineError
from staff.models import Role, User

from . import access, audit, services
from .models import (
    AccessAction,
    Attachment,
    BreakGlass,
    Case,
    CaseNote,
    CaseStatus,
    Report,
    TimelineKind,
)
from .retention_models import LegalHold, PurgeRecord, PurgeTrigger, RetentionRule

log = logging.getLogger(__name__)

# (kind, outcome, months, basis): blank is "any". Seeded by migration 0008_retention, which keeps
# its own copy; change the rules in the admin (Retention rules), not here.
DEFAULT_RULES = [
    ("", "", 72, "Catch-all: six years after closure, the limitation period for most claims."),
    ("", "no_breach", 12, "No breach found: one year after closure."),
    ("", "advice_given", 24, "Advice given: two years after closure."),
    ("", "learning_need", 24, "Learning or training need: two years after closure."),
    ("", "informal_action", 24, "Informal action: two years after closure."),
    ("", "legitimate_disclosure", 72, "Disclosure without consent: six years after closure."),
    ("", "disciplinary", 72, "HR records policy: disciplinary records six years after closure."),
    (
        "urgent_disclosure",
        "",
        120,
        "Urgent and safeguarding disclosures: ten years after closure.",
    ),
]

# The access-log basis of placing or lifting a hold (the DPO's or administrator's role).
LEGAL_HOLD_BASIS = "legal_hold"

# Who may place and lift legal holds, and read the retention page.
RETENTION_ROLES = frozenset({Role.DPO, Role.ADMIN})


class RetentionError(ConcernlineError):
    code = "retention"


def may_manage_retention(user) -> bool:
    return bool(
        user.is_authenticated
        and user.is_active
        and (user.role in RETENTION_ROLES or user.is_superuser)
    )


def add_months(at: datetime, months: int) -> datetime:
    """`at` plus whole calendar months; the 31st becomes the last day of a shorter month."""
    month0 = at.month - 1 + months
    year, month = at.year + month0 // 12, month0 % 12 + 1
    for day in (at.day, 30, 29, 28):
        try:
            return at.replace(year=year, month=month, day=day)
        except ValueError:
            continue
    raise AssertionError("unreachable: every month has 28 days")


def rule_for(case: Case, rules: list[RetentionRule]) -> RetentionRule | None:
    """The most specific rule: kind and outcome, then kind alone, then outcome alone, then the
    catch-all. None if no rule applies (the case is then kept)."""
    by_key = {(r.kind, r.outcome): r for r in rules}
    for key in ((case.kind, case.outcome), (case.kind, ""), ("", case.outcome), ("", "")):
        if key in by_key:
            return by_key[key]
    return None


@dataclass(frozen=True)
class Expired:
    """A closed case whose retention period is over."""

    case: Case
    rule: RetentionRule
    expires_at: datetime
    held: bool


def expired_cases(*, now: datetime | None = None) -> list[Expired]:
    """Closed, not yet anonymised cases past their period, oldest closure first, held ones
    included (and marked) so a dry run can show what a hold is keeping. Three queries."""
    now = now or timezone.now()
    rules = list(RetentionRule.objects.all())
    if not rules:
        return []
    shortest = min(r.keep_months for r in rules)
    cases = Case.objects.filter(
        status=CaseStatus.CLOSED,
        anonymised_at__isnull=True,
        closed_at__isnull=False,
        closed_at__lte=add_months(now, -shortest),
    ).order_by("closed_at", "id")
    held = set(
        LegalHold.objects.filter(lifted_at__isnull=True, case__in=cases).values_list(
            "case_id", flat=True
        )
    )
    found = []
    for case in cases:
        rule = rule_for(case, rules)
        if rule is None:
            continue
        expires_at = add_months(case.closed_at, rule.keep_months)
        if expires_at <= now:
            found.append(Expired(case, rule, expires_at, held=case.id in held))
    return found


@dataclass
class PurgeRun:
    run: uuid.UUID
    dry_run: bool
    anonymised: list[PurgeRecord] = field(default_factory=list)
    would_anonymise: list[Expired] = field(default_factory=list)
    held: list[Expired] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # case references

    def summary(self) -> dict:
        return {
            "run": str(self.run),
            "dry_run": self.dry_run,
            "anonymised": len(self.anonymised),
            "would_anonymise": len(self.would_anonymise),
            "held": len(self.held),
            "failed": len(self.failed),
        }


def purge_expired(*, dry_run: bool, trigger: str, now: datetime | None = None) -> PurgeRun:
    """Anonymise every expired case not under a legal hold, each in its own transaction, so
    one that fails (logged by id) leaves the others done. A dry run changes nothing. Running
    again does nothing more: an anonymised case is never picked again."""
    now = now or timezone.now()
    result = PurgeRun(run=uuid.uuid4(), dry_run=dry_run)
    for item in expired_cases(now=now):
        if item.held:
            result.held.append(item)
            continue
        if dry_run:
            result.would_anonymise.append(item)
            continue
        try:
            record = anonymise_case(
                case_id=item.case.id, rule=item.rule, run=result.run, trigger=trigger, now=now
            )
        except Exception:
            log.exception("retention: case id %s could not be anonymised", item.case.id)
            result.failed.append(item.case.reference)
            continue
        if record is not None:
            result.anonymised.append(record)
    log.info("retention purge %s", result.summary())
    return result


def anonymise_case(
    *, case_id: int, rule: RetentionRule, run: uuid.UUID, trigger: str, now: datetime
) -> PurgeRecord | None:
    """Anonymise one case and record it. Under the case's row lock, every condition is checked
    again (a hold placed since the list was made, a case re-opened or already anonymised), and
    None returned if it no longer applies. The attachments' files are deleted last, inside the
    transaction, so a file that cannot be deleted rolls the case back to be tried next night."""
    with transaction.atomic():
        case = Case.objects.select_for_update(of=("self",), no_key=True).get(pk=case_id)
        if (
            case.anonymised_at is not None
            or case.status != CaseStatus.CLOSED
            or case.closed_at is None
            or LegalHold.objects.filter(case=case, lifted_at__isnull=True).exists()
        ):
            return None
        expires_at = add_months(case.closed_at, rule.keep_months)
        if expires_at > now:
            return None
        # Clearing client_token changes a unique key, so the case row is then locked as for a
        # key change, which a timeline insert's foreign-key check must wait for: take the
        # chain first, as every timeline writer does, so neither waits for the other.
        audit.lock_timeline(case.id)
        Report.objects.filter(case=case).update(
            narrative="", details={}, service_user_ref="", who_was_told=""
        )
        notes_removed, _by_model = CaseNote.objects.filter(case=case).delete()
        attachments = list(Attachment.objects.filter(case=case))
        Attachment.objects.filter(case=case).delete()
        cleared = BreakGlass.objects.filter(case=case).exclude(reason="").update(reason="")
        LegalHold.objects.filter(case=case).update(reason="")
        case.local_authority_reference = ""
        case.client_token = None
        case.anonymised_at = now
        case.save(update_fields=["local_authority_reference", "client_token", "anonymised_at"])
        folder = services.attachments_dir()
        files = [folder / a.stored_name for a in attachments]
        files = [path for path in files if path.exists()]
        record = PurgeRecord.objects.create(
            case=case,
            case_reference=case.reference,
            kind=case.kind,
            outcome=case.outcome,
            rule=rule,
            rule_kind=rule.kind,
            rule_outcome=rule.outcome,
            keep_months=rule.keep_months,
            closed_at=case.closed_at,
            expired_at=expires_at,
            purged_at=now,
            run=run,
            trigger=trigger,
            notes_removed=notes_removed,
            attachments_removed=len(attachments),
            files_deleted=len(files),
            break_glass_reasons_cleared=cleared,
        )
        services.add_event(
            case=case,
            kind=TimelineKind.ANONYMISED,
            actor=None,
            at=now,
            data={"purge_record_id": record.id, "keep_months": rule.keep_months},
        )
        # Last of all, once every row is written: a file that cannot be deleted rolls the case
        # back whole, and no row failing afterwards can leave its files already gone.
        for path in files:
            path.unlink()
    return record


def place_legal_hold(
    *, case: Case, actor: User, reason: str, request: HttpRequest | None = None
) -> LegalHold:
    """Stop retention anonymising `case` until the hold is lifted. DPO or administrator only.
    The timeline records who and when; the reason stays on the hold, never in the timeline.
    The change is access-logged in the same transaction."""
    reason = " ".join(reason.split())
    if not may_manage_retention(actor):
        raise RetentionError(_("Only the DPO or an administrator may place a legal hold."))
    if not reason:
        raise RetentionError(
            _("Say what the case is held for."), extra={"reason": _("Give a reason.")}
        )
    with transaction.atomic():
        case = Case.objects.select_for_update(of=("self",), no_key=True).get(pk=case.pk)
        if case.anonymised_at is not None:
            raise RetentionError(_("This case has already been anonymised."))
        if LegalHold.objects.filter(case=case, lifted_at__isnull=True).exists():
            raise RetentionError(_("This case is already under a legal hold."))
        now = timezone.now()
        hold = LegalHold.objects.create(
            case=case, reason=reason[:200], placed_by=actor, placed_at=now
        )
        services.add_event(
            case=case,
            kind=TimelineKind.LEGAL_HOLD_PLACED,
            actor=actor,
            at=now,
            data={"hold_id": hold.id},
        )
        _log_hold_change(case=case, actor=actor, request=request)
    return hold


def lift_legal_hold(
    *, hold: LegalHold, actor: User, request: HttpRequest | None = None
) -> LegalHold:
    """Lift a hold: from now on the case's retention rule applies again (an expired case is
    anonymised by the next nightly run). Access-logged in the same transaction."""
    if not may_manage_retention(actor):
        raise RetentionError(_("Only the DPO or an administrator may lift a legal hold."))
    with transaction.atomic():
        case = Case.objects.select_for_update(of=("self",), no_key=True).get(pk=hold.case_id)
        hold = LegalHold.objects.get(pk=hold.pk)
        hold.case = case
        if hold.lifted_at is not None:
            raise RetentionError(_("This legal hold has already been lifted."))
        now = timezone.now()
        hold.lifted_by = actor
        hold.lifted_at = now
        hold.save(update_fields=["lifted_by", "lifted_at"])
        services.add_event(
            case=case,
            kind=TimelineKind.LEGAL_HOLD_LIFTED,
            actor=actor,
            at=now,
            data={"hold_id": hold.id},
        )
        _log_hold_change(case=case, actor=actor, request=request)
    return hold


def _log_hold_change(*, case: Case, actor: User, request: HttpRequest | None) -> None:
    access.log_access(
        user=actor, case=case, action=AccessAction.CHANGE, basis=LEGAL_HOLD_BASIS, request=request
    )


__all__ = [
    "DEFAULT_RULES",
    "Expired",
    "PurgeRun",
    "PurgeTrigger",
    "RetentionError",
    "add_months",
    "anonymise_case",
    "expired_cases",
    "lift_legal_hold",
    "may_manage_retention",
    "place_legal_hold",
    "purge_expired",
    "rule_for",
]
