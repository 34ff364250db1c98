"""News from staff to the apps above it. Kwargs carry ids and dates only, never text a person
typed (a question's words stay in the database, behind the manager's page)."""

from django.dispatch import Signal

# Sent on commit when a training reminder is due and recorded. kwargs: user_id, assignment_id,
# period ("before_7", "overdue"...), due_date (a date).
training_reminder_due = Signal()

# Sent on commit when someone asks a question about the guidance (6.2). kwargs: question_id,
# asked_by_id, manager_id (None when the person has no line manager).
guidance_question_asked = Signal()
