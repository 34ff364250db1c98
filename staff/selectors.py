"""Reads in staff: the guidance that applies to a person, who has signed it, training due and
overdue, and who a manager oversees. Query counts are fixed (see tests/staff)."""

from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache

from django.conf import settings
from django.db import connection, connections
from django.db.models import Q, QuerySet
from django.utils import timezone

from .models import (
    ApiToken,
    Engagement,
    GuidanceAcknowledgement,
    GuidanceDocument,
    GuidanceQuestion,
    Role,
    Team,
    TrainingAssignment,
    TrainingLevel,
    TrainingReminder,
    User,
)

OVERDUE = "overdue"


@cache
def _token_lookup() -> tuple[str, list, list]:
    """The token-and-owner query, its token fields and its person's fields, in column order;
    last, whether the person has a confirmed second-factor device (django-otp's
    user_has_device, in the same query)."""
    from django_otp import device_classes

    token_fields = list(ApiToken._meta.concrete_fields)
    user_fields = list(User._meta.concrete_fields)
    quote = connection.ops.quote_name
    columns = [f"t.{quote(f.column)}" for f in token_fields]
    columns += [f"u.{quote(f.column)}" for f in user_fields]
    has_device = " OR ".join(
        f"EXISTS (SELECT 1 FROM {quote(model._meta.db_table)} AS d "  # noqa: S608
        f"WHERE d.{quote('user_id')} = u.{quote('id')} AND d.{quote('confirmed')})"
        for model in device_classes()
    )
    columns.append(f"({has_device or 'FALSE'})")
    # Names from the models' own metadata only; the key hash is a parameter.
    sql = (
        f"SELECT {', '.join(columns)} FROM {quote(ApiToken._meta.db_table)} AS t "  # noqa: S608
        f"JOIN {quote(User._meta.db_table)} AS u ON u.{quote('id')} = t.{quote('user_id')} "
        f"WHERE t.{quote('key_hash')} = %s"
    )
    return sql, token_fields, user_fields


def _converters(model, fields: list) -> list[tuple]:
    """Each field's column and converters for this thread's connection, worked out once per
    connection and kept on it (going with it): the ORM works them out again for every row it
    reads, a third of a token lookup's time."""
    wrapper = connections[connection.alias]
    known = wrapper.__dict__.setdefault("_concernline_converters", {})
    found = known.get(model)
    if found is None:
        found = []
        for field in fields:
            column = field.get_col(model._meta.db_table)
            found.append(
                (
                    column,
                    wrapper.ops.get_db_converters(column) + field.get_db_converters(wrapper),
                )
            )
        known[model] = found
    return found


def _loaded(model, fields: list, values) -> object:
    """An instance of `model` from its row, each value through the converters the ORM would
    apply (dates on SQLite, phone numbers, and so on)."""
    converted = []
    for (column, converters), value in zip(_converters(model, fields), values, strict=True):
        for converter in converters:
            value = converter(value, column, connection)
        converted.append(value)
    return model.from_db(connection.alias, [f.attname for f in fields], converted)


def token_by_key_hash(key_hash: str) -> ApiToken | None:
    """The API token with this key hash, its owner loaded with it, in one plain query: the
    ORM's building of the same join was over half of the lookup's time, on every API call.
    `token.owner_has_device` says whether the owner has set up a second factor."""
    sql, token_fields, user_fields = _token_lookup()
    with connection.cursor() as cursor:
        cursor.execute(sql, [key_hash])
        row = cursor.fetchone()
    if row is None:
        return None
    user_end = len(token_fields) + len(user_fields)
    token = _loaded(ApiToken, token_fields, row[: len(token_fields)])
    token.user = _loaded(User, user_fields, row[len(token_fields) : user_end])
    token.owner_has_device = bool(row[user_end])
    return token


def oversees_everyone(user) -> bool:
    """HR and administrators see every team's guidance and training."""
    return user.is_authenticated and (user.role in (Role.HR, Role.ADMIN) or user.is_superuser)


def may_view_team_page(user) -> bool:
    return user.is_authenticated and (user.role == Role.MANAGER or oversees_everyone(user))


def people_overseen_by(viewer, *, team: Team | None = None) -> QuerySet[User]:
    """Active people whose guidance and training `viewer` looks after: a manager's direct reports
    and the rest of their team; everyone for HR and administrators. Nobody for anyone else."""
    people = User.objects.filter(is_active=True).exclude(pk=viewer.pk)
    if oversees_everyone(viewer):
        pass
    elif viewer.role == Role.MANAGER:
        scope = Q(line_manager=viewer)
        if viewer.team_id is not None:
            scope |= Q(team_id=viewer.team_id)
        people = people.filter(scope)
    else:
        return User.objects.none()
    if team is not None:
        people = people.filter(team=team)
    return people.select_related("team", "line_manager").order_by("full_name", "email")


def current_guidance(audience: str) -> GuidanceDocument | None:
    return GuidanceDocument.objects.filter(audience=audience).order_by("-version").first()


def current_guidance_for(user) -> GuidanceDocument | None:
    """The newest version of the guidance that applies to `user` (employee or volunteer)."""
    return current_guidance(user.engagement)


