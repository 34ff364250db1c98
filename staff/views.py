import csv

import segno
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views import i18n as i18n_views
from django.views.decorators.http import require_POST
from django_otp import login as otp_login
from django_otp import match_token, user_has_device

from config.errors import ConcernlineError

from . import selectors, services
from .forms import GuidanceQuestionForm, SecondFactorForm, TrainingCompletedForm, TrainingForm
from .language import CHOSEN_SESSION_KEY, known_language
from .models import Team


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or "/"
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return "/"


@login_required
def two_factor_setup(request: HttpRequest) -> HttpResponse:
    if user_has_device(request.user, confirmed=True):
        return redirect("two-factor-verify")
    device = services.start_totp_setup(user=request.user)
    form = SecondFactorForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            device, codes = services.confirm_totp_setup(
                user=request.user, token=form.cleaned_data["token"]
            )
        except services.SecondFactorError as exc:
            form.add_error("token", exc.message)
        else:
            otp_login(request, device)
            return render(
                request, "staff/recovery_codes.html", {"codes": codes, "next": _next_url(request)}
            )
    qr = segno.make(device.config_url, error="m").svg_inline(scale=4, dark="#1b1b1b")
    return render(
        request,
        "staff/two_factor_setup.html",
        {"form": form, "qr": qr, "key_b32": _base32(device.bin_key), "next": _next_url(request)},
    )


@login_required
def two_factor_verify(request: HttpRequest) -> HttpResponse:
    if not user_has_device(request.user, confirmed=True):
        return redirect("two-factor-setup")
    form = SecondFactorForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        device = match_token(request.user, form.cleaned_data["token"].strip())
        if device is None:
            form.add_error("token", _("That code is not right, or was used already."))
        else:
            otp_login(request, device)
            return redirect(_next_url(request))
    return render(
        request, "staff/two_factor_verify.html", {"form": form, "next": _next_url(request)}
    )


def _base32(key: bytes) -> str:
    import base64

    return base64.b32encode(key).decode("ascii").rstrip("=")


# Guidance (section 6) and training (section 5).


def _team_viewer(request: HttpRequest) -> None:
    if not selectors.may_view_team_page(request.user):
        raise PermissionDenied


def _form_errors(form, exc: ConcernlineError) -> None:
    for field, message in exc.extra.items():
        form.add_error(field if field in form.fields else None, message)
    if not exc.extra:
        form.add_error(None, exc.message)


@login_required
def guidance(request: HttpRequest) -> HttpResponse:
    """The guidance that applies to the signed-in person, and where they sign it (6.1) or ask
    their line manager a question (6.2)."""
    document = selectors.current_guidance_for(request.user)
    question_form = GuidanceQuestionForm()
    if request.method == "POST" and document is not None:
        action = request.POST.get("action")
        document_id = _int(request.POST.get("document"))
        try:
            if action == "confirm":
                services.confirm_guidance(actor=request.user, document_id=document_id)
                messages.success(
                    request,
                    _("Thank you. You confirmed version %(version)s of the guidance.")
                    % {"version": document.version},
                )
                return redirect("staff:guidance")
            if action == "question":
                question_form = GuidanceQuestionForm(request.POST)
                if question_form.is_valid():
                    services.ask_guidance_question(
                        actor=request.user,
                        document_id=document_id,
                        question=question_form.cleaned_data["question"],
                    )
                    messages.success(
                        request,
                        _(
                            "Your question has gone to your line manager, who will arrange to "
                            "discuss it with you."
                        )
                        if request.user.line_manager_id
                        else _(
                            "You have no line manager on record, so your question has gone to HR, "
                            "who will arrange to discuss it with you."
                        ),
                    )
                    return redirect("staff:guidance")
        except services.GuidanceError as exc:
            if action == "question":
                _form_errors(question_form, exc)
            else:
                messages.error(request, exc.message)
                return redirect("staff:guidance")
    signature = selectors.signature_of(request.user, document) if document else None
    return render(
        request,
        "staff/guidance.html",
        {
            "document": document,
            "signature": signature,
            "question_form": question_form,
            "line_manager": request.user.line_manager,
            "training": selectors.open_training_for(request.user),
            "today": timezone.localdate(),
        },
    )


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _team_filter(request: HttpRequest) -> Team | None:
    if not selectors.oversees_everyone(request.user):
        return None
    team_id = _int(request.GET.get("team"))
    return Team.objects.filter(pk=team_id).first() if team_id else None


