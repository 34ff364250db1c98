from django import forms
from django.contrib.auth import forms as auth_forms
from django.utils import translation
from django.utils.translation import gettext_lazy as _


class SecondFactorForm(forms.Form):
    token = forms.CharField(
        label=_("Code from your authenticator app, or a recovery code"),
        max_length=16,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
        error_messages={"required": _("Enter the code.")},
    )


class GuidanceQuestionForm(forms.Form):
    question = forms.CharField(
        label=_("What would you like to ask or discuss?"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 4}),
        error_messages={"required": _("Say what you would like to ask.")},
    )


class TrainingForm(forms.Form):
    level = forms.ModelChoiceField(
        label=_("Training level"),
        queryset=None,
        empty_label=None,
        error_messages={"required": _("Choose a training level.")},
    )
    due_on = forms.DateField(
        label=_("Due by"),
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={
            "required": _("Give the date the training is due by."),
            "invalid": _("Enter the date as YYYY-MM-DD."),
        },
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from .models import TrainingLevel

        self.fields["level"].queryset = TrainingLevel.objects.all()


class TrainingCompletedForm(forms.Form):
    completed_on = forms.DateField(
        label=_("Completed on"),
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={
            "required": _("Give the date the training was completed."),
            "invalid": _("Enter the date as YYYY-MM-DD."),
        },
    )


class PasswordResetForm(auth_forms.PasswordResetForm):
    """The reset email goes out in the account holder's language, whatever language the page
    that asked for it was in."""

    def send_mail(self, subject_template_name, email_template_name, context, *args, **kwargs):
        with translation.override(context["user"].language):
            super().send_mail(subject_template_name, email_template_name, context, *args, **kwargs)
