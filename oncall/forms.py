from django import forms
from django.utils.translation import gettext_lazy as _

from staff.models import Role, User

LOCAL_INPUT = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


class OverrideForm(forms.Form):
    """Put a manager on call for a span: "I'll cover" fills it with the person asking.
    Times are Europe/London local time."""

    person = forms.ModelChoiceField(
        label=_("Who is on call"),
        queryset=User.objects.filter(role=Role.MANAGER, is_active=True),
        error_messages={
            "required": _("Choose who is on call."),
            "invalid_choice": _("Choose an active manager."),
        },
    )
    starts_at = forms.DateTimeField(
        label=_("From"),
        widget=LOCAL_INPUT,
        error_messages={"required": _("Give the start."), "invalid": _("Give a date and time.")},
    )
    ends_at = forms.DateTimeField(
        label=_("Until"),
        widget=LOCAL_INPUT,
        error_messages={"required": _("Give the end."), "invalid": _("Give a date and time.")},
    )
    reason = forms.CharField(label=_("Reason (optional)"), max_length=120, required=False)

    def clean(self):
        data = super().clean()
        starts_at, ends_at = data.get("starts_at"), data.get("ends_at")
        if starts_at and ends_at and ends_at <= starts_at:
            self.add_error("ends_at", _("The end must be after the start."))
        return data