def guidance_to_confirm(user) -> GuidanceDocument | None:
    """The current guidance `user` has not yet signed, or None. One query."""
    if not user.is_authenticated:
        return None
    document = (
        GuidanceDocument.objects.filter(audience=user.engagement)
        .order_by("-version")
        .only("id", "audience", "version", "title")
        .first()
    )
    if document is None:
        return None
    if GuidanceAcknowledgement.objects.filter(document=document, user=user).exists():
        return None
    return document


def signature_of(user, document: GuidanceDocument) -> GuidanceAcknowledgement | None:
    return GuidanceAcknowledgement.objects.filter(document=document, user=user).first()


def training_levels() -> list[TrainingLevel]:
    return list(TrainingLevel.objects.all())


def usual_level_for(role: str, levels: list[TrainingLevel]) -> TrainingLevel | None:
    return next((level for level in levels if role in (level.roles or [])), None)


def open_training_for(user) -> TrainingAssignment | None:
    return (
        TrainingAssignment.objects.filter(user=user, completed_on__isnull=True)
        .select_related("level")
        .first()
    )


@dataclass(frozen=True)
class TeamRow:
    person: User
    document: GuidanceDocument | None
    signed_at: object  # datetime or None
    training: TrainingAssignment | None
    last_completed: TrainingAssignment | None
    open_questions: int
    today: date

    @property
    def signed(self) -> bool:
        return self.signed_at is not None

    @property
    def overdue(self) -> bool:
        return self.training is not None and self.training.is_overdue(self.today)


def team_overview(viewer, *, team: Team | None = None, today: date | None = None) -> list[TeamRow]:
    """One row per person `viewer` oversees: the guidance that applies to them, whether they
    signed it, their training and whether it is overdue. Six queries, whatever the team size."""
    today = today or timezone.localdate()
    people = list(people_overseen_by(viewer, team=team))
    ids = [p.pk for p in people]
    documents = {}
    for document in GuidanceDocument.objects.order_by("audience", "-version").only(
        "id", "audience", "version", "title"
    ):
        documents.setdefault(document.audience, document)
    signed = dict(
        GuidanceAcknowledgement.objects.filter(
            user_id__in=ids, document_id__in=[d.pk for d in documents.values()]
        ).values_list("user_id", "confirmed_at")
    )
    open_training = {
        a.user_id: a
        for a in TrainingAssignment.objects.filter(
            user_id__in=ids, completed_on__isnull=True
        ).select_related("level")
    }
    last_completed = {}
    for a in (
        TrainingAssignment.objects.filter(user_id__in=ids, completed_on__isnull=False)
        .select_related("level")
        .order_by("user_id", "-completed_on", "-id")
    ):
        last_completed.setdefault(a.user_id, a)
    questions: dict[int, int] = {}
    for user_id in GuidanceQuestion.objects.filter(
        asked_by_id__in=ids, discussed_at__isnull=True
    ).values_list("asked_by_id", flat=True):
        questions[user_id] = questions.get(user_id, 0) + 1
    return [
        TeamRow(
            person=p,
            document=documents.get(p.engagement),
            signed_at=signed.get(p.pk),
            training=open_training.get(p.pk),
            last_completed=last_completed.get(p.pk),
            open_questions=questions.get(p.pk, 0),
            today=today,
        )
        for p in people
    ]


def questions_for(viewer) -> QuerySet[GuidanceQuestion]:
    """Open questions `viewer` should discuss: those sent to them as line manager; for HR and
    administrators also those from people with no line manager."""
    scope = Q(manager=viewer)
    if oversees_everyone(viewer):
        scope |= Q(manager__isnull=True)
    return (
        GuidanceQuestion.objects.filter(scope, discussed_at__isnull=True)
        .select_related("asked_by", "document")
        .order_by("asked_at", "id")
    )


def reminder_days() -> list[int]:
    """Days before the due date that reminders go out, largest first (setting
    TRAINING_REMINDER_DAYS)."""
    return sorted({int(d) for d in settings.TRAINING_REMINDER_DAYS}, reverse=True)


def reminder_period(*, due_on: date, today: date) -> str | None:
    """Which reminder period `today` falls in for training due on `due_on`: the tightest
    "before_N" window it is inside, "overdue" once the date has passed, or None if too early."""
    days_left = (due_on - today).days
    if days_left < 0:
        return OVERDUE
    windows = [d for d in reminder_days() if days_left <= d]
    return f"before_{min(windows)}" if windows else None


def training_reminders_due(*, today: date) -> list[tuple[TrainingAssignment, str]]:
    """Open training whose reminder for the current period has not been sent. Two queries."""
    days = reminder_days()
    horizon = today + timedelta(days=days[0] if days else 0)
    assignments = list(
        TrainingAssignment.objects.filter(
            completed_on__isnull=True, due_on__lte=horizon, user__is_active=True
        ).select_related("user")
    )
    sent = set(
        TrainingReminder.objects.filter(assignment__in=assignments).values_list(
            "assignment_id", "due_on", "period"
        )
    )
    due = []
    for assignment in assignments:
        period = reminder_period(due_on=assignment.due_on, today=today)
        if period and (assignment.pk, assignment.due_on, period) not in sent:
            due.append((assignment, period))
    return due


def audience_label(audience: str) -> str:
    return Engagement(audience).label
