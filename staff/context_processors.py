"""The "please confirm the guidance" banner on every page. It never stands between a care
worker and the report page: it is a link, and a failure to work it out only hides it."""

import logging

from django.db import DatabaseError

from . import selectors

logger = logging.getLogger(__name__)


def guidance_prompt(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    try:
        document = selectors.guidance_to_confirm(user)
    except DatabaseError:
        logger.exception("could not check guidance confirmation for user %s", user.pk)
        return {}
    return {
        "guidance_to_confirm": document,
        "may_view_team_page": selectors.may_view_team_page(user),
    }
