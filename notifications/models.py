"""The paging outbox: one row per attempt to reach a person on one channel, committed before the
provider is called, so a crash or a duplicate task can neither lose a page nor send it twice."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Channel(models.TextChoices):
    SMS = "sms", _("SMS")
    CALL = "call", _("Phone call")
    EMAIL = "email", _("Email")


class Importance(models.TextChoices):
    IMPORTANT = "important", _("Important")
    NORMAL = "normal", _("Normal")


# Channel rules a person may choose, per importance: each is a list of steps, each step the
# channels tried at once. Email is always the last channel.
CHANNEL_RULES: dict[str, list[list[str]]] = {
    "sms_and_call": [["sms", "call"], ["call"], ["email"]],
    "sms_then_call": [["sms"], ["call"], ["email"]],
    "call_then_sms": [["call"], ["sms"], ["email"]],
    "sms_then_email": [["sms"], ["email"]],
    "email": [["email"]],
}


class ChannelRule(models.TextChoices):
    SMS_AND_CALL = "sms_and_call", _("SMS and a call at once, call again, then email")
    SMS_THEN_CALL = "sms_then_call", _("SMS, then a call, then email")
    CALL_THEN_SMS = "call_then_sms", _("A call, then SMS, then email")
    SMS_THEN_EMAIL = "sms_then_email", _("SMS, then email")
    EMAIL = "email", _("Email only")


DEFAULT_RULES = {
    Importance.IMPORTANT: ChannelRule.SMS_AND_CALL,
    Importance.NORMAL: ChannelRule.SMS_THEN_EMAIL,
}


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
    # A phone number or an email address: as long as the longest address a User may hold.
    to = models.CharField(max_length=254, blank=True)
    body = models.TextField()
    topic = models.CharField(max_length=64, db_index=True)
    status = models.CharField(
        max_length=16, choices=AttemptStatus, default=AttemptStatus.PENDING, db_index=True
    )
    provider_sid = models.CharField(max_length=64, null=True, blank=True, unique=True)
    error_code = models.CharField(max_length=16, blank=True)
    error_message = models.CharField(max_length=255, blank=True)
    page = models.ForeignKey(
        "PageRequest", null=True, blank=True, on_delete=models.CASCADE, related_name="attempts"
    )
    step = models.PositiveSmallIntegerField(default=0)
    # Calls only: what answered (Twilio's AnsweredBy) and the key pressed.
    answered_by = models.CharField(max_length=32, blank=True)
    digits = models.CharField(max_length=8, blank=True)
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
    # The provider's own word for it, where it says more ("busy", "no-answer", "voicemail").
    detail = models.CharField(max_length=32, blank=True)
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
    REPLY_MAX_LENGTH = 480
    reply = models.CharField(max_length=REPLY_MAX_LENGTH, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["received_at", "id"]

    def __str__(self) -> str:
        return f"SMS {self.provider_sid}"


class PageRequest(models.Model):
    """One page about one topic to one person, with the channel plan it follows. Its id is
    the reply code in the SMS ("Reply 12A to acknowledge, 12E to escalate"); times here are
    the paging metrics (first notification, first delivery, acknowledgement)."""

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="page_requests"
    )
    topic = models.CharField(max_length=64, db_index=True)
    importance = models.CharField(max_length=16, choices=Importance)
    reference = models.CharField(max_length=32, blank=True)
    urgency = models.CharField(max_length=16, blank=True)
    title = models.CharField(max_length=80, blank=True)
    # This site's path to what the page is about (the email's link); blank: the home page.
    # A default in the database too, so a process still on the code before it can insert.
    link = models.CharField(max_length=200, blank=True, default="", db_default="")
    plan = models.JSONField(default=list)
    step = models.PositiveSmallIntegerField(default=0)
    next_step_at = models.DateTimeField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    first_sent_at = models.DateTimeField(null=True, blank=True)
    first_delivered_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_via = models.CharField(max_length=16, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    exhausted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"page {self.id} to {self.recipient} ({self.topic})"

    @property
    def code(self) -> str:
        return str(self.id)


class ContactPreferences(models.Model):
    """How a person wants to be paged, per importance. No row means the safe defaults."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="contact_preferences"
    )
    important_rule = models.CharField(
        max_length=32, choices=ChannelRule, default=DEFAULT_RULES[Importance.IMPORTANT]
    )
    normal_rule = models.CharField(
        max_length=32, choices=ChannelRule, default=DEFAULT_RULES[Importance.NORMAL]
    )
    # Set by an SMS "STOP": SMS steps are skipped until "START".
    sms_opted_out = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"paging preferences of {self.user}"


class EarlyCallback(models.Model):
    """A provider status callback for a SID we have not stored yet (it outran the send task's
    own commit). Applied when the SID is stored, so no status is lost."""

    provider_sid = models.CharField(max_length=64, db_index=True)
    status = models.CharField(max_length=16, choices=AttemptStatus)
    error_code = models.CharField(max_length=16, blank=True)
    detail = models.CharField(max_length=32, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider_sid", "status"], name="early_callback_once"),
        ]

    def __str__(self) -> str:
        return f"early {self.status} for {self.provider_sid}"
