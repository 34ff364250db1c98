from django import forms
from django.utils.translation import gettext_lazy as _

from staff.models import Role, User

from .models import Ground, ReportKind, YesNoUnsure


class ReportForm(forms.Form):
    """The report page. Plain HTML controls, so it works with JavaScript off."""

    kind = forms.ChoiceField(
        label=_("What are you reporting?"),
        choices=ReportKind.choices,
        widget=forms.RadioSelect,
        error_messages={"required": _("Choose what you are reporting.")},
    )
    urgent = forms.BooleanField(
        label=_("This cannot wait: page the on-call manager now"), required=False
    )
    grounds = forms.MultipleChoiceField(
        label=_("Why could it not wait for consent? (urgent disclosure)"),
        choices=Ground.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )
    narrative = forms.CharField(
        label=_("What happened?"),
        widget=forms.Textarea(attrs={"rows": 6}),
        max_length=10000,
        error_messages={"required": _("Say briefly what happened.")},
    )
    service_user_ref = forms.RegexField(
        label=_("Service user reference (not their name)"),
        regex=r"^[A-Za-z0-9-]{0,32}$",
        required=False,
        max_length=32,
        error_messages={
            "invalid": _(
                "Use the organisation's reference: letters, digits and dashes only, never a name."
            )
        },
    )
    who_was_told = forms.CharField(
        label=_("Who received the information?"), max_length=200, required=False
    )
    representative_consulted = forms.ChoiceField(
        label=_("Was the person's representative consulted?"),
        choices=[("", "—"), *YesNoUnsure.choices],
        required=False,
    )
    emergency_services_called = forms.ChoiceField(
        label=_("Were the emergency services called?"),
        choices=[("", "—"), *YesNoUnsure.choices],
        required=False,
    )
    client_token = forms.UUIDField(widget=forms.HiddenInput, required=False)

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("kind") == ReportKind.URGENT_DISCLOSURE and not cleaned.get("grounds"):
            self.add_error("grounds", _("Tick at least one reason the disclosure could not wait."))
        return cleaned


class ReassignForm(forms.Form):
    """Whom to hand a case to: an active manager with a mobile number to page."""

    to = forms.ModelChoiceField(
        label=_("Reassign to"),
        queryset=User.objects.none(),
        error_messages={"invalid_choice": _("Choose a manager who can be paged.")},
    )

    def __init__(self, *args, exclude=None, **kwargs):
        super().__init__(*args, **kwargs)
        managers = User.objects.filter(role=Role.MANAGER, is_active=True).exclude(phone="")
        if exclude is not None:
            managers = managers.exclude(pk=exclude.pk)
        self.fields["to"].queryset = managers.order_by("full_name")
