"""The DPO's subject access page: choose a member of staff (by email) or enter a service-user
reference, say why, and download the export (incidents.subject_access)."""

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _

from config.errors import ConcernlineError

from . import subject_access as sar
from .models import SubjectAccessExport

RECENT_EXPORTS = 50


class SubjectAccessForm(forms.Form):
    staff_email = forms.EmailField(
        label=_("A member of staff (their email address)"), required=False, max_length=254
    )
    service_user_ref = forms.CharField(
        label=_("or a service user reference"), required=False, max_length=32
    )
    reason = forms.CharField(
        label=_("Why (the request's date and your reference for it)"),
        widget=forms.Textarea(attrs={"rows": 3}),
        min_length=sar.REASON_MIN_LENGTH,
        max_length=2000,
        error_messages={"required": _("Say why you are making this export.")},
    )

    def clean(self):
        data = super().clean()
        email = data.get("staff_email")
        ref = data.get("service_user_ref", "").strip()
        if bool(email) == bool(ref) and "staff_email" not in self.errors:
            self.add_error(
                "staff_email",
                _("Give a member of staff's email address or a service user reference, not both."),
            )
        return data


# Service errors name their field by the service's words; the form's fields are these.
FIELDS = {"staff": "staff_email", "service_user_ref": "service_user_ref", "reason": "reason"}


def _refused(request: HttpRequest) -> HttpResponse:
    return render(request, "incidents/subject_access_refused.html", status=403)


@login_required
def subject_access(request: HttpRequest) -> HttpResponse:
    """Only the DPO; everyone else, administrators included, gets a plain 403."""
    if not sar.may_export(request.user):
        return _refused(request)
    form = SubjectAccessForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            staff = sar.find_staff_member(data["staff_email"]) if data["staff_email"] else None
            export = sar.export_subject_access(
                actor=request.user,
                staff=staff,
                service_user_ref=data["service_user_ref"],
                reason=data["reason"],
                via="page",
                request=request,
            )
        except sar.SubjectAccessRefused:
            return _refused(request)
        except ConcernlineError as exc:
            for name, message in (exc.extra or {}).items():
                form.add_error(FIELDS.get(name), message)
            if not exc.extra:
                form.add_error(None, exc.message)
        else:
            response = FileResponse(
                export.file,
                as_attachment=True,
                filename=export.filename,
                content_type="application/zip",
            )
            response["Cache-Control"] = "no-store"
            response["X-Content-Type-Options"] = "nosniff"
            return response
    exports = SubjectAccessExport.objects.select_related("requested_by", "subject_user")[
        :RECENT_EXPORTS
    ]
    status = 400 if form.is_bound and form.errors else 200
    return render(
        request, "incidents/subject_access.html", {"form": form, "exports": exports}, status=status
    )
