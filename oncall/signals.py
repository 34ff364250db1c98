"""News from oncall to the apps above it."""

from django.dispatch import Signal

# Sent on commit. kwargs: alert_id, owner_type, owner_id, user_id, at, via ("sms", "web", "api")
alert_acknowledged = Signal()

# Relayed from notifications' attempt_status_changed, itself sent on commit.
# kwargs: alert_id, owner_type, owner_id, recipient_id, step, reason, status, provider_sid,
# error_code, at
page_status_changed = Signal()
