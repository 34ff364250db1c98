"""Rotas say who is on call; alerts are what gets paged until someone acknowledges.

An alert knows nothing of cases: it carries a title, a reference, a link and a generic owner
(`owner_type` "incidents.case", `owner_id` 12), so the engine can page for anything.
"""

import uuid
from datetime import time

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from staff.models import Role


class Rota(models.Model):
    """A simple weekly rota: participants take turns a week at a time, handing over on one
    weekday at one local (Europe/London) time."""

    class Weekday(models.IntegerChoices):
        MONDAY = 0, _("Monday")
        TUESDAY = 1, _("Tuesday")
        WEDNESDAY = 2, _("Wednesday")
        THURSDAY = 3, _("Thursday")
        FRIDAY = 4, _("Friday")
        SATURDAY = 5, _("Saturday")
        SUNDAY = 6, _("Sunday")

    name = models.CharField(_("name"), max_length=120, unique=True)
    is_default = models.BooleanField(
        _("default rota"), default=False, help_text=_("Urgent reports page this rota.")
    )
    start_date = models.DateField(_("first handover"))
    handoff_weekday = models.PositiveSmallIntegerField(
        _("handover day"), choices=Weekday, default=Weekday.MONDAY
    )
    handoff_time = models.TimeField(_("handover time"), default=time(9, 0))

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=models.Q(is_default=True), name="one_default_rota"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.start_date and self.start_date.weekday() != self.handoff_weekday:
            raise ValidationError(
                {"start_date": _("The first handover must fall on the handover day.")}
            )


