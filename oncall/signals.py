"""News from oncall to the apps above it."""

from django.dispatch import Signal

# Sent on commit. kwargs: alert_id, owner_type, owner_id, user_id, at, via ("sms", "web", "api")
alert_acknowledged = Signal()

# Relayed from notifications' attempt_status_changed, itself sent on commit.
# kwargs: alert_id, owner_type, owner_id, page_id, recipient_id, step (from 0), reason, channel,
# status, provider_sid, error_code, at
page_status_changed = Signal()

# Sent inside the alert's transaction as the escalation moves: a receiver's writes commit with
# the alert's state, and it must make them in a savepoint of its own. kwargs: alert_id,
# owner_type, owner_id, kind ("step_started", "nobody_to_page", "fallback_reached",
# "escalated_now", "reassigned", "reminder", "reopened"), step (counted from 1, or None),
# actor_id (or None), data (ids and step kinds only), at.
alert_event = Signal()
