"""News from oncall to the apps above it. All are sent on commit."""

from django.dispatch import Signal

# kwargs: alert_id, owner_type, owner_id, user_id, at, via ("sms", "web", "api")
alert_acknowledged = Signal()

# kwargs: alert_id, owner_type, owner_id, recipient_id, step, reason, status, provider_sid, error_code, at
page_status_changed = Signal()
