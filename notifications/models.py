"""The paging outbox: one row per attempt to reach a person on one channel, committed before the
provider is called, so a crash or a duplicate task can neither lose a page nor send it twice."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Channel(models.TextChoices):
    SMS = "sms", _("SMS")


class AttemptStatus(models.TextChoices):
    PENDING = "pending", _("Waiting to send")
    SENDING = "sending", _("Sending")
    QUEUED = "queued", _("Accepted by the provider")
    SENT = "sent", _("Sent")
    DELIVERED = "delivered", _("Delivered")
    UNDELIVERED = "undelivered", _("Not delivered")
    FAILED = "failed", _("Failed")
    UNKNOWN = "unknown", _("Outcome unknown")


# How far along each status is; a late callback never moves an attempt backwards.
STATUS_RANK = {
    AttemptStatus.PENDING: 0,
    AttemptStatus.SENDING: 1,
    AttemptStatus.UNKNOWN: 2,
    AttemptStatus.QUEUED: 3,
    AttemptStatus.SENT: 4,
    AttemptStatus.DELIVERED: 5,
    AttemptStatus.UNDELIVERED: 5,
    AttemptStatus.FAILED: 5,
}
FINAL_STATUSES = {AttemptStatus.DELIVERED, AttemptStatus.UNDELIVERED, AttemptStatus.FAILED}


class NotificationAttempt(models.Model):
    """One message to one person. `topic` names what it is about in the asking app's own terms
    (for example `oncall.alert:12`), so this app never needs to know about alerts or cases."""

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="notification_attempts"
    )
    channel = models.CharField(max_length=16, choices=Channel, default=Channel.SMS)
    to = models.CharField(max_length=32, blank=True)
    body = models.TextField()
    topic = models.CharField(max_length=64, db_index=True)
    status = models.CharField(
        max_length=16, choices=AttemptStatus, default=AttemptStatus.PENDING, db_index=True
    )
    provider_sid = models.CharField(max_length=64, null=True, blank=True, unique=True)
    error_code = models.CharField(max_length=16, blank=True)
    error_message = models.CharField(max_length=255, blank=True)
    tries = models.PositiveSmallIntegerField(default=0)
    next_try_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["status", "next_try_at"], name="attempt_due_idx")]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} to {self.recipient} ({self.status})"


class StatusChange(models.Model):
    """Every status an attempt passed through, when, and the provider's error code if any.
    Unique per (attempt, status) so a repeated provider callback records nothing new."""

    attempt = models.ForeignKey(
        NotificationAttempt, on_delete=models.CASCADE, related_name="status_changes"
    )
    status = models.CharField(max_length=16, choices=AttemptStatus)
    error_code = models.CharField(max_length=16, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["attempt", "status"], name="status_change_once"),
        ]

    def __str__(self) -> str:
        return f"{self.status} at {self.at:%Y-%m-%d %H:%M:%S}"


class InboundMessage(models.Model):
    """An SMS a phone sent to our number. Kept once per provider SID, with the answer we gave,
    so a webhook Twilio retries gets the same answer and acts only once."""

    provider_sid = models.CharField(max_length=64, unique=True)
    from_number = models.CharField(max_length=32)
    to_number = models.CharField(max_length=32, blank=True)
    body = models.CharField(max_length=1600)
    sender = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="inbound_messages",
    )
    reply = models.CharField(max_length=480, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["received_at", "id"]

    def __str__(self) -> str:
        return f"SMS {self.provider_sid}"
