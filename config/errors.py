"""The one base class for errors a person can act on.

Services raise subclasses with a plain message; each edge translates them (form errors and
messages on pages, structured 4xx in the API).
"""

from django.http import JsonResponse


class ConcernlineError(Exception):
    status_code = 400
    code = "invalid"

    def __init__(self, message: str, *, extra: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra or {}


def api_error(code: str, message: str, status: int, fields: dict | None = None) -> JsonResponse:
    """The API's one error shape, for answers made outside DRF (middleware, error handlers):
    {"error": {"code": ..., "message": ..., "fields": {...}}}."""
    return JsonResponse(
        {"error": {"code": code, "message": message, "fields": fields or {}}}, status=status
    )
