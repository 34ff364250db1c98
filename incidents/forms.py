from django import forms
from django.utils.translation import gettext_lazy as _

from staff.models import Role, User

from .models import (
    Consent,
    Ground,
    HowKnown,
    HRDecision,
    HRStage,
    Intent,
    Outcome,
    ReportKind,
    YesNoUnsure,
)


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
    # The kind's own questions (services.KIND_DETAILS); only the chosen kind's are kept.
    colleague = forms.CharField(label=_("Which colleague?"), max_length=200, required=False)
    occurred = forms.CharField(label=_("When did it happen?"), max_length=200, required=False)
    requester = forms.CharField(label=_("Who asked for the information?"), max_length=200)
    purpose = forms.CharField(label=_("What did they want it for?"), max_length=200)
    consent = forms.ChoiceField(
        label=_("Was the person asked for their consent?"),
        choices=Consent.choices,
        widget=forms.RadioSelect,
    )
    how_known = forms.ChoiceField(
        label=_("How do you know?"), choices=HowKnown.choices, widget=forms.RadioSelect
    )
    intent = forms.ChoiceField(
        label=_("Was it on purpose or by accident?"),
        choices=Intent.choices,
        widget=forms.RadioSelect,
    )
    information = forms.CharField(label=_("What information was shared?"), max_length=200)
    personal_data = forms.ChoiceField(
        label=_("Was it personal data about a service user?"),
        choices=YesNoUnsure.choices,
        widget=forms.RadioSelect,
    )
    client_token = forms.UUIDField(widget=forms.HiddenInput, required=False)

    DETAIL_FIELDS = (
        "colleague",
        "occurred",
        "requester",
        "purpose",
        "consent",
        "how_known",
        "intent",
        "information",
        "personal_data",
    )
    SHARED_OPTIONAL = (
        "urgent",
        "grounds",
        "service_user_ref",
        "who_was_told",
        "representative_consulted",
        "emergency_services_called",
    )

    def __init__(self, *args, kind: str | None = None, **kwargs):
        """With a known `kind`, only that kind's questions (the kind itself is hidden)."""
        super().__init__(*args, **kwargs)
        from .services import KIND_DETAILS, KIND_FIELDS

        self.kind = kind if kind in ReportKind.values else None
        if self.kind is None:
            for name in (*self.DETAIL_FIELDS, *self.SHARED_OPTIONAL):
                self.fields.pop(name)
            return
        self.fields["kind"].widget = forms.HiddenInput()
        self.fields["kind"].initial = self.kind
        keep = set(KIND_FIELDS[self.kind]) | set(KIND_DETAILS[self.kind])
        for name in (*self.DETAIL_FIELDS, *self.SHARED_OPTIONAL):
            if name not in keep:
                self.fields.pop(name)
        for name, (_allowed, required) in KIND_DETAILS[self.kind].items():
            self.fields[name].required = required
            self.fields[name].error_messages["required"] = _("Answer this question.")
        if "who_was_told" in self.fields and self.kind == ReportKind.INAPPROPRIATE_BREACH:
            self.fields["who_was_told"].label = _("Who was it shared with?")

    def details(self) -> dict:
        return {
            name: self.cleaned_data[name]
            for name in self.DETAIL_FIELDS
            if name in self.fields and self.cleaned_data.get(name)
        }

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("kind") == ReportKind.URGENT_DISCLOSURE and not cleaned.get("grounds"):
            self.add_error("grounds", _("Tick at least one reason the disclosure could not wait."))
        return cleaned


class KindForm(forms.Form):
    """Step one of the report page, sent by GET so it works without JavaScript."""

    kind = forms.ChoiceField(
        label=_("What are you reporting?"), choices=ReportKind.choices, widget=forms.RadioSelect
    )


def one_time_token() -> forms.UUIDField:
    """The hidden `client_token` a page gives its form, fresh on each load: the same form sent
    twice adds what it says once. Leaving it out is allowed (a page from before it existed)."""
    return forms.UUIDField(
        widget=forms.HiddenInput,
        required=False,
        # Only a page spoilt on the way sends one that is not a token; it is said at the top.
        error_messages={
            "invalid": _("This page is out of date. Load it again, then add what you wrote.")
        },
    )


class AddInformationForm(forms.Form):
    """The reporter's "Add" on their own report's page. Each page carries a fresh
    `client_token`, so the same form sent twice (a double tap, a browser sending it again) adds
    it once (services.add_report_information)."""

    text = forms.CharField(
        label=_("Add information to your report"),
        widget=forms.Textarea(attrs={"rows": 4}),
        max_length=10000,
        error_messages={"required": _("Say what you want to add.")},
    )
    client_token = one_time_token()


class NoteForm(forms.Form):
    """A note on the case page. Each page carries a fresh `client_token`, so the same form sent
    twice (a double tap, a browser sending it again) adds one note (services.add_note)."""

    text = forms.CharField(
        label=_("Add a note"),
        widget=forms.Textarea(attrs={"rows": 4}),
        max_length=10000,
        error_messages={"required": _("Write the note.")},
    )
    client_token = one_time_token()


class AttachmentForm(forms.Form):
    file = forms.FileField(label=_("Attach a file (PDF, PNG, JPEG or text)"))


class ReviewerForm(forms.Form):
    reviewer = forms.ModelChoiceField(
        label=_("Reviewer"),
        queryset=User.objects.filter(role=Role.MANAGER, is_active=True),
    )

    def __init__(self, *args, reporter_id: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if reporter_id is not None:  # never offered the review of their own report
            self.fields["reviewer"].queryset = self.fields["reviewer"].queryset.exclude(
                pk=reporter_id
            )


class OutcomeForm(forms.Form):
    outcome = forms.ChoiceField(
        label=_("Outcome"), choices=Outcome.choices, widget=forms.RadioSelect
    )


class HRStageForm(forms.Form):
    """The next stage of the disciplinary procedure. Given the case's `current` stage, it offers
    only the stages that can follow it, and asks for a hearing's date or the decision only when
    one of those stages needs it (services.advance_referral checks again)."""

    stage = forms.ChoiceField(label=_("Move to"), choices=HRStage.choices)
    hearing_at = forms.DateTimeField(
        label=_("Hearing date and time (the invitation states the right to be accompanied)"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
    )
    decision = forms.ChoiceField(
        label=_("Decision"), choices=[("", "—"), *HRDecision.choices], required=False
    )

    def __init__(self, *args, current: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if current is None:
            return
        from .services import HR_NEXT

        following = HR_NEXT.get(current, set())
        self.fields["stage"].choices = [
            (value, label) for value, label in HRStage.choices if value in following
        ]
        if HRStage.HEARING not in following:
            del self.fields["hearing_at"]
        if HRStage.DECISION not in following:
            del self.fields["decision"]


class BreachDecisionForm(forms.Form):
    ico_notified = forms.BooleanField(label=_("The ICO has been notified"), required=False)
    subjects_told = forms.BooleanField(
        label=_("The people affected have been told"), required=False
    )
    reason = forms.CharField(
        label=_("Why not (if either was not done)"),
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        max_length=5000,
    )


class SafeguardingReferralForm(forms.Form):
    reference = forms.CharField(label=_("Local authority's reference"), max_length=64)


class BreakGlassForm(forms.Form):
    reason = forms.CharField(
        label=_("Why must you open this case now?"),
        widget=forms.Textarea(attrs={"rows": 3}),
        min_length=10,
        max_length=2000,
    )


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
