import csv
import io
import uuid

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.staticfiles import finders
from django.contrib.staticfiles.storage import staticfiles_storage
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from config.errors import ConcernlineError
from oncall.selectors import on_call_now
from staff.models import Role

from . import access, selectors, services
from .access import (
    FULL_VIEW,
    HR_STAGES,
    REVIEW,
    STEER_ESCALATION,
    Basis,
    CaseNotFound,
    bases_for,
    get_case_for,
    may_steer_escalation,
)
from .forms import (
    AddInformationForm,
    AttachmentForm,
    BreachDecisionForm,
    BreakGlassForm,
    HRStageForm,
    KindForm,
    NoteForm,
    OutcomeForm,
    ReassignForm,
    ReportForm,
    ReviewerForm,
    SafeguardingReferralForm,
)
from .models import AccessAction, CaseStatus, ReportKind


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return redirect("incidents:report")


# The reference of the report just sent: its page says "Received" once, on the first page the
# person opens after sending it, and gives the report's status on every later visit.
JUST_SENT = "incidents:just_sent"


@login_required
def report(request: HttpRequest) -> HttpResponse:
    """Step one (GET, no kind): what are you reporting? Step two: only that kind's questions.
    Both are plain forms, so the page works with JavaScript off. A report sent after the
    session ended is not saved, and the sign-in page says so (SignedOutSendMiddleware)."""
    if request.method == "POST":
        form = ReportForm(request.POST, kind=request.POST.get("kind"))
        if form.is_valid():
            data = form.cleaned_data
            try:
                case = services.submit_report(
                    reporter=request.user,
                    kind=data["kind"],
                    urgent=data.get("urgent", False),
                    grounds=data.get("grounds", []),
                    narrative=data["narrative"],
                    service_user_ref=data.get("service_user_ref", ""),
                    who_was_told=data.get("who_was_told", ""),
                    representative_consulted=data.get("representative_consulted", ""),
                    emergency_services_called=data.get("emergency_services_called", ""),
                    client_token=data["client_token"],
                    details=form.details(),
                )
            except ConcernlineError as exc:
                for field, message in exc.extra.items():
                    form.add_error(field if field in form.fields else None, message)
                if not exc.extra:
                    form.add_error(None, exc.message)
            else:
                request.session[JUST_SENT] = case.reference
                if getattr(request, "idle_expired", False):
                    # The report page will ask for the password first (the session went idle
                    # while the report was typed): the sign-in page says the report arrived.
                    messages.success(
                        request, _("Report %(ref)s received. Thank you.") % {"ref": case.reference}
                    )
                return redirect("incidents:my-report", reference=case.reference)
    else:
        kind = request.GET.get("kind")
        if kind not in ReportKind.values:
            kind_form = KindForm(request.GET if "kind" in request.GET else None)
            if kind_form.is_bound:
                kind_form.is_valid()
            return render(
                request,
                "incidents/report_kind.html",
                {"form": kind_form, "on_call": _on_call_for_reports()},
            )
        form = ReportForm(initial={"client_token": uuid.uuid4()}, kind=kind)
    return render(
        request,
        "incidents/report.html",
        {
            "form": form,
            "kind": form.kind,
            "kind_label": ReportKind(form.kind).label if form.kind else "",
            "on_call": _on_call_for_reports(),
        },
    )


def _on_call_for_reports():
    """Who an urgent report pages now (the default rota's current shift), for the one-tap call
    on the report page; None when nobody is on call."""
    for item in on_call_now():
        if item.rota.is_default:
            return item.shift.person if item.shift else None
    return None


