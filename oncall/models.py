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
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"Page {self.alert_id} step {self.step} to {self.recipient_id}"

    @property
    def topic(self) -> str:
        """How this page's notification attempts name it."""
        return f"oncall.page:{self.pk}"
