from django.contrib import admin

from .models import (
    ContactPreferences,
    InboundMessage,
    NotificationAttempt,
    PageRequest,
    StatusChange,
)


class StatusChangeInline(admin.TabularInline):
    model = StatusChange
    extra = 0
    can_delete = False
    readonly_fields = ["status", "error_code", "detail", "at"]


@admin.register(NotificationAttempt)
class NotificationAttemptAdmin(admin.ModelAdmin):
    """Delivery records, read-only: admins see why a page failed (the provider's code and
    reason) without seeing any case content, which never enters a message body."""

    list_display = [
        "id",
        "recipient",
        "channel",
        "status",
        "error_code",
        "error_message",
        "created_at",
    ]
    list_filter = ["status", "channel"]
    readonly_fields = [f.name for f in NotificationAttempt._meta.fields]
    inlines = [StatusChangeInline]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(InboundMessage)
class InboundMessageAdmin(admin.ModelAdmin):
    list_display = ["received_at", "from_number", "sender", "body", "reply"]
    readonly_fields = [f.name for f in InboundMessage._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(PageRequest)
class PageRequestAdmin(admin.ModelAdmin):
    """One page to one person: its channel plan, how far it got, and the paging times."""

    list_display = [
        "id",
        "recipient",
        "topic",
        "importance",
        "step",
        "first_sent_at",
        "first_delivered_at",
        "acknowledged_at",
        "acknowledged_via",
        "exhausted_at",
    ]
    list_filter = ["importance", "acknowledged_via"]
    readonly_fields = [f.name for f in PageRequest._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ContactPreferences)
class ContactPreferencesAdmin(admin.ModelAdmin):
    list_display = ["user", "important_rule", "normal_rule", "sms_opted_out", "updated_at"]
