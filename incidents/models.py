"""Reports, the cases they open, each case's append-only timeline, and the access log."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from config.crypto import EncryptedJSONField, EncryptedTextField


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


class Consent(models.TextChoices):
    """Guidance 3.2: was the person asked to agree to the disclosure?"""

    NOT_ASKED = "not_asked", _("Not asked yet")
    GIVEN = "given", _("Asked and given")
    REFUSED = "refused", _("Asked and refused")
    CANNOT_ASK = "cannot_ask", _("Cannot be asked")


class HowKnown(models.TextChoices):
    SELF_REPORT = "self", _("I did it (self-report)")
    SEEN = "seen", _("I saw or heard of it")


class Intent(models.TextChoices):
    ACCIDENTAL = "accidental", _("By accident")
    INTENTIONAL = "intentional", _("On purpose")
    UNSURE = "unsure", _("Not sure")


class CaseStatus(models.TextChoices):
    REPORTED = "reported", _("Reported")
    ACKNOWLEDGED = "acknowledged", _("Acknowledged")
    UNDER_REVIEW = "under_review", _("Under review")
    OUTCOME_RECORDED = "outcome_recorded", _("Outcome recorded")
    CLOSED = "closed", _("Closed")


class Outcome(models.TextChoices):
    NO_BREACH = "no_breach", _("No breach")
    LEGITIMATE_DISCLOSURE = (
        "legitimate_disclosure",
        _("Legitimate disclosure (exceptional circumstances, 3.3)"),
    )
    ADVICE_GIVEN = "advice_given", _("Advice given")
    LEARNING_NEED = "learning_need", _("Learning or training need")
    INFORMAL_ACTION = "informal_action", _("Informal action")
    DISCIPLINARY = "disciplinary", _("Refer to the disciplinary procedure")


class HRStage(models.TextChoices):
    """The ACAS Code's stages, once a case is referred to the disciplinary procedure."""

    REFERRED = "referred", _("Referred")
    INVESTIGATION = "investigation", _("Investigation")
    HEARING = "hearing", _("Hearing")
    DECISION = "decision", _("Decision")
    APPEAL = "appeal", _("Appeal")
    CLOSED = "closed", _("Closed")


class HRDecision(models.TextChoices):
    NO_CASE = "no_case", _("No case to answer")
    WRITTEN_WARNING = "written_warning", _("Written warning")
    FINAL_WRITTEN_WARNING = "final_written_warning", _("Final written warning")
    DISMISSAL = "dismissal", _("Dismissal")
    OTHER = "other", _("Other")


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
    review_started_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(_("outcome"), max_length=32, choices=Outcome, blank=True)
    outcome_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # The disciplinary procedure, once referred (HR sees the case from then on).
    referred_at = models.DateTimeField(null=True, blank=True)
    hr_stage = models.CharField(_("HR stage"), max_length=16, choices=HRStage, blank=True)
    hearing_at = models.DateTimeField(_("hearing"), null=True, blank=True)
    hr_decision = models.CharField(_("decision"), max_length=32, choices=HRDecision, blank=True)
    # Statutory decisions, recorded on the case for the breach log and the safeguarding register.
    ico_notified = models.BooleanField(null=True, blank=True)
    subjects_told = models.BooleanField(null=True, blank=True)
    breach_decided_at = models.DateTimeField(null=True, blank=True)
    local_authority_reference = models.CharField(max_length=64, blank=True)
    safeguarding_referred_at = models.DateTimeField(null=True, blank=True)
    # Set when retention anonymised the case (incidents.retention); its PurgeRecord says why.
    anonymised_at = models.DateTimeField(null=True, blank=True)

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
    database: it never goes into a page, a log line, a task argument or a signal. The
    narrative and details are encrypted at rest (config.crypto)."""

    case = models.OneToOneField(Case, on_delete=models.CASCADE, related_name="report")
    narrative = EncryptedTextField(_("what happened"))
    grounds = models.JSONField(_("grounds"), default=list, blank=True)
    service_user_ref = models.CharField(_("service user reference"), max_length=32, blank=True)
    who_was_told = models.CharField(_("who received the information"), max_length=200, blank=True)
    representative_consulted = models.CharField(
        _("representative consulted"), max_length=8, choices=YesNoUnsure, blank=True
    )
    emergency_services_called = models.CharField(
        _("emergency services called"), max_length=8, choices=YesNoUnsure, blank=True
    )
    # The kind's own questions (see services.KIND_DETAILS): who, when, who asked, consent...
    details = EncryptedJSONField(_("details"), default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Report for {self.case_id}"

    def get_grounds_display(self) -> list[str]:
        """The grounds as the reporter ticked them, in the reader's language (not their codes)."""
        labels = dict(Ground.choices)
        return [str(labels.get(ground, ground)) for ground in self.grounds]


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
    REVIEW_STARTED = "review_started", _("Review started")
    REVIEWER_ASSIGNED = "reviewer_assigned", _("Reviewer assigned")
    OUTCOME_RECORDED = "outcome_recorded", _("Outcome recorded")
    CLOSED = "closed", _("Closed")
    REFERRED = "referred", _("Referred to the disciplinary procedure")
    HR_STAGE = "hr_stage", _("Disciplinary stage")
    NOTE_ADDED = "note_added", _("Note added")
    INFORMATION_ADDED = "information_added", _("Reporter added information")
    ATTACHMENT_ADDED = "attachment_added", _("Attachment added")
    BREACH_DECISION = "breach_decision", _("Breach decision recorded")
    SAFEGUARDING_REFERRAL = "safeguarding_referral", _("Referred to the local authority")
    CLOCK_WARNED = "clock_warned", _("Clock warning")
    CLOCK_BREACHED = "clock_breached", _("Clock ran out")
    BREAK_GLASS = "break_glass", _("Break-glass access")
    STEP_STARTED = "step_started", _("Escalation step started")
    NOBODY_TO_PAGE = "nobody_to_page", _("Warning: nobody to page")
    FALLBACK_REACHED = "fallback_reached", _("Final fallback reached")
    ESCALATED_NOW = "escalated_now", _("Escalated now")
    REASSIGNED = "reassigned", _("Reassigned")
    REMINDER = "reminder", _("Reminder to start the review")
    REOPENED = "reopened", _("Re-opened: escalation resumed")
    LEGAL_HOLD_PLACED = "legal_hold_placed", _("Legal hold placed")
    LEGAL_HOLD_LIFTED = "legal_hold_lifted", _("Legal hold lifted")
    ANONYMISED = "anonymised", _("Anonymised: retention period over")


