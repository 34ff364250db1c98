"""News from notifications to the apps above it (see DESIGN.md: imports go down, signals go up)."""

from django.dispatch import Signal

# Sent on commit whenever an attempt's status moves. kwargs: attempt_id, topic, status,
# recipient_id, channel, provider_sid, error_code, at.
attempt_status_changed = Signal()

# Sent on commit when every channel tried for one page to one person has failed, so the
# asking app can move on at once. kwargs: topic, recipient_id.
page_exhausted = Signal()

# Sent while answering an inbound SMS from a known person. kwargs: user, command ("ack"),
# argument (the reference or reply code given, or ""), channel. A receiver that handles the
# command returns the text to answer with; the first non-empty answer wins.
inbound_command = Signal()
