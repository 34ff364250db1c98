"""Reports, the cases they open, each case's append-only timeline, and the access log."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class ReportKind(models.TextChoices):
    CONCERN_COLLEAGUE = "concern_colleague", _("A colleague is not keeping to the policy")
    WORRYING_INFORMATION = "worrying_information", _("I was told something that worries me")
    DISCLOSURE_REQUEST = "disclosure_request", _("Someone asked me to share information")
    URGENT_DISCLOSURE = "urgent_disclosure", _("Urgent disclosure")
    INAPPROPRIATE_BREACH = "inappropriate_breach", _("Information was shared when it should not be")


# The short, non-confidential name of each kind, used in pages (SMS, calls).
KIND_SHORT_NAMES = {
    ReportKind.CONCERN_COLLEAGUE: _("concern about a colleague"),
    ReportKind.WORRYING_INFORMATION: _("worrying information"),
    ReportKind.DISCLOSURE_REQUEST: _("request to disclose"),
    ReportKind.URGENT_DISCLOSURE: _("urgent disclosure"),
    ReportKind.INAPPROPRIATE_BREACH: _("information breach"),
}


class Ground(models.TextChoices):
    """Guidance 3.3: the exceptional circumstances that justify disclosure without consent."""

    IMMINENT_DANGER = "imminent_danger", _("Grave and imminent danger to someone")
    ABUSE_OR_HARM = "abuse_or_harm", _("Abuse or harm (safeguarding)")
    VIOLENT_RESPONSE = "violent_response", _("Risk of a violent response")
    CRIME = "crime", _("A crime")
    NATIONAL_SECURITY = "national_security", _("National security")


SAFEGUARDING_GROUNDS = {Ground.ABUSE_OR_HARM, Ground.IMMINENT_DANGER}


class YesNoUnsure(models.TextChoices):
    YES = "yes", _("Yes")
    NO = "no", _("No")
    NOT_APPLICABLE = "n/a", _("Does not apply")


class CaseStatus(models.TextChoices):
    REPORTED = "reported", _("Reported")
    ACKNOWLEDGED = "acknowledged", _("Acknowledged")
    UNDER_REVIEW = "under_review", _("Under review")
    OUTCOME_RECORDED = "outcome_recorded", _("Outcome recorded")
    CLOSED = "closed", _("Closed")


class Case(models.Model):
    reference = models.CharField(_("reference"), max_length=32, unique=True)
    kind = models.CharField(_("kind"), max_length=32, choices=ReportKind)
    urgent = models.BooleanField(_("urgent"), default=False)
    status = models.CharField(
        _("status"), max_length=32, choices=CaseStatus, default=CaseStatus.REPORTED, db_index=True
    )
    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reported_cases"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="owned_cases",
    )
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="reviewed_cases",
    )
    client_token = models.UUIDField(
        null=True, blank=True, help_text="Sent by the form; a resubmission returns the same case."
    )
    safeguarding = models.BooleanField(default=False)
    personal_data_breach = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["reporter", "client_token"], name="case_client_token_once"
            ),
        ]

    def __str__(self) -> str:
        return self.reference

    # How oncall's alerts point back at a case: owner_type plus the case's id.
    ALERT_OWNER_TYPE = "incidents.case"


class Report(models.Model):
    """What the reporter told us, in the guidance's own terms. The narrative stays in the
    database: it never goes into a page, a log line, a task argument or a signal."""

    case = models.OneToOneField(Case, on_delete=models.CASCADE, related_name="report")
    narrative = models.TextField(_("what happened"))
    grounds = models.JSONField(_("grounds"), default=list, blank=True)
    service_user_ref = models.CharField(_("service user reference"), max_length=32, blank=True)
    who_was_told = models.CharField(_("who received the information"), max_length=200, blank=True)
    representative_consulted = models.CharField(
        _("representative consulted"), max_length=8, choices=YesNoUnsure, blank=True
    )
    emergency_services_called = models.CharField(
        _("emergency services called"), max_length=8, choices=YesNoUnsure, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Report for {self.case_id}"


class ReferenceSequence(models.Model):
    """The last case number used in a year, for references like C-2026-0001."""

    year = models.PositiveIntegerField(primary_key=True)
    last = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.year}: {self.last}"


class TimelineKind(models.TextChoices):
    REPORTED = "reported", _("Reported")
    ALERT_RAISED = "alert_raised", _("On-call paged")
    PAGE_SENT = "page_sent", _("Page sent")
    PAGE_DELIVERED = "page_delivered", _("Page delivered")
    PAGE_FAILED = "page_failed", _("Page failed")
    ACKNOWLEDGED = "acknowledged", _("Acknowledged")
    STEP_STARTED = "step_started", _("Escalation step started")
    NOBODY_TO_PAGE = "nobody_to_page", _("Warning: nobody to page")
    FALLBACK_REACHED = "fallback_reached", _("Final fallback reached")
    ESCALATED_NOW = "escalated_now", _("Escalated now")
    REASSIGNED = "reassigned", _("Reassigned")
    REMINDER = "reminder", _("Reminder to start the review")
    REOPENED = "reopened", _("Re-opened: escalation resumed")


class AppendOnlyError(Exception):
    pass


class TimelineEvent(models.Model):
    """The case's audit trail. Rows are only ever added."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="timeline")
    kind = models.CharField(max_length=32, choices=TimelineKind)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    at = models.DateTimeField(db_index=True)
    data = models.JSONField(default=dict, blank=True)
    dedupe_key = models.CharField(max_length=64, null=True, blank=True, unique=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} at {self.at:%Y-%m-%d %H:%M}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise AppendOnlyError("Timeline events are never changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Timeline events are never deleted.")


class AccessAction(models.TextChoices):
    VIEW = "view", _("Viewed")
    VIEW_AS_REPORTER = "view_reporter", _("Viewed own report")
    API_VIEW = "api_view", _("Read through the API")
    ACKNOWLEDGE = "acknowledge", _("Acknowledged")
    ESCALATE = "escalate", _("Escalated now")
    REASSIGN = "reassign", _("Reassigned")


class AccessLogEntry(models.Model):
    """Every look at a case: who, what, when, from where."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="access_log")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=32, choices=AccessAction)
    basis = models.CharField(max_length=32)
    path = models.CharField(max_length=255, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.user_id} {self.action} {self.case_id}"
