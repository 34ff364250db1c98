from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IncidentsConfig(AppConfig):
    name = "incidents"
    verbose_name = _("Reports and cases")

    def ready(self) -> None:
        from . import (
            checks,  # noqa: F401  (registers the system checks)
            receivers,  # noqa: F401  (connects to oncall's signals)
        )
