"""The retention page: the rules in force, legal holds (placed and lifted here by the DPO or an
administrator), and the record of what the purge anonymised. No case content is shown: case
references, kinds, outcomes, dates and the holds' reasons only."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from config.errors import ConcernlineError

from . import retention
from .models import Case
from .retention_models import LegalHold, PurgeRecord, RetentionRule

RECENT_PURGES = 50


class LegalHoldForm(forms.Form):
    reference = forms.CharField(label=gettext_lazy("Case reference"), max_length=32)
    reason = forms.CharField(
        label=gettext_lazy("What it is held for"),
        max_length=200,
        help_text=gettext_lazy("A claim, tribunal or inquiry reference; no names."),
    )

    def clean_reference(self):
        return self.cleaned_data["reference"].strip().upper()


def _only_retention_managers(request: HttpRequest) -> None:
    if not retention.may_manage_retention(request.user):
        raise Http404(_("No such page."))


@login_required
def retention_page(request: HttpRequest) -> HttpResponse:
    """GET: the rules, the holds in force, what the next run would anonymise (a dry run) and
    recent purges. POST: place a legal hold."""
    _only_retention_managers(request)
    form = LegalHoldForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        case = Case.objects.filter(reference=form.cleaned_data["reference"]).first()
        if case is None:
            form.add_error("reference", _("No such case."))
        else:
            try:
                retention.place_legal_hold(
                    case=case,
                    actor=request.user,
                    reason=form.cleaned_data["reason"],
                    request=request,
                )
            except ConcernlineError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(
                    request, _("Legal hold placed on %(ref)s.") % {"ref": case.reference}
                )
                return redirect("incidents:retention")
    status = 400 if request.method == "POST" else 200
    holds = (
        LegalHold.objects.filter(lifted_at__isnull=True)
        .select_related("case", "placed_by")
        .order_by("-placed_at")
    )
    return render(
        request,
        "incidents/retention.html",
        {
            "form": form,
            "rules": list(RetentionRule.objects.all()),
            "holds": list(holds),
            "due": retention.expired_cases(),
            "purges": list(PurgeRecord.objects.all()[:RECENT_PURGES]),
        },
        status=status,
    )


@login_required
@require_POST
def legal_hold_lift(request: HttpRequest, hold_id: int) -> HttpResponse:
    _only_retention_managers(request)
    hold = LegalHold.objects.select_related("case").filter(pk=hold_id).first()
    if hold is None:
        raise Http404(_("No such legal hold."))
    try:
        retention.lift_legal_hold(hold=hold, actor=request.user, request=request)
    except ConcernlineError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Legal hold on %(ref)s lifted.") % {"ref": hold.case.reference})
    return redirect("incidents:retention")