def service_worker(request: HttpRequest) -> HttpResponse:
    """static/concernline/sw.js served from the site root, so its scope covers /report/ (a
    worker's scope is its own folder; under /static/ it could not see the report page). Public:
    it is the same code for everyone and holds no data."""
    path = finders.find("concernline/sw.js")
    if path:
        with open(path, "rb") as handle:
            body = handle.read()
    else:
        with staticfiles_storage.open("concernline/sw.js") as handle:
            body = handle.read()
    response = HttpResponse(body, content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    response["Service-Worker-Allowed"] = "/"
    return response


@login_required
def my_reports(request: HttpRequest) -> HttpResponse:
    return render(
        request, "incidents/my_reports.html", {"cases": selectors.reports_by(request.user)}
    )


def _fetched_by_script(request: HttpRequest) -> bool:
    """A page report.js fetched rather than a page a person opened. The script sends a report
    with fetch() and then opens the page the reply was redirected to, so the copy it fetched on
    the way must not use up "Received". The browser says so (Sec-Fetch-Dest: empty); one too old
    to say it still sends the header report.js adds to what it posts (kept across the redirect)."""
    return (
        request.headers.get("Sec-Fetch-Dest") == "empty"
        or request.headers.get("X-Requested-With") == "fetch"
    )


@login_required
def my_report(request: HttpRequest, reference: str) -> HttpResponse:
    access = _case_or_404(request, reference, AccessAction.VIEW_AS_REPORTER, {Basis.REPORTER})
    return _my_report_page(request, access)


def _my_report_page(request: HttpRequest, access, *, refused=None) -> HttpResponse:
    """The reporter's page of their own report. `refused` is an "Add" form that was not saved:
    the page holds it with what was sent and why not, and answers 400."""
    case = access.case
    just_sent = request.session.get(JUST_SENT) == case.reference
    if just_sent and not _fetched_by_script(request):
        del request.session[JUST_SENT]
    context = {
        "case": case,
        "just_sent": just_sent,
        "timeline": selectors.timeline_for(case, full=False),
        "notes": selectors.notes_for(case, full=False, user=request.user),
        # A fresh token on each page: the same addition sent twice is added once.
        "form": AddInformationForm(initial={"client_token": uuid.uuid4()}),
    }
    if refused is None:
        return render(request, "incidents/my_report.html", context)
    # A case closed since the page was loaded no longer offers the form.
    offered = case.status != CaseStatus.CLOSED
    return _refused_page(
        request,
        "incidents:my-report",
        "incidents/my_report.html",
        context,
        "form",
        refused,
        offered=offered,
    )


def _refused_page(request, page, template, context, name, form, *, offered) -> HttpResponse:
    """A page again with its form `name` refused (400): the form as it was sent, with why not,
    while the page still offers it; otherwise the reasons as messages at the top. The page is
    shown at the address the form was sent to, so the language switcher goes back to the page
    (`page_path`): `page` names its URL."""
    context["page_path"] = reverse(page, args=[context["case"].reference])
    if offered:
        context[name] = form
        messages.error(request, _("Not saved. The form below says why."))
    else:
        _errors_as_messages(request, form)
    return render(request, template, context, status=400)


@login_required
@require_POST
def my_report_add(request: HttpRequest, reference: str) -> HttpResponse:
    """A refusal, the form's own or the service's, comes back on the report's page with what
    was typed and the reason next to the field, as on the case page."""
    access = _case_or_404(request, reference, AccessAction.CHANGE, {Basis.REPORTER})
    form = AddInformationForm(request.POST)
    _carry_out(
        request,
        form,
        lambda d: services.add_report_information(
            case=access.case, actor=request.user, text=d["text"], client_token=d["client_token"]
        ),
        saved=_("Added to your report."),
    )
    if not form.errors:
        return redirect("incidents:my-report", reference=reference)
    # The page shown is a view like any other: need-to-know is checked, and the view logged,
    # by get_case_for (after the action's own check and log), and the case is read afresh.
    access = _case_or_404(request, reference, AccessAction.VIEW_AS_REPORTER, {Basis.REPORTER})
    return _my_report_page(request, access, refused=form)


CASES_PER_PAGE = 50


@login_required
def case_list(request: HttpRequest) -> HttpResponse:
    """The person's cases, newest first, a page at a time; each case shown is access-logged."""
    which = request.GET.get("list", "all")
    if which not in selectors.CASE_LISTS:
        which = "all"
    page = Paginator(selectors.case_list_for(request.user, which), CASES_PER_PAGE).get_page(
        request.GET.get("page")
    )
    cases = list(page.object_list)
    access.log_listed(user=request.user, cases=cases, request=request)
    return render(
        request,
        "incidents/case_list.html",
        {
            "cases": cases,
            "page": page,
            "which": which,
            "lists": [
                ("all", _("All mine to see")),
                ("mine", _("Mine")),
                ("review", _("To review")),
                ("referred", _("Referred")),
                ("overdue", _("Overdue")),
            ],
        },
    )


@login_required
def case_detail(request: HttpRequest, reference: str) -> HttpResponse:
    access = _case_or_404(request, reference, AccessAction.VIEW, FULL_VIEW)
    return _case_page(request, access)


# The case page's forms: the name the template knows each by, its class, and the page's flag
# that offers it (None: offered to everyone who may see the page).
CASE_FORMS = {
    "reviewer_form": (ReviewerForm, "can_assign"),
    "outcome_form": (OutcomeForm, "can_record_outcome"),
    "hr_form": (HRStageForm, "can_hr"),
    "note_form": (NoteForm, None),
    "attachment_form": (AttachmentForm, None),
    "breach_form": (BreachDecisionForm, "can_breach_decision"),
    "safeguarding_form": (SafeguardingReferralForm, "can_safeguarding_referral"),
    "reassign_form": (ReassignForm, "can_steer"),
}


def _case_form(name: str, request: HttpRequest, case, data=None, files=None) -> forms.Form:
    """One of the case page's forms as the page offers it to this person on this case; bound
    when an action sends `data`, so a refused one is shown again just as it was offered."""
    options = {
        "reviewer_form": {"reporter_id": case.reporter_id},
        "hr_form": {"current": case.hr_stage},
        # A fresh token on each page: the same note sent twice is one note (services.add_note).
        "note_form": {"initial": {"client_token": uuid.uuid4()}},
        "reassign_form": {"exclude": request.user},
    }.get(name, {})
    form_class, _offered_by = CASE_FORMS[name]
    return form_class(data, files, **options)


def _case_page(request: HttpRequest, access, *, refused=None) -> HttpResponse:
    """The case page for a case got through the access check. `refused` is (name, bound form)
    of an action that was not saved: the page holds that form with what was sent and why not,
    and answers 400."""
    case = access.case
    bases = set(bases_for(request.user, case))
    can_review = bool(bases & REVIEW)
    steer = case.urgent and may_steer_escalation(request.user, list(bases))
    context = {
        "case": case,
        "report": case.report,
        "details": _details_for_display(case),
        "timeline": selectors.timeline_for(case, full=True),
        "notes": selectors.notes_for(case, full=True, user=request.user),
        "attachments": list(case.attachments.all()),
        "clocks": list(case.clocks.all()),
        "now": timezone.now(),
        "basis": access.basis,
        # Only a person paged may take the case: nobody else is offered a button that fails.
        "can_acknowledge": case.status == CaseStatus.REPORTED and Basis.PAGED in bases,
        "can_start_review": can_review
        and case.status in (CaseStatus.REPORTED, CaseStatus.ACKNOWLEDGED),
        "can_assign": Basis.OWNER in bases
        and case.status in (CaseStatus.REPORTED, CaseStatus.ACKNOWLEDGED, CaseStatus.UNDER_REVIEW),
        "can_record_outcome": can_review and case.status == CaseStatus.UNDER_REVIEW,
        "can_close": can_review
        and case.status == CaseStatus.OUTCOME_RECORDED
        and case.referred_at is None,
        "can_hr": bool(bases & HR_STAGES) and case.hr_stage not in ("", "closed"),
        "can_breach_decision": Basis.DPO in bases
        and case.personal_data_breach
        and case.breach_decided_at is None,
        "can_safeguarding_referral": bool(bases & {Basis.SAFEGUARDING, Basis.OWNER})
        and case.safeguarding
        and case.safeguarding_referred_at is None,
        "can_read_access_log": Basis.DPO_AUDIT in bases,
        "can_steer": steer,
        # Passing on needs a page still unanswered: once acknowledged, Reassign is the way.
        "can_escalate": steer and selectors.still_paging(case),
    }
    for name in CASE_FORMS:
        context[name] = _case_form(name, request, case)
    if refused is None:
        return render(request, "incidents/case_detail.html", context)
    name, form = refused
    # The case may have moved on since the page was loaded and no longer offer that form.
    offered_by = CASE_FORMS[name][1]
    offered = offered_by is None or bool(context[offered_by])
    return _refused_page(
        request,
        "incidents:case-detail",
        "incidents/case_detail.html",
        context,
        name,
        form,
        offered=offered,
    )


def _details_for_display(case) -> list[tuple[str, str]]:
    """The kind's own answers, labelled as the form asked them."""
    form = ReportForm(kind=case.kind)
    shown = []
    for name, value in case.report.details.items():
        field = form.fields.get(name)
        if field is None:
            continue
        label = dict(getattr(field, "choices", [])).get(value, value)
        shown.append((field.label, label))
    return shown


# Each action on the case page: (form, access rule, service call). The access check is the
# same get_case_for() as every view; the service checks the actor's basis and state again.
def _run(request, reference, form_name, call, *, files=False):
    """`form_name` names the action's form in CASE_FORMS; None for an action that is only a
    button. A refused form comes back on the case page with what was typed (_shown_again); a
    button, with nothing typed to keep, goes back to the page with the reason as a message."""
    access = _case_or_404(request, reference, AccessAction.CHANGE, FULL_VIEW)
    if form_name is None:
        try:
            call(access.case, {})
        except services.AlreadyDone as exc:
            messages.info(request, exc.message)  # done before (a double tap): news, not a failure
        except ConcernlineError as exc:
            detail = " ".join(str(v) for v in exc.extra.values())
            messages.error(request, f"{exc.message} {detail}".strip())
        else:
            messages.success(request, _("Saved."))
        return redirect("incidents:case-detail", reference=reference)
    form = _case_form(
        form_name, request, access.case, request.POST, request.FILES if files else None
    )
    _carry_out(request, form, lambda d: call(access.case, d), saved=_("Saved."))
    if form.errors:
        return _shown_again(request, reference, form_name, form)
    return redirect("incidents:case-detail", reference=reference)


def _carry_out(request: HttpRequest, form: forms.Form, call, *, saved: str) -> None:
    """A page form's action, if the form is valid: done (`saved` is said), done before (a
    double tap: news, not a failure), or refused, the service's reasons put on the form."""
    if not form.is_valid():
        return
    try:
        call(form.cleaned_data)
    except services.AlreadyDone as exc:
        messages.info(request, exc.message)
    except ConcernlineError as exc:
        _add_refusal(form, exc)
    else:
        messages.success(request, saved)


def _add_refusal(form: forms.Form, exc: ConcernlineError) -> None:
    """A service's refusal, next to the fields it names (as on the report page)."""
    for field, message in exc.extra.items():
        form.add_error(field if field in form.fields else None, message)
    if not exc.extra:
        form.add_error(None, exc.message)


def _errors_as_messages(request: HttpRequest, form: forms.Form) -> None:
    for field, errors in form.errors.items():
        label = form.fields[field].label if field in form.fields else ""
        text = " ".join(errors)
        messages.error(request, f"{label}: {text}" if label else text)


def _shown_again(request, reference, form_name, form) -> HttpResponse:
    """The case page again with the refused form. It is a view of the page like any other:
    need-to-know is checked, and the view logged, by get_case_for (after the action's own
    check and log), and the case is read afresh."""
    access = _case_or_404(request, reference, AccessAction.VIEW, FULL_VIEW)
    return _case_page(request, access, refused=(form_name, form))


@login_required
@require_POST
def case_start_review(request, reference):
    return _run(
        request,
        reference,
        None,
        lambda case, d: services.start_review(case=case, actor=request.user),
    )


@login_required
@require_POST
def case_assign(request, reference):
    return _run(
        request,
        reference,
        "reviewer_form",
        lambda case, d: services.assign_reviewer(
            case=case, actor=request.user, reviewer=d["reviewer"]
        ),
    )


@login_required
@require_POST
def case_outcome(request, reference):
    return _run(
        request,
        reference,
        "outcome_form",
        lambda case, d: services.record_outcome(
            case=case, actor=request.user, outcome=d["outcome"]
        ),
    )


@login_required
@require_POST
def case_close(request, reference):
    return _run(
        request,
        reference,
        None,
        lambda case, d: services.close_case(case=case, actor=request.user),
    )


@login_required
@require_POST
def case_hr_stage(request, reference):
    return _run(
        request,
        reference,
        "hr_form",
        lambda case, d: services.advance_referral(
            case=case,
            actor=request.user,
            stage=d["stage"],
            # Asked only when the stages that may follow need them (HRStageForm).
            hearing_at=d.get("hearing_at"),
            decision=d.get("decision", ""),
        ),
    )


@login_required
@require_POST
def case_note(request, reference):
    return _run(
        request,
        reference,
        "note_form",
        lambda case, d: services.add_note(
            case=case, actor=request.user, text=d["text"], client_token=d["client_token"]
        ),
    )


@login_required
@require_POST
def case_attach(request, reference):
    return _run(
        request,
        reference,
        "attachment_form",
        lambda case, d: services.add_attachment(case=case, actor=request.user, upload=d["file"]),
        files=True,
    )


@login_required
@require_POST
def case_breach_decision(request, reference):
    return _run(
        request,
        reference,
        "breach_form",
        lambda case, d: services.record_breach_decision(case=case, actor=request.user, **d),
    )


@login_required
@require_POST
def case_safeguarding_referral(request, reference):
    return _run(
        request,
        reference,
        "safeguarding_form",
        lambda case, d: services.record_safeguarding_referral(
            case=case, actor=request.user, reference=d["reference"]
        ),
    )


@login_required
def attachment_download(request: HttpRequest, reference: str, attachment_id: int):
    """Only through the access check, logged, and always as a download."""
    access_ = _case_or_404(request, reference, AccessAction.DOWNLOAD, FULL_VIEW)
    attachment = access_.case.attachments.filter(pk=attachment_id).first()
    if attachment is None:
        raise Http404(_("No such case."))
    contents = services.read_attachment(attachment)
    if contents is None:
        raise Http404(_("No such case."))
    response = FileResponse(
        io.BytesIO(contents),
        as_attachment=True,
        filename=attachment.original_name,
        content_type=attachment.content_type,
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "no-store"
    return response


@login_required
def case_access_log(request: HttpRequest, reference: str) -> HttpResponse:
    """The DPO reads who looked at any case (and this look is logged too)."""
    access_ = _case_or_404(request, reference, AccessAction.ACCESS_LOG, {Basis.DPO_AUDIT})
    return render(
        request,
        "incidents/access_log.html",
        {
            "case": access_.case,
            "entries": selectors.access_log_for(access_.case),
            "glasses": list(access_.case.break_glasses.select_related("user")),
        },
    )


@login_required
def case_break_glass(request: HttpRequest, reference: str) -> HttpResponse:
    # The form is the same for any reference, so it tells nobody whether a case exists; only
    # a submitted reason (which is logged and tells the DPO) looks the case up.
    if not access.may_break_glass(request.user):
        raise Http404(_("No such case."))
    form = BreakGlassForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            case = access.case_for_break_glass(user=request.user, reference=reference)
        except CaseNotFound:
            raise Http404(_("No such case.")) from None
        try:
            services.break_glass(
                case=case, actor=request.user, reason=form.cleaned_data["reason"], request=request
            )
        except ConcernlineError as exc:
            form.add_error("reason", exc.message)
        else:
            messages.warning(request, _("Break-glass access recorded. The DPO has been told."))
            return redirect("incidents:case-detail", reference=reference)
    return render(request, "incidents/break_glass.html", {"form": form, "reference": reference})


@login_required
def breach_log(request: HttpRequest) -> HttpResponse:
    """The DPO's register of every personal-data breach and its decision (no content)."""
    from staff.models import Role

    if request.user.role != Role.DPO:
        raise Http404(_("No such page."))
    reference = request.GET.get("reference", "").strip().upper()
    if reference:
        # The DPO may read any case's access log: a way to it by reference.
        return redirect("incidents:case-access-log", reference=reference)
    cases = list(selectors.breach_log())
    access.log_many(
        user=request.user, cases=cases, action=AccessAction.VIEW, basis=Basis.DPO, request=request
    )
    return render(request, "incidents/breach_log.html", {"cases": cases})


@login_required
def outcomes(request: HttpRequest) -> HttpResponse:
    if not access.may_see_outcomes(request.user):
        raise Http404(_("No such page."))
    summary = selectors.outcomes_summary()
    return render(request, "incidents/outcomes.html", {"s": summary})


EXPORT_COLUMNS = [
    "reference",
    "kind",
    "urgent",
    "status",
    "outcome",
    "team",
    "reported_at",
    "outcome_at",
    "hours_to_outcome",
    "hr_stage",
    "hr_decision",
    "overdue_clocks",
]


@login_required
def outcomes_export(request: HttpRequest) -> HttpResponse:
    """The outcomes as CSV: no narrative, no names; each case in it is access-logged."""
    if not access.may_see_outcomes(request.user):
        raise Http404(_("No such page."))
    cases = selectors.outcomes_export_rows()
    access.log_export(user=request.user, cases=cases, request=request)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="concernline-outcomes.csv"'
    response["Cache-Control"] = "no-store"
    writer = csv.writer(response)
    writer.writerow(EXPORT_COLUMNS)
    now = timezone.now()
    for case in cases:
        team = case.reporter.team.name if case.reporter.team else ""
        hours = (
            round((case.outcome_at - case.created_at).total_seconds() / 3600, 1)
            if case.outcome_at
            else ""
        )
        overdue = [c.kind for c in case.clocks.all() if c.met_at is None and c.due_at <= now]
        writer.writerow(
            [
                case.reference,
                case.kind,
                "yes" if case.urgent else "no",
                case.status,
                case.outcome,
                _safe_csv(team),
                case.created_at.isoformat(),
                case.outcome_at.isoformat() if case.outcome_at else "",
                hours,
                case.hr_stage,
                case.hr_decision,
                " ".join(overdue),
            ]
        )
    return response


def _safe_csv(value: str) -> str:
    """A cell a spreadsheet will not run as a formula."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


@login_required
@require_POST
def case_acknowledge(request: HttpRequest, reference: str) -> HttpResponse:
    access = _case_or_404(request, reference, AccessAction.ACKNOWLEDGE, FULL_VIEW)
    if access.case.owner_id == request.user.id and access.case.status != CaseStatus.REPORTED:
        # A double tap, or a second try on a weak signal: it is already theirs.
        messages.info(request, _("You have already acknowledged this case."))
        return redirect("incidents:case-detail", reference=reference)
    try:
        case = services.acknowledge_case(case=access.case, actor=request.user, via="web")
    except services.AlreadyDone as exc:
        messages.info(request, exc.message)  # says who has it: news, not a failure
    except ConcernlineError as exc:
        messages.error(request, exc.message)
    else:
        if case.owner_id in (None, request.user.id):  # no owner yet: the acknowledger, on commit
            messages.success(request, _("Acknowledged. You now own this case."))
        else:  # handed to someone else before (reassigned): they keep it
            messages.success(
                request, _("Acknowledged. %(name)s owns this case.") % {"name": case.owner}
            )
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
    form = _case_form("reassign_form", request, access.case, request.POST)
    if form.is_valid():
        try:
            services.reassign_case(case=access.case, actor=request.user, to=form.cleaned_data["to"])
        except ConcernlineError as exc:
            _add_refusal(form, exc)
        else:
            messages.success(
                request,
                _("Reassigned to %(name)s, who is being paged.")
                % {"name": form.cleaned_data["to"]},
            )
            return redirect("incidents:case-detail", reference=reference)
    return _shown_again(request, reference, "reassign_form", form)


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
