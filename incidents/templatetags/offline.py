"""The per-session key report drafts on a phone are kept under (static/concernline/report.js).

A new sign-in gets a new key, so a draft left on a shared phone is never shown to the next person;
report.js also wipes every draft on sign-out and on the sign-in page."""

import secrets

from django import template

register = template.Library()

SESSION_KEY = "report_draft_key"


@register.simple_tag(takes_context=True)
def draft_key(context) -> str:
    request = context.get("request")
    if request is None or not request.user.is_authenticated:
        return ""
    key = request.session.get(SESSION_KEY)
    if not key:
        key = request.session[SESSION_KEY] = secrets.token_urlsafe(16)
    return key
