from django.contrib import admin

from .models import InboundMessage, NotificationAttempt, StatusChange


class StatusChangeInline(admin.TabularInline):
    model = StatusChange
    extra = 0
    can_delete = False
    readonly_fields = ["status", "error_code", "at"]


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
