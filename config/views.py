"""Project-wide error pages: the API always answers in its own structured JSON."""

from django.http import HttpRequest, HttpResponse
from django.views import defaults

from .errors import api_error


def not_found(request: HttpRequest, exception=None) -> HttpResponse:
    if request.path.startswith("/api/"):
        return api_error("not_found", "No such thing.", 404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/api/"):
        return api_error("server_error", "Something went wrong; it has been logged.", 500)
    return defaults.server_error(request)
