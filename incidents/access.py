"""Need-to-know: the one place that decides who may see a case, and how much.

Every view, export and API of case data gets its case through `get_case_for()`, which also writes
the access log. "No such case" and "not yours to see" raise the same CaseNotFound, so nobody can
probe for a reference. Roles alone open nothing: an administrator sees a case only on the same
grounds as anyone else.
"""

from dataclasses import dataclass
from enum import StrEnum

from django.http import HttpRequest

from config.errors import ConcernlineError
from oncall.selectors import people_paged_for
from staff.models import Role, User

from .models import AccessLogEntry, Case


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


FULL_VIEW = frozenset(Basis) - {Basis.REPORTER}
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
    if case.reporter_id == user.id:
        bases.append(Basis.REPORTER)
    return bases


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
    AccessLogEntry.objects.create(
        case=case,
        user=user,
        action=action,
        basis=str(basis),
        path=request.path[:255] if request else "",
        ip_address=request.META.get("REMOTE_ADDR") if request else None,
    )
