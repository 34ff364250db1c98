"""Data-protection retention: how long a closed case is kept, the legal holds that stop the
clock, and the record of each case anonymised. See incidents.retention and the README,
"Retention". None of these rows holds personal data: references, kinds, outcomes, dates,
counts and staff ids only (a legal hold's reason is cleared when its case is anonymised)."""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from .models import Case, Outcome, ReportKind


class RetentionRule(models.Model):
    """Keep a closed case this many months after closure, then anonymise it. Blank kind or
    outcome means any. The most specific rule wins: kind and outcome, then kind, then
    outcome, then the catch-all (incidents.retention.rule_for)."""

    kind = models.CharField(
        _("report kind"), max_length=32, choices=ReportKind, blank=True, help_text=_("Blank: any.")
    )
    outcome = models.CharField(
        _("outcome"), max_length=32, choices=Outcome, blank=True, help_text=_("Blank: any.")
    )
    keep_months = models.PositiveIntegerField(
        _("keep for (months after closure)"),
        validators=[MinValueValidator(1), MaxValueValidator(1200)],
        help_text=_("12 is one year, 72 is six years."),
    )
    basis = models.CharField(
        _("why this long"),
        max_length=200,
        help_text=_("The policy or law behind the period, e.g. the HR records policy."),
    )
    changed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["kind", "outcome"]
        verbose_name = _("retention rule")
        constraints = [
            models.UniqueConstraint(fields=["kind", "outcome"], name="retention_rule_once"),
        ]

    def __str__(self) -> str:
        kind = self.get_kind_display() if self.kind else _("any kind")
        outcome = self.get_outcome_display() if self.outcome else _("any outcome")
        return f"{kind} / {outcome}: {self.keep_months}"


class LegalHold(models.Model):
    """While a hold is in force (not lifted) its case is never anonymised, whatever the rules
    say. One hold in force per case; lifting it keeps the row, so the history stays."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="legal_holds")
    reason = models.CharField(
        _("reason"),
        max_length=200,
        help_text=_("The matter it is held for (a claim or tribunal reference), not names."),
    )
    placed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    placed_at = models.DateTimeField()
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    lifted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-placed_at", "-id"]
        verbose_name = _("legal hold")
        constraints = [
            models.UniqueConstraint(
                fields=["case"],
                condition=Q(lifted_at__isnull=True),
                name="legal_hold_one_in_force_per_case",
            ),
        ]

    def __str__(self) -> str:
        return f"Hold {self.pk} on {self.case_id}"


class PurgeTrigger(models.TextChoices):
    NIGHTLY = "nightly", _("Nightly task")
    COMMAND = "command", _("manage.py purge_expired")


class PurgeRecord(models.Model):
    """What retention anonymised and why: one row per case, written in the same transaction as
    the anonymisation. Plain facts only (reference, kind, outcome, rule, dates, counts)."""

    case = models.OneToOneField(Case, on_delete=models.PROTECT, related_name="purge_record")
    case_reference = models.CharField(max_length=32)
    kind = models.CharField(max_length=32, choices=ReportKind)
    outcome = models.CharField(max_length=32, choices=Outcome, blank=True)
    # The rule as it stood when it was applied (the rule itself may change or go later).
    rule = models.ForeignKey(RetentionRule, null=True, on_delete=models.SET_NULL, related_name="+")
    rule_kind = models.CharField(max_length=32, blank=True)
    rule_outcome = models.CharField(max_length=32, blank=True)
    keep_months = models.PositiveIntegerField()
    closed_at = models.DateTimeField()
    expired_at = models.DateTimeField()
    purged_at = models.DateTimeField(db_index=True)
    run = models.UUIDField(db_index=True)
    trigger = models.CharField(max_length=16, choices=PurgeTrigger)
    notes_removed = models.PositiveIntegerField(default=0)
    attachments_removed = models.PositiveIntegerField(default=0)
    files_deleted = models.PositiveIntegerField(default=0)
    break_glass_reasons_cleared = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-purged_at", "-id"]
        verbose_name = _("purge record")

    def __str__(self) -> str:
        return f"{self.case_reference} purged {self.purged_at:%Y-%m-%d}"
