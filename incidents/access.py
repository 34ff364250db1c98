"""Need-to-know: the one place that decides who may see a case, and how much.

Every view, export and API of case data gets its case through `get_case_for()`, which also writes
the access log. "No such case" and "not yours to see" raise the same CaseNotFound, so nobody can
probe for a reference. Roles alone open nothing: an administrator sees a case only on the same
grounds as anyone else.
"""

from dataclasses import dataclass
from enum import StrEnum

from django.http import HttpRequest
from django.utils import timezone

from config.errors import ConcernlineError
from oncall.selectors import people_paged_for
from staff.models import Role, User

from . import audit
from .models import BreakGlass, Case, CaseClock


class CaseNotFound(ConcernlineError):
    status_code = 404
    code = "not_found"

    def __init__(self) -> None:
        super().__init__("No such case.")


class Basis(StrEnum):
    """Why someone may see a case. REPORTER sees status and their own entries only."""

    REPORTER = "reporter"
    OWNER = "owner"
    REVIEWER = "reviewer"
    PAGED = "paged"
    SAFEGUARDING = "safeguarding_lead"
    DPO = "dpo"
    HR = "hr"
    ESCALATED = "escalated"
    BREAK_GLASS = "break_glass"
    # The DPO may read any case's access log (and nothing else of it on this basis).
    DPO_AUDIT = "dpo_audit"


FULL_VIEW = frozenset(Basis) - {Basis.REPORTER, Basis.DPO_AUDIT}
# Who may move a case through review to an outcome.
REVIEW = frozenset({Basis.OWNER, Basis.REVIEWER, Basis.PAGED, Basis.ESCALATED})
# Who may run the disciplinary stages once a case is referred.
HR_STAGES = frozenset({Basis.HR})
# Roles that may break the glass (a care worker never needs to).
BREAK_GLASS_ROLES = frozenset({Role.MANAGER, Role.HR, Role.DPO, Role.SAFEGUARDING_LEAD, Role.ADMIN})
# Who may steer a case's paging ("escalate now", "reassign to ..."): a manager who owns the
# case or was paged for it. Others who may read it (safeguarding lead, DPO) may not.
STEER_ESCALATION = frozenset({Basis.OWNER, Basis.PAGED})


def may_steer_escalation(user: User, bases: list[Basis]) -> bool:
    return user.role == Role.MANAGER and any(b in STEER_ESCALATION for b in bases)


@dataclass(frozen=True)
class CaseAccess:
    case: Case
    basis: Basis

    @property
    def full(self) -> bool:
        return self.basis in FULL_VIEW


def bases_for(user: User, case: Case) -> list[Basis]:
    """Every reason `user` may see `case`, strongest first; empty if none."""
    if not user.is_authenticated or not user.is_active:
        return []
    bases = []
    if case.owner_id == user.id:
        bases.append(Basis.OWNER)
    if case.reviewer_id == user.id:
        bases.append(Basis.REVIEWER)
    if user.id in people_paged_for(owner_type=Case.ALERT_OWNER_TYPE, owner_id=case.id):
        bases.append(Basis.PAGED)
    if case.safeguarding and user.role == Role.SAFEGUARDING_LEAD:
        bases.append(Basis.SAFEGUARDING)
    if case.personal_data_breach and user.role == Role.DPO:
        bases.append(Basis.DPO)
    if case.referred_at is not None and user.role == Role.HR:
        bases.append(Basis.HR)
    if CaseClock.objects.filter(case=case, escalated_to=user).exists():
        bases.append(Basis.ESCALATED)
    if BreakGlass.objects.filter(case=case, user=user, expires_at__gt=timezone.now()).exists():
        bases.append(Basis.BREAK_GLASS)
    if case.reporter_id == user.id:
        bases.append(Basis.REPORTER)
    if user.role == Role.DPO:
        bases.append(Basis.DPO_AUDIT)
    return bases


def may_break_glass(user: User) -> bool:
    return (
        user.is_authenticated
        and user.is_active
        and (user.role in BREAK_GLASS_ROLES or user.is_superuser)
    )


def case_for_break_glass(*, user: User, reference: str) -> Case:
    """The case someone with no basis asks to open by break-glass; CaseNotFound otherwise.
    Writes nothing: services.break_glass records the access and its reason."""
    case = Case.objects.filter(reference=reference).first()
    if case is None or not may_break_glass(user):
        raise CaseNotFound()
    return case


OUTCOME_REPORT_ROLES = frozenset({Role.HR, Role.MANAGER})


def may_see_outcomes(user: User) -> bool:
    """HR and managers see the whole in figures: counts, times and clocks, never content."""
    return user.is_authenticated and user.is_active and user.role in OUTCOME_REPORT_ROLES


def may_export_subject_access(user: User) -> bool:
    """Subject access exports read every case about a person, so only the DPO makes them.
    Administrators configure the system and see no case content; they are not DPOs."""
    return user.is_authenticated and user.is_active and user.role == Role.DPO


def log_export(*, user: User, cases: list[Case], request: HttpRequest | None) -> None:
    """One access-log row per case in an export (basis: the outcomes report)."""
    log_many(user=user, cases=cases, action="export", basis="outcomes_report", request=request)


def log_listed(*, user: User, cases: list[Case], request: HttpRequest) -> None:
    """One access-log row per case a case list showed (its reference, kind and status): the
    list holds only cases the person may see (selectors.cases_visible_to)."""
    log_many(user=user, cases=cases, action="list", basis="case_list", request=request)


def log_many(
    *,
    user: User,
    cases: list[Case],
    action: str,
    basis: str,
    request: HttpRequest | None,
    path: str | None = None,
) -> None:
    """One access-log row per case shown in a register or export, in one insert. `path`, if
    given, is recorded instead of the request's (e.g. to name the export the rows belong to)."""
    if path is None:
        path = request.path if request else ""
    audit.append_access_entries(
        cases=cases,
        user_id=user.pk,
        action=action,
        basis=str(basis),
        path=path[:255],
        ip_address=request.META.get("REMOTE_ADDR") if request else None,
    )


def get_case_for(
    *,
    user: User,
    reference: str,
    action: str,
    request: HttpRequest | None = None,
    allowed: frozenset[Basis] | set[Basis] = frozenset(Basis),
) -> CaseAccess:
    """The case `reference` if `user` may see it on one of the `allowed` grounds; the access
    is logged. Raises CaseNotFound otherwise."""
    case = (
        Case.objects.select_related("reporter", "owner", "reviewer")
        .filter(reference=reference)
        .first()
    )
    bases = [b for b in bases_for(user, case) if b in allowed] if case is not None else []
    if not bases:
        raise CaseNotFound()
    basis = bases[0]
    log_access(user=user, case=case, action=action, basis=basis, request=request)
    return CaseAccess(case=case, basis=basis)


def log_access(
    *, user: User, case: Case, action: str, basis: Basis, request: HttpRequest | None
) -> None:
    log_many(user=user, cases=[case], action=action, basis=basis, request=request)
