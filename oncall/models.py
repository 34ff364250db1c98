"""Rotas say who is on call (layers, windows, overrides); alerts are what gets paged until
someone acknowledges.

An alert knows nothing of cases: it carries a title, a reference, a link and a generic owner
(`owner_type` "incidents.case", `owner_id` 12), so the engine can page for anything.
"""

import secrets
import uuid
from datetime import time

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from notifications.models import Importance
from staff.models import Role


def new_feed_secret() -> str:
    """32 random bytes, URL-safe: the whole of what opens a calendar feed."""
    return secrets.token_urlsafe(32)


class Rota(models.Model):
    """Who is on call, in and out of office hours: ordered layers, a higher layer winning where
    it has someone, and overrides that win over every layer. All rules are Europe/London local
    time (see oncall/rotas.py for how they resolve)."""

    name = models.CharField(_("name"), max_length=120, unique=True)
    is_default = models.BooleanField(
        _("default rota"), default=False, help_text=_("Urgent reports page this rota.")
    )
    owners = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owners"),
        blank=True,
        related_name="owned_rotas",
        help_text=_("Told by email and SMS of any gap in cover. Nobody: every manager is."),
    )
    feed_secret = models.CharField(max_length=64, unique=True, default=new_feed_secret)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=models.Q(is_default=True), name="one_default_rota"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class HandoffUnit(models.TextChoices):
    DAYS = "days", _("days")
    HOURS = "hours", _("hours")


class Window(models.TextChoices):
    ALWAYS = "always", _("All the time")
    OFFICE_HOURS = "office_hours", _("Office hours (Mon–Fri 09:00–17:00)")
    OUT_OF_HOURS = "out_of_hours", _("Out of hours (evenings, nights, weekends)")


class RotaLayer(models.Model):
    """People take turns, in order, handing over every `handoff_every` days or hours at the
    local time `handoff_time`, from `start_date`; optionally only within a time window."""

    rota = models.ForeignKey(Rota, on_delete=models.CASCADE, related_name="layers")
    name = models.CharField(_("name"), max_length=80)
    priority = models.PositiveSmallIntegerField(
        _("priority"), default=0, help_text=_("A higher layer wins where it has someone.")
    )
    start_date = models.DateField(_("first handover"))
    handoff_time = models.TimeField(_("handover time"), default=time(9, 0))
    handoff_every = models.PositiveSmallIntegerField(
        _("hand over every"), default=7, validators=[MinValueValidator(1)]
    )
    handoff_unit = models.CharField(
        _("unit"), max_length=8, choices=HandoffUnit, default=HandoffUnit.DAYS
    )
    window = models.CharField(_("on call"), max_length=16, choices=Window, default=Window.ALWAYS)

    class Meta:
        ordering = ["rota", "-priority", "id"]
        constraints = [
            models.UniqueConstraint(fields=["rota", "priority"], name="rota_layer_priority_unique"),
            models.CheckConstraint(
                condition=models.Q(handoff_every__gte=1), name="rota_layer_handoff_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rota} · {self.name}"

    def clean(self) -> None:
        if self.handoff_time and (self.handoff_time.second or self.handoff_time.microsecond):
            raise ValidationError(
                {"handoff_time": _("Give the handover time in hours and minutes.")}
            )
        if (
            self.handoff_unit == HandoffUnit.HOURS
            and self.handoff_every
            and (self.handoff_every > 24 * 28)
        ):
            raise ValidationError({"handoff_every": _("Hand over at least every four weeks.")})
        if (
            self.handoff_unit == HandoffUnit.DAYS
            and self.handoff_every
            and (self.handoff_every > 366)
        ):
            raise ValidationError({"handoff_every": _("Hand over at least once a year.")})


class LayerMember(models.Model):
    layer = models.ForeignKey(RotaLayer, on_delete=models.CASCADE, related_name="members")
    person = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="rota_turns"
    )
    position = models.PositiveSmallIntegerField(_("order"))

    class Meta:
        ordering = ["layer", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["layer", "position"], name="layer_position_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.layer_id} #{self.position}"


class RotaOverride(models.Model):
    """A named person on call for a span (cover, a swap): wins over every layer. Where two
    overrides meet, the later one made wins."""

    rota = models.ForeignKey(Rota, on_delete=models.CASCADE, related_name="overrides")
    person = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="rota_overrides"
    )
    starts_at = models.DateTimeField(_("from"))
    ends_at = models.DateTimeField(_("until"))
    reason = models.CharField(_("reason"), max_length=120, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["starts_at", "id"]
        indexes = [models.Index(fields=["rota", "ends_at"], name="override_rota_end_idx")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")),
                name="override_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rota} · {self.person} {self.starts_at:%Y-%m-%d %H:%M}"

    def clean(self) -> None:
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValidationError({"ends_at": _("The end must be after the start.")})


class PersonalFeed(models.Model):
    """The secret that opens one person's own shifts as an iCalendar feed."""

    person = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="rota_feed"
    )
    secret = models.CharField(max_length=64, unique=True, default=new_feed_secret)

    def __str__(self) -> str:
        return f"feed of {self.person_id}"


class GapWarning(models.Model):
    """A gap in a rota's cover that its owners were told of: each gap is told once."""

    rota = models.ForeignKey(Rota, on_delete=models.CASCADE, related_name="gap_warnings")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["rota", "starts_at", "ends_at"], name="gap_warned_once"
            ),
        ]

    def __str__(self) -> str:
        return f"gap in {self.rota_id} from {self.starts_at:%Y-%m-%d %H:%M}"


class HandoffReminder(models.Model):
    """A reminder sent to whoever comes on call: each shift start is reminded once."""

    rota = models.ForeignKey(Rota, on_delete=models.CASCADE, related_name="handoff_reminders")
    person = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    starts_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["rota", "person", "starts_at"], name="handoff_reminded_once"
            ),
        ]

    def __str__(self) -> str:
        return f"reminder to {self.person_id} for {self.starts_at:%Y-%m-%d %H:%M}"


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
    # Generic hints from the owner, e.g. {"line_manager_id": 12, "not_to_page": [7]} (the
    # reporter, who is never paged); ids only, never content.
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
    # The alert's active token when this page went out. Every run of the escalation (a step,
    # a pass-on, a reassignment, a reminder) pages under one token and then rotates it, so the
    # pages sent together share it and a later run's pages have another. Empty on pages older
    # than the field, which count as one run.
    run_token = models.UUIDField(null=True, blank=True)

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
        _("importance"), max_length=16, choices=Importance, default=Importance.IMPORTANT
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