@login_required
def team(request: HttpRequest) -> HttpResponse:
    """A manager's team (HR and administrators: everyone, or one team): who has not signed the
    guidance, whose training is overdue, and questions waiting to be discussed."""
    _team_viewer(request)
    team_filter = _team_filter(request)
    rows = selectors.team_overview(request.user, team=team_filter)
    return render(
        request,
        "staff/team.html",
        {
            "rows": rows,
            "not_signed": [r for r in rows if r.document is not None and not r.signed],
            "overdue": [r for r in rows if r.overdue],
            "questions": list(selectors.questions_for(request.user)),
            "teams": list(Team.objects.all()) if selectors.oversees_everyone(request.user) else [],
            "team_filter": team_filter,
        },
    )


CSV_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value) -> str:
    """A CSV cell a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(CSV_FORMULA_START) else text


@login_required
def team_export(request: HttpRequest) -> HttpResponse:
    """The team list as CSV: names, guidance signed or not, training level and dates. Nothing
    else; every download is recorded (who, when, how many rows)."""
    _team_viewer(request)
    team_filter = _team_filter(request)
    rows = selectors.team_overview(request.user, team=team_filter)
    services.record_team_export(actor=request.user, team=team_filter, rows=len(rows))
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="concernline-team.csv"'
    response["Cache-Control"] = "no-store"
    writer = csv.writer(response)
    writer.writerow(
        [
            "name",
            "team",
            "employee_or_volunteer",
            "guidance_version",
            "guidance_signed",
            "guidance_signed_at",
            "training_level",
            "training_due",
            "training_overdue",
            "training_last_completed",
        ]
    )
    for row in rows:
        writer.writerow(
            _cell(value)
            for value in [
                row.person.full_name,
                row.person.team or "",
                row.person.engagement,
                row.document.version if row.document else "",
                "yes" if row.signed else "no",
                timezone.localtime(row.signed_at).strftime("%Y-%m-%d %H:%M") if row.signed else "",
                row.training.level.name if row.training else "",
                row.training.due_on.isoformat() if row.training else "",
                "yes" if row.overdue else "no",
                row.last_completed.completed_on.isoformat() if row.last_completed else "",
            ]
        )
    return response


@login_required
def person_training(request: HttpRequest, user_id: int) -> HttpResponse:
    """Set the training a person needs and by when (5.1), or record that they completed it."""
    _team_viewer(request)
    person = selectors.people_overseen_by(request.user).filter(pk=user_id).first()
    if person is None:
        raise Http404
    levels = selectors.training_levels()
    current = selectors.open_training_for(person)
    usual = selectors.usual_level_for(person.role, levels)
    training_form = TrainingForm(
        initial={
            "level": current.level if current else usual,
            "due_on": current.due_on if current else None,
        }
    )
    completed_form = TrainingCompletedForm(initial={"completed_on": timezone.localdate()})
    if request.method == "POST":
        try:
            if request.POST.get("action") == "complete" and current is not None:
                completed_form = TrainingCompletedForm(request.POST)
                if completed_form.is_valid():
                    services.record_training_completed(
                        actor=request.user,
                        assignment_id=current.pk,
                        completed_on=completed_form.cleaned_data["completed_on"],
                    )
                    messages.success(request, _("Training recorded as completed."))
                    return redirect("staff:person-training", user_id=person.pk)
            else:
                training_form = TrainingForm(request.POST)
                if training_form.is_valid():
                    services.set_training(
                        actor=request.user,
                        user_id=person.pk,
                        level_id=training_form.cleaned_data["level"].pk,
                        due_on=training_form.cleaned_data["due_on"],
                    )
                    messages.success(request, _("Training level and due date saved."))
                    return redirect("staff:person-training", user_id=person.pk)
        except services.NotAllowed as exc:
            raise Http404 from exc
        except services.GuidanceError as exc:
            target = completed_form if request.POST.get("action") == "complete" else training_form
            _form_errors(target, exc)
    history = person.training.filter(completed_on__isnull=False).select_related("level")
    return render(
        request,
        "staff/person_training.html",
        {
            "person": person,
            "current": current,
            "usual": usual,
            "history": history.order_by("-completed_on"),
            "training_form": training_form,
            "completed_form": completed_form,
            "today": timezone.localdate(),
        },
    )


@login_required
@require_POST
def question_discussed(request: HttpRequest, question_id: int) -> HttpResponse:
    _team_viewer(request)
    try:
        services.mark_question_discussed(actor=request.user, question_id=question_id)
    except services.NotAllowed as exc:
        raise Http404 from exc
    messages.success(request, _("Marked as discussed."))
    return redirect("staff:team")


@require_POST
def set_language(request: HttpRequest) -> HttpResponse:
    """The switcher on every page. Remembers the choice for this session and, for a signed-in
    person, saves it as their preference (so their SMS pages and calls follow); Django's
    set_language then sets the language cookie and goes back to the page (`next`, checked)."""
    language = request.POST.get("language", "")
    if known_language(language):
        request.session[CHOSEN_SESSION_KEY] = language
        if request.user.is_authenticated:
            services.set_language_preference(actor=request.user, language=language)
    return i18n_views.set_language(request)