class RotaParticipant(models.Model):
    rota = models.ForeignKey(Rota, on_delete=models.CASCADE, related_name="participants")
    person = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="rota_places"
    )
    position = models.PositiveSmallIntegerField(_("order"))

    class Meta:
        ordering = ["rota", "position"]
        constraints = [
            models.UniqueConstraint(fields=["rota", "position"], name="rota_position_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.rota_id} #{self.position}"


class AlertState(models.TextChoices):
    TRIGGERED = "triggered", _("Waiting for acknowledgement")
    ACKNOWLEDGED = "acknowledged", _("Acknowledged")
    RESOLVED = "resolved", _("Resolved")


class Urgency(models.TextChoices):
    URGENT = "urgent", _("Urgent")
    NORMAL = "normal", _("Normal")


class Alert(models.Model):
    """The database is the truth of an escalation: the step due next, when, and the one token
    a task must carry to run it. Rotating the token voids every task already queued."""

    title = models.CharField(max_length=80, help_text=_("Never confidential: goes out by SMS."))
    reference = models.CharField(max_length=32, db_index=True)
    link = models.CharField(max_length=200, blank=True)
    owner_type = models.CharField(max_length=32)
    owner_id = models.PositiveBigIntegerField()
    urgency = models.CharField(max_length=16, choices=Urgency, default=Urgency.URGENT)
    rota = models.ForeignKey(Rota, null=True, blank=True, on_delete=models.SET_NULL)
    state = models.CharField(
        max_length=16, choices=AlertState, default=AlertState.TRIGGERED, db_index=True
    )
    current_step = models.PositiveIntegerField(default=0)
    next_step_at = models.DateTimeField(null=True, blank=True, db_index=True)
    active_token = models.UUIDField(default=uuid.uuid4)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="acknowledged_alerts",
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_via = models.CharField(max_length=16, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # The escalation as raised: the policy's steps and who was on call, copied so that editing
    # a policy or a rota never changes a running alert (see services.snapshot_for).
    snapshot = models.JSONField(default=dict, blank=True)
    category = models.CharField(max_length=32, blank=True)
    # Generic hints from the owner, e.g. {"line_manager_id": 12}; ids only, never content.
    hints = models.JSONField(default=dict, blank=True)
    # How many times the policy's "repeat" step has sent the escalation back.
    loop = models.PositiveIntegerField(default=0)
    # How many times the current "until acknowledged" step has paged.
    step_tries = models.PositiveIntegerField(default=0)
    # Set once the policy's final fallback has been paged.
    fallback_reached_at = models.DateTimeField(null=True, blank=True)
    # An acknowledged urgent alert: whether the "move it to review" reminder has gone.
    reminded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner_type", "owner_id"], name="alert_owner_idx")]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(state="acknowledged")
                | models.Q(acknowledged_by__isnull=False, acknowledged_at__isnull=False),
                name="acknowledged_alert_names_who_and_when",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reference} ({self.get_state_display()})"


class Page(models.Model):
    """Who was paged for an alert, at which step and why: the record of who was on call and who
    was contacted when. Its notification attempts carry the topic `oncall.page:<id>`."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="pages")
    step = models.PositiveIntegerField()
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="pages"
    )
    reason = models.CharField(max_length=32)
    importance = models.CharField(max_length=16, default="important")
    # When the step that sent this page was due; created_at minus due_at is how late it ran.
    due_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Set when notifications reported that every channel to this person failed.
    exhausted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"Page {self.alert_id} step {self.step} to {self.recipient_id}"

    @property
    def topic(self) -> str:
        """How this page's notification attempts name it."""
        return f"oncall.page:{self.pk}"


class StepKind(models.TextChoices):
    NOTIFY_ON_CALL = "notify_on_call", _("Notify whoever is on call in a rota")
    NOTIFY_PERSON = "notify_person", _("Notify a named person")
    NOTIFY_LINE_MANAGER = "notify_line_manager", _("Notify the reporter's line manager")
    NOTIFY_ROLE = "notify_role", _("Notify everyone with a role")
    WAIT = "wait", _("Wait")
    REPEAT = "repeat", _("Repeat from an earlier step")
    UNTIL_ACKNOWLEDGED = "until_acknowledged", _("Page the on-call manager until acknowledged")
    FALLBACK = "fallback", _("Final fallback")


NOTIFY_KINDS = {
    StepKind.NOTIFY_ON_CALL,
    StepKind.NOTIFY_PERSON,
    StepKind.NOTIFY_LINE_MANAGER,
    StepKind.NOTIFY_ROLE,
    StepKind.UNTIL_ACKNOWLEDGED,
    StepKind.FALLBACK,
}


class StepImportance(models.TextChoices):
    IMPORTANT = "important", _("Important")
    NORMAL = "normal", _("Normal")


class EscalationPolicy(models.Model):
    """An ordered list of steps, chosen for an alert by its category (for cases: the report
    kind) and urgency; blank matches any. The most specific active policy wins."""

    name = models.CharField(_("name"), max_length=120, unique=True)
    category = models.CharField(
        _("category"),
        max_length=32,
        blank=True,
        help_text=_("For cases, the report kind (e.g. urgent_disclosure). Blank: any."),
    )
    urgency = models.CharField(_("urgency"), max_length=16, choices=Urgency, blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("escalation policy")
        verbose_name_plural = _("escalation policies")
        constraints = [
            models.UniqueConstraint(
                fields=["category", "urgency"],
                condition=models.Q(is_active=True),
                name="one_active_policy_per_category_urgency",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class EscalationStep(models.Model):
    """One step of a policy. Which fields matter depends on `kind` (see clean())."""

    policy = models.ForeignKey(EscalationPolicy, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField(_("order"))
    kind = models.CharField(_("kind"), max_length=32, choices=StepKind)
    importance = models.CharField(
        _("importance"), max_length=16, choices=StepImportance, default=StepImportance.IMPORTANT
    )
    rota = models.ForeignKey(
        Rota,
        verbose_name=_("rota"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        help_text=_("Blank: the default rota."),
    )
    person = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("person"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    role = models.CharField(_("role"), max_length=32, choices=Role, blank=True)
    minutes = models.PositiveIntegerField(
        _("minutes"), null=True, blank=True, help_text=_("Wait, or the interval between pages.")
    )
    repeat_from = models.PositiveSmallIntegerField(
        _("repeat from step"), null=True, blank=True, help_text=_("The step number (1 = first).")
    )
    times = models.PositiveSmallIntegerField(_("at most (times)"), null=True, blank=True)

    class Meta:
        ordering = ["policy", "position"]
        constraints = [
            models.UniqueConstraint(fields=["policy", "position"], name="policy_step_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.position}. {self.get_kind_display()}"

    def clean(self) -> None:
        errors = {}
        if self.kind == StepKind.NOTIFY_PERSON and self.person_id is None:
            errors["person"] = _("Choose the person to notify.")
        if self.kind == StepKind.NOTIFY_ROLE and self.role not in Role.values:
            errors["role"] = _("Choose the role to notify.")
        if self.kind == StepKind.FALLBACK and self.person_id is None and not self.role:
            errors["person"] = _("A fallback names a person, a role, or both.")
        if self.role and self.role not in Role.values:
            errors["role"] = _("Unknown role.")
        if self.kind in (StepKind.WAIT, StepKind.UNTIL_ACKNOWLEDGED) and not self.minutes:
            errors["minutes"] = _("Say how many minutes.")
        if self.kind in (StepKind.REPEAT, StepKind.UNTIL_ACKNOWLEDGED) and not self.times:
            errors["times"] = _("Say at most how many times.")
        if self.kind == StepKind.REPEAT and not self.repeat_from:
            errors["repeat_from"] = _("Say which step to repeat from.")
        if errors:
            raise ValidationError(errors)


class Heartbeat(models.Model):
    """The last time a periodic job ran to the end, for the health endpoint. Kept in the
    database, not Redis: it proves the sweeper reached the database (what paging needs), and it
    survives a flushed or restarted Redis, which is exactly when it matters."""

    name = models.CharField(max_length=32, primary_key=True)
    at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} at {self.at:%Y-%m-%d %H:%M:%S}"