class AppendOnlyError(Exception):
    pass


class TimelineEvent(models.Model):
    """The case's audit trail. Rows are only ever added."""

    # Indexed with id below (the chain's order), not on its own.
    case = models.ForeignKey(
        Case, on_delete=models.CASCADE, related_name="timeline", db_index=False
    )
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
    # The case's timeline is a hash chain (see incidents.audit); written only by audit.py.
    prev_hash = models.CharField(max_length=64, editable=False)
    hash = models.CharField(max_length=64, editable=False)

    class Meta:
        ordering = ["at", "id"]
        indexes = [
            # A chain's last row is one probe of this index, however long the timeline of
            # every case together grows; a case_id index alone left PostgreSQL walking the
            # primary key backwards past every other case's rows for a case with none yet.
            models.Index(fields=["case", "id"], name="incidents_timeline_chain"),
        ]

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
    LIST = "list", _("Seen in a case list")
    API_VIEW = "api_view", _("Read through the API")
    ACKNOWLEDGE = "acknowledge", _("Acknowledged")
    CHANGE = "change", _("Changed")
    DOWNLOAD = "download", _("Downloaded an attachment")
    EXPORT = "export", _("Exported")
    ACCESS_LOG = "access_log", _("Read the access log")
    BREAK_GLASS = "break_glass", _("Broke the glass")
    ESCALATE = "escalate", _("Escalated now")
    REASSIGN = "reassign", _("Reassigned")
    SUBJECT_ACCESS = "subject_access", _("Subject access export")


