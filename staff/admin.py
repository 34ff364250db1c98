from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext_lazy as _

from config.errors import ConcernlineError

from . import services
from .models import (
    ApiToken,
    GuidanceAcknowledgement,
    GuidanceDocument,
    Role,
    Team,
    TeamExport,
    TrainingLevel,
    User,
)


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


class GuidanceDocumentForm(forms.ModelForm):
    """Publish a version: paste the text, or upload it as a plain-text file (UTF-8, checked by
    its content, at most GUIDANCE_MAX_UPLOAD_BYTES). Only the text is kept, in the database."""

    text_file = forms.FileField(
        label=_("or upload the text"),
        required=False,
        help_text=_("A plain-text (.txt) file in UTF-8."),
    )

    class Meta:
        model = GuidanceDocument
        fields = ["audience", "title", "body"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "body" in self.fields:
            self.fields["body"].required = False

    def clean_text_file(self):
        upload = self.cleaned_data.get("text_file")
        if upload is None:
            return ""
        if upload.size > settings.GUIDANCE_MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                _("The file is too large (at most %(kb)d KB).")
                % {"kb": settings.GUIDANCE_MAX_UPLOAD_BYTES // 1024}
            )
        return read_plain_text(upload.read())

    def clean(self):
        data = super().clean()
        text = data.get("text_file") or data.get("body") or ""
        if not text.strip():
            raise forms.ValidationError(_("Paste the guidance text or upload it as a file."))
        data["body"] = text
        return data


def read_plain_text(raw: bytes) -> str:
    """The text of an uploaded file, refused unless it really is plain text: no NUL bytes (PDFs,
    Word files, images all have them or a binary signature), valid UTF-8."""
    if raw.startswith((b"%PDF", b"PK\x03\x04", b"\xd0\xcf\x11\xe0")) or b"\x00" in raw:
        raise forms.ValidationError(_("That is not a plain-text file. Save it as .txt first."))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise forms.ValidationError(
            _("That file is not UTF-8 text. Save it as .txt (UTF-8) first.")
        ) from None
    return text.replace("\r\n", "\n")


@admin.register(GuidanceDocument)
class GuidanceDocumentAdmin(admin.ModelAdmin):
    """Versions are published here and never edited: a change is a new version, which asks
    everyone it applies to to confirm again."""

    form = GuidanceDocumentForm
    list_display = ["title", "audience", "version", "published_at", "published_by"]
    list_filter = ["audience"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["audience", "version", "title", "body", "published_at", "published_by"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["audience", "title", "body", "text_file"]
        return self.get_readonly_fields(request, obj)

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        if change:
            return
        try:
            published = services.publish_guidance(
                actor=request.user,
                audience=form.cleaned_data["audience"],
                title=form.cleaned_data["title"],
                body=form.cleaned_data["body"],
            )
        except ConcernlineError as exc:
            raise PermissionDenied(exc.message) from exc
        obj.pk = published.pk
        obj.version = published.version
        obj.published_at = published.published_at
        obj.published_by = published.published_by


@admin.register(GuidanceAcknowledgement)
class GuidanceAcknowledgementAdmin(admin.ModelAdmin):
    list_display = ["user", "document", "confirmed_at"]
    list_filter = ["document"]
    search_fields = ["user__full_name", "user__email"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class TrainingLevelForm(forms.ModelForm):
    roles = forms.MultipleChoiceField(
        label=_("usual for roles"),
        choices=Role.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Offered first when a manager sets the training of someone in these roles."),
    )

    class Meta:
        model = TrainingLevel
        fields = ["name", "description", "roles", "position"]


@admin.register(TrainingLevel)
class TrainingLevelAdmin(admin.ModelAdmin):
    form = TrainingLevelForm
    list_display = ["name", "position", "roles"]


@admin.register(TeamExport)
class TeamExportAdmin(admin.ModelAdmin):
    list_display = ["at", "actor", "team", "rows"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Admins see every API token (never its key) and can revoke one."""

    list_display = [
        "prefix",
        "user",
        "name",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["revoked_at"]
    search_fields = ["user__email", "prefix", "name"]
    readonly_fields = [f.name for f in ApiToken._meta.fields if f.name != "key_hash"]
    exclude = ["key_hash"]
    actions = ["revoke"]

    @admin.action(description=_("Revoke the selected tokens"))
    def revoke(self, request, queryset):
        from .services import revoke_api_token

        for token in queryset:
            revoke_api_token(token_id=token.id, actor=request.user)

    def has_add_permission(self, request):
        return False
