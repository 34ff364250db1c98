import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from config.errors import ConcernlineError
from staff.models import Role

from . import selectors, services
from .access import (
    FULL_VIEW,
    STEER_ESCALATION,
    Basis,
    CaseNotFound,
    bases_for,
    get_case_for,
    may_steer_escalation,
)
from .forms import ReassignForm, ReportForm
from .models import AccessAction, CaseStatus


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return redirect("incidents:report")


@login_required
def report(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = ReportForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                case = services.submit_report(
                    reporter=request.user,
                    kind=data["kind"],
                    urgent=data["urgent"],
                    grounds=data["grounds"],
                    narrative=data["narrative"],
                    service_user_ref=data["service_user_ref"],
                    who_was_told=data["who_was_told"],
                    representative_consulted=data["representative_consulted"],
                    emergency_services_called=data["emergency_services_called"],
                    client_token=data["client_token"],
                )
            except ConcernlineError as exc:
                for field, message in exc.extra.items():
                    form.add_error(field if field in form.fields else None, message)
                if not exc.extra:
                    form.add_error(None, exc.message)
            else:
                return redirect("incidents:my-report", reference=case.reference)
    else:
        form = ReportForm(initial={"client_token": uuid.uuid4()})
    return render(request, "incidents/report.html", {"form": form})


@login_required
def my_reports(request: HttpRequest) -> HttpResponse:
    return render(
        request, "incidents/my_reports.html", {"cases": selectors.reports_by(request.user)}
    )


@login_required
def my_report(request: HttpRequest, reference: str) -> HttpResponse:
    access = _case_or_404(request, reference, AccessAction.VIEW_AS_REPORTER, {Basis.REPORTER})
    return render(
        request,
        "incidents/my_report.html",
        {"case": access.case, "timeline": selectors.timeline_for(access.case, full=False)},
    )


@login_required
def case_list(request: HttpRequest) -> HttpResponse:
    return render(
        request, "incidents/case_list.html", {"cases": selectors.cases_visible_to(request.user)}
    )


@login_required
def case_detail(request: HttpRequest, reference: str) -> HttpResponse:
    access = _case_or_404(request, reference, AccessAction.VIEW, FULL_VIEW)
    case = access.case
    bases = bases_for(request.user, case)
    steer = case.urgent and may_steer_escalation(request.user, bases)
    return render(
        request,
        "incidents/case_detail.html",
        {
            "case": case,
            "report": case.report,
            "timeline": selectors.timeline_for(case, full=True),
            "basis": access.basis,
            # Only a person paged may take the case: nobody else is offered a button that fails.
            "can_acknowledge": case.status == CaseStatus.REPORTED and Basis.PAGED in bases,
            "can_steer": steer,
            "reassign_form": ReassignForm(exclude=request.user) if steer else None,
        },
    )


@login_required
@require_POST
def case_acknowledge(request: HttpRequest, reference: str) -> HttpResponse:
    access = _case_or_404(request, reference, AccessAction.ACKNOWLEDGE, FULL_VIEW)
    if access.case.owner_id == request.user.id and access.case.status != CaseStatus.REPORTED:
        # A double tap, or a second try on a weak signal: it is already theirs.
        messages.info(request, _("You have already acknowledged this case."))
        return redirect("incidents:case-detail", reference=reference)
    try:
        services.acknowledge_case(case=access.case, actor=request.user, via="web")
    except ConcernlineError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Acknowledged. You now own this case."))
    return redirect("incidents:case-detail", reference=reference)


def _steering_case_or_404(request, reference, action):
    """The case, if the user is a manager who owns it or was paged for it; 404 otherwise,
    as for any case someone may not act on."""
    if request.user.role != Role.MANAGER:
        raise Http404(_("No such case."))
    return _case_or_404(request, reference, action, STEER_ESCALATION)


@login_required
@require_POST
def case_escalate(request: HttpRequest, reference: str) -> HttpResponse:
    access = _steering_case_or_404(request, reference, AccessAction.ESCALATE)
    try:
        services.escalate_case_now(case=access.case, actor=request.user)
    except ConcernlineError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Passed on: the next step is being paged now."))
    return redirect("incidents:case-detail", reference=reference)


@login_required
@require_POST
def case_reassign(request: HttpRequest, reference: str) -> HttpResponse:
    access = _steering_case_or_404(request, reference, AccessAction.REASSIGN)
    form = ReassignForm(request.POST, exclude=request.user)
    if not form.is_valid():
        for error in form.errors.get("to", []):
            messages.error(request, error)
        return redirect("incidents:case-detail", reference=reference)
    try:
        services.reassign_case(case=access.case, actor=request.user, to=form.cleaned_data["to"])
    except ConcernlineError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            _("Reassigned to %(name)s, who is being paged.") % {"name": form.cleaned_data["to"]},
        )
    return redirect("incidents:case-detail", reference=reference)


def _case_or_404(request, reference, action, allowed):
    try:
        return get_case_for(
            user=request.user,
            reference=reference,
            action=action,
            request=request,
            allowed=allowed,
        )
    except CaseNotFound:
        raise Http404(_("No such case.")) from None
