"""Which language a page is in.

Anonymous pages follow the language switcher (Django's language cookie) or, failing that, the
browser (LocaleMiddleware). For a signed-in person, their saved preference wins on every
request, unless they used the switcher in this session: then that choice stands. A middleware
rather than a cookie set at sign-in, because care workers share phones: a cookie left by the
last person would speak their language to the next one, and a preference changed on another
device or by an administrator would wait for the next sign-in.
"""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import translation

# The language picked with the switcher in this session (kept across sign-in by login()).
CHOSEN_SESSION_KEY = "concernline_language_chosen"


def known_language(code: str | None) -> bool:
    return bool(code) and code in dict(settings.LANGUAGES)


class PreferredLanguageMiddleware:
    """After AuthenticationMiddleware and LocaleMiddleware: activates the signed-in person's
    language for the rest of the request (views, templates, messages, the response header)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            chosen = request.session.get(CHOSEN_SESSION_KEY)
            language = chosen if known_language(chosen) else user.language
            if known_language(language):
                translation.activate(language)
                request.LANGUAGE_CODE = translation.get_language()
        return self.get_response(request)
