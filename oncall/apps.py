from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OncallConfig(AppConfig):
    name = "oncall"
    verbose_name = _("On call")

    def ready(self) -> None:
        from . import receivers  # noqa: F401  (connects to notifications' signals)
