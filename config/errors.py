"""The one base class for errors a person can act on.

Services raise subclasses with a plain message; each edge translates them (form errors and
messages on pages, structured 4xx in the API).
"""


class ConcernlineError(Exception):
    status_code = 400
    code = "invalid"

    def __init__(self, message: str, *, extra: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra or {}
