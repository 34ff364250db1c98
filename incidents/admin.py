"""Configuration screens of incidents: the retention rules. Cases themselves are never
edited here (need-to-know, incidents/access.py); legal holds are placed and lifted on the
retention page, through incidents.retention, so each one is on its case's timeline."""

from django.contrib import admin

from .retention_models import RetentionRule


@admin.register(RetentionRule)
class RetentionRuleAdmin(admin.ModelAdmin):
    list_display = ["__str__", "kind", "outcome", "keep_months", "basis", "changed_at"]
    list_filter = ["kind", "outcome"]
    readonly_fields = ["changed_at"]
