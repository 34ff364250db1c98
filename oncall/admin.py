from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from .models import Alert, EscalationPolicy, EscalationStep, Page, Rota, RotaParticipant
from .policies import STEP_FIELDS, policy_problems


class RotaParticipantInline(admin.TabularInline):
    model = RotaParticipant
    extra = 1
    autocomplete_fields = ["person"]


@admin.register(Rota)
class RotaAdmin(admin.ModelAdmin):
    list_display = ["name", "is_default", "handoff_weekday", "handoff_time", "start_date"]
    inlines = [RotaParticipantInline]


class PageInline(admin.TabularInline):
    model = Page
    extra = 0
    can_delete = False
    readonly_fields = [
        "step",
        "recipient",
        "reason",
        "importance",
        "due_at",
        "created_at",
        "exhausted_at",
    ]


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    """Alerts carry no case content (title, reference and link only), so the on-call
    administrator can see the state of every escalation."""

    list_display = ["reference", "title", "state", "current_step", "next_step_at", "created_at"]
    list_filter = ["state", "urgency"]
    readonly_fields = [f.name for f in Alert._meta.fields]
    inlines = [PageInline]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class StepFormSet(forms.BaseInlineFormSet):
    """Checks the policy as a whole: it ends in a fallback that reaches someone, loops wait."""

    def clean(self):
        super().clean()
        if any(self.errors):
            return
        kept = [
            f.cleaned_data
            for f in self.forms
            if f.cleaned_data and not f.cleaned_data.get("DELETE")
        ]
        kept.sort(key=lambda d: d.get("position") or 0)
        steps = []
        for data in kept:
            step = {f: None for f in STEP_FIELDS}
            step.update({k: v for k, v in data.items() if k in STEP_FIELDS})
            step["rota_id"] = data["rota"].pk if data.get("rota") else None
            step["person_id"] = data["person"].pk if data.get("person") else None
            steps.append(step)
        problems = policy_problems(steps)
        if problems:
            raise ValidationError(problems)


class EscalationStepInline(admin.TabularInline):
    model = EscalationStep
    formset = StepFormSet
    extra = 1
    min_num = 1
    autocomplete_fields = ["person"]
    fields = [
        "position",
        "kind",
        "importance",
        "rota",
        "person",
        "role",
        "minutes",
        "repeat_from",
        "times",
    ]


@admin.register(EscalationPolicy)
class EscalationPolicyAdmin(admin.ModelAdmin):
    list_display = ["name", "category", "urgency", "is_active"]
    list_filter = ["is_active", "urgency"]
    inlines = [EscalationStepInline]
