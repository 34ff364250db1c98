from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class StaffConfig(AppConfig):
    name = "staff"
    verbose_name = _("Staff")

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from config import checks as project_checks  # noqa: F401  (config.E001)

        from . import checks, schema  # noqa: F401  (system checks; the API schema extension)
        from .security import start_idle_clock

        user_logged_in.connect(start_idle_clock, dispatch_uid="staff.start_idle_clock")