class AccessLogEntry(models.Model):
    """Every look at a case: who, what, when, from where. Rows are only ever added."""

    # Indexed with id below (the chain's order), not on its own.
    case = models.ForeignKey(
        Case, on_delete=models.PROTECT, related_name="access_log", db_index=False
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=32, choices=AccessAction)
    basis = models.CharField(max_length=32)
    path = models.CharField(max_length=255, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    # Set by incidents.audit before the row's hash is taken, so never auto_now_add.
    at = models.DateTimeField(default=timezone.now, db_index=True)
    # Each case's access log is a hash chain (see incidents.audit); written only by audit.py.
    prev_hash = models.CharField(max_length=64, editable=False)
    hash = models.CharField(max_length=64, editable=False)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            # A chain's last row: one probe, as for the timeline.
            models.Index(fields=["case", "id"], name="incidents_access_chain"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.action} {self.case_id}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise AppendOnlyError("Access-log entries are never changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Access-log entries are never deleted.")


class CaseNote(models.Model):
    """A reviewer's note, or information the reporter added later (`from_reporter`). The
    reporter sees only their own additions; never a reviewer's note. The text is encrypted
    at rest (config.crypto)."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    from_reporter = models.BooleanField(default=False)
    text = EncryptedTextField(_("note"))
    at = models.DateTimeField(auto_now_add=True)
    client_token = models.UUIDField(
        null=True, blank=True, help_text="Sent by the note form; a resubmission adds nothing."
    )

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["case", "client_token"], name="casenote_client_token_once"
            ),
        ]

    def __str__(self) -> str:
        return f"Note {self.pk} on {self.case_id}"


class Attachment(models.Model):
    """A file kept under settings.ATTACHMENTS_DIR (outside the web root), served only through
    incidents.access. `stored_name` is random; the original name is shown, never used as a path.
    The file on disk is a Fernet token of the contents (config.crypto); `sha256` and `size`
    are of the plaintext."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="attachments")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    original_name = models.CharField(max_length=200)
    content_type = models.CharField(max_length=64)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    stored_name = models.CharField(max_length=64, unique=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return self.original_name


class ClockKind(models.TextChoices):
    ACKNOWLEDGEMENT = "acknowledgement", _("Acknowledgement")
    REVIEW = "review", _("Review to an outcome")
    BREACH_DECISION = "breach_decision", _("DPO decision on the breach (72 hours)")
    SAFEGUARDING_REFERRAL = "safeguarding_referral", _("Safeguarding referral (24 hours)")


class CaseClock(models.Model):
    """A deadline on a case. Services start and meet clocks; the beat task
    `incidents.sweep_clocks` warns before `due_at` and escalates once it has passed."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="clocks")
    kind = models.CharField(max_length=32, choices=ClockKind)
    started_at = models.DateTimeField()
    due_at = models.DateTimeField(db_index=True)
    warn_at = models.DateTimeField()
    met_at = models.DateTimeField(null=True, blank=True)
    warned_at = models.DateTimeField(null=True, blank=True)
    breached_at = models.DateTimeField(null=True, blank=True)
    escalated_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )

    class Meta:
        ordering = ["due_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["case", "kind"], name="case_clock_once_per_kind"),
        ]
        # The clocks still running, for the minutely sweep and the overdue lists: without
        # these each sweep read every clock of every case ever reported.
        indexes = [
            models.Index(
                fields=["warn_at"],
                condition=models.Q(met_at__isnull=True, warned_at__isnull=True),
                name="incidents_clock_warn_running",
            ),
            models.Index(
                fields=["due_at"],
                condition=models.Q(met_at__isnull=True),
                name="incidents_clock_due_running",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} on {self.case_id}"


class BreakGlass(models.Model):
    """Emergency access by someone with no need-to-know basis, with their typed reason; it
    lasts until `expires_at` and the DPO is told."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="break_glasses")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reason = models.TextField()
    at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.user_id} on {self.case_id}"


class SubjectKind(models.TextChoices):
    STAFF = "staff", _("Member of staff")
    SERVICE_USER = "service_user", _("Service user reference")


class SubjectAccessExport(models.Model):
    """A subject access export the DPO made (incidents.subject_access): about whom, why, which
    cases it read, and a digest of the ZIP handed over. Each case in it also has an access-log
    row whose path names this export's id."""

    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    subject_kind = models.CharField(max_length=16, choices=SubjectKind)
    subject_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    service_user_ref = models.CharField(max_length=32, blank=True)
    reason = models.TextField()
    via = models.CharField(max_length=16)
    at = models.DateTimeField(default=timezone.now, db_index=True)
    case_references = models.JSONField(default=list, blank=True)
    files = models.PositiveIntegerField(default=0)
    redaction_marks = models.PositiveIntegerField(default=0)
    size = models.PositiveBigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(subject_kind="staff", subject_user__isnull=False)
                    | models.Q(subject_kind="service_user", subject_user__isnull=True)
                    & ~models.Q(service_user_ref="")
                ),
                name="subject_access_names_its_subject",
            ),
        ]

    def __str__(self) -> str:
        return f"Subject access export {self.pk}"


# Retention rules, legal holds and purge records live beside the cases they govern.
from .retention_models import LegalHold, PurgeRecord, RetentionRule  # noqa: E402, F401
