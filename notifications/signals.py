"""News from notifications to the apps above it (see DESIGN.md: imports go down, signals go up)."""

from django.dispatch import Signal

# Sent on commit whenever an attempt's status moves. kwargs: attempt_id, topic, status,
# recipient_id, channel, provider_sid, error_code, at.
attempt_status_changed = Signal()

# Sent on commit when every channel tried for one page to one person has failed, so the
# asking app can move on at once. kwargs: topic, recipient_id.
page_exhausted = Signal()

# Sent while answering an inbound SMS from a known person, or a key pressed on a page call.
# kwargs: user, command ("ack" or "escalate"), argument (a reference typed after ACK, or ""),
# channel ("sms" or "call"), topic (the page's topic when a reply code or a key press named
# it, "" for a plain ACK). A receiver that handles the command returns the text to answer
# with; the first non-empty answer wins.
inbound_command = Signal()
