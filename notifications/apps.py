from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = _("Notifications")

    def ready(self) -> None:
        from staff import signals as staff_signals

        from . import (
            checks,  # noqa: F401  (registers the system checks)
            staff_reminders,
        )

        staff_signals.training_reminder_due.connect(
            staff_reminders.on_training_reminder_due, dispatch_uid="notifications.training"
        )
        staff_signals.guidance_question_asked.connect(
            staff_reminders.on_guidance_question_asked, dispatch_uid="notifications.question"
        )
