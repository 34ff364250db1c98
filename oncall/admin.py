from django.contrib import admin

from .models import Alert, Page, Rota, RotaParticipant


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
    readonly_fields = ["step", "recipient", "reason", "created_at"]


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
