from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.utils.translation import gettext_lazy as _

from .models import Team, User


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    search_fields = ["name"]


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["full_name"]
    list_display = ["email", "full_name", "role", "team", "phone", "is_active"]
    list_filter = ["role", "team", "engagement", "language", "is_active"]
    search_fields = ["email", "full_name"]
    autocomplete_fields = ["team", "line_manager"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        (
            _("Person"),
            {
                "fields": [
                    "full_name",
                    "role",
                    "team",
                    "line_manager",
                    "phone",
                    "language",
                    "engagement",
                ]
            },
        ),
        (_("Access"), {"fields": ["is_active", "is_staff", "is_superuser", "groups"]}),
    ]
    add_fieldsets = [
        (
            None,
            {
                "classes": ["wide"],
                "fields": ["email", "full_name", "role", "password1", "password2"],
            },
        ),
    ]
    filter_horizontal = ["groups"]
