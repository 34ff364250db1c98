from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet
from django.utils.translation import gettext_lazy as _

from .models import (
    Alert,
    EscalationPolicy,
    EscalationStep,
    LayerMember,
    Page,
    Rota,
    RotaLayer,
    RotaOverride,
)
from .policies import STEP_FIELDS, policy_problems


class RotaLayerInline(admin.TabularInline):
    model = RotaLayer
    extra = 0
    fields = ["name", "priority", "window", "handoff_every", "handoff_unit", "handoff_time"]
    readonly_fields = fields
    show_change_link = True
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False  # a layer is added on its own page, with its people


class RotaOverrideInline(admin.TabularInline):
    model = RotaOverride
    extra = 0
    fields = ["person", "starts_at", "ends_at", "reason"]
    autocomplete_fields = ["person"]


@admin.register(Rota)
class RotaAdmin(admin.ModelAdmin):
    list_display = ["name", "is_default"]
    fields = ["name", "is_default", "owners"]
    filter_horizontal = ["owners"]
    inlines = [RotaLayerInline, RotaOverrideInline]


class MembersFormSet(BaseInlineFormSet):
    def clean(self):
        super().clean()
        kept = [
            form
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE", False)
        ]
        if not kept:
            raise ValidationError(_("A layer needs at least one person."))


class LayerMemberInline(admin.TabularInline):
    model = LayerMember
    formset = MembersFormSet
    extra = 1
    min_num = 1
    autocomplete_fields = ["person"]


@admin.register(RotaLayer)
class RotaLayerAdmin(admin.ModelAdmin):
    list_display = ["name", "rota", "priority", "window", "handoff_every", "handoff_unit"]
    list_filter = ["rota"]
    inlines = [LayerMemberInline]


@admin.register(RotaOverride)
class RotaOverrideAdmin(admin.ModelAdmin):
    list_display = ["rota", "person", "starts_at", "ends_at", "reason"]
    list_filter = ["rota"]
    autocomplete_fields = ["person"]
    exclude = ["created_by"]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


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
