"""Writes in staff: second-factor devices and recovery codes; guidance confirmations and
questions; training assessments, completions and reminders."""

import hashlib
import logging
import secrets
from datetime import date, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from config.errors import ConcernlineError

from . import selectors, signals
from .models import (
    ApiToken,
    Engagement,
    GuidanceAcknowledgement,
    GuidanceDocument,
    GuidanceQuestion,
    Language,
    Role,
    Team,
    TeamExport,
    TrainingAssignment,
    TrainingLevel,
    TrainingReminder,
    User,
)

logger = logging.getLogger(__name__)

RECOVERY_CODE_COUNT = 10


class SecondFactorError(ConcernlineError):
    code = "second_factor"


def start_totp_setup(*, user: User) -> TOTPDevice:
    """The unconfirmed authenticator-app device to show as a QR code; one at a time."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)
    return device


@transaction.atomic
def confirm_totp_setup(*, user: User, token: str) -> tuple[TOTPDevice, list[str]]:
    """Confirm the app with a code it shows; returns the device and fresh recovery codes,
    which are shown once and never again."""
    device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=False).first()
    if device is None or not device.verify_token(token.strip()):
        raise SecondFactorError(
            "That code is not right. Check the time on your phone and try again."
        )
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    return device, new_recovery_codes(user=user)


@transaction.atomic
def new_recovery_codes(*, user: User) -> list[str]:
    """Replace the person's one-time recovery codes."""
    device, _created = StaticDevice.objects.get_or_create(
        user=user, name="Recovery codes", defaults={"confirmed": True}
    )
    device.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODE_COUNT)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    return codes


# Guidance (section 6) and training (section 5).


class GuidanceError(ConcernlineError):
    code = "guidance"


class NotAllowed(ConcernlineError):
    status_code = 404
    code = "not_found"


@transaction.atomic
def publish_guidance(*, actor: User, audience: str, title: str, body: str) -> GuidanceDocument:
    """Publish a new version of the employees' or volunteers' guidance. Everyone it applies to
    is asked to confirm again, since their signature is for an older version."""
    if not (actor.is_superuser or actor.role == Role.ADMIN):
        raise NotAllowed("Only an administrator can publish guidance.")
    if audience not in Engagement.values:
        raise GuidanceError("Choose employees or volunteers.", extra={"audience": "invalid"})
    body = body.strip()
    if not body:
        raise GuidanceError(
            "The guidance has no text.", extra={"body": "The guidance has no text."}
        )
    # Lock the audience's versions so two publishers cannot take the same number.
    latest = (
        GuidanceDocument.objects.select_for_update()
        .filter(audience=audience)
        .order_by("-version")
        .first()
    )
    document = GuidanceDocument(
        audience=audience,
        version=(latest.version + 1) if latest else 1,
        title=title.strip(),
        body=body,
        published_by=actor,
    )
    document.full_clean(validate_constraints=False)
    try:
        with transaction.atomic():
            document.save()
    except IntegrityError:
        # Another administrator published the same first version at the same moment.
        raise GuidanceError(
            "Someone else published this guidance just now. Check the list and try again."
        ) from None
    logger.info("guidance %s v%s published by user %s", audience, document.version, actor.pk)
    return document


def _current_document(actor: User, document_id: int) -> GuidanceDocument:
    document = selectors.current_guidance_for(actor)
    if document is None or document.pk != document_id:
        raise GuidanceError(
            "This is not the current version of your guidance. Read the current one and "
            "confirm that instead."
        )
    return document


@transaction.atomic
def confirm_guidance(*, actor: User, document_id: int) -> GuidanceAcknowledgement:
    """Record that `actor` has received, read and understood this version (6.1): version, time
    and person. Only the current version of the guidance that applies to them; confirming twice
    keeps the first time."""
    document = _current_document(actor, document_id)
    signature, created = GuidanceAcknowledgement.objects.get_or_create(
        document=document, user=actor, defaults={"confirmed_at": timezone.now()}
    )
    if created:
        logger.info("user %s confirmed guidance %s", actor.pk, document.pk)
    return signature


@transaction.atomic
def ask_guidance_question(*, actor: User, document_id: int, question: str) -> GuidanceQuestion:
    """ "I have a question" (6.2): goes to the asker's line manager, who sees it on their team
    page and is told on commit (by id only). It does not count as confirming."""
    document = _current_document(actor, document_id)
    question = question.strip()
    if not question:
        raise GuidanceError(
            "Say what you would like to ask.", extra={"question": "Say what you would like to ask."}
        )
    record = GuidanceQuestion.objects.create(
        document=document,
        asked_by=actor,
        manager_id=actor.line_manager_id,
        question=question[:2000],
    )
    payload = {
        "question_id": record.pk,
        "asked_by_id": actor.pk,
        "manager_id": actor.line_manager_id,
    }
    transaction.on_commit(
        lambda: signals.guidance_question_asked.send(sender=GuidanceQuestion, **payload)
    )
    return record


@transaction.atomic
def mark_question_discussed(*, actor: User, question_id: int) -> GuidanceQuestion:
    """The line manager (or HR, for someone with none) has discussed the question with the
    person. They still confirm the guidance themselves afterwards."""
    question = (
        selectors.questions_for(actor)
        .select_for_update(of=("self",))
        .filter(pk=question_id)
        .first()
    )
    if question is None:
        raise NotAllowed("No such question.")
    question.discussed_at = timezone.now()
    question.discussed_by = actor
    question.save(update_fields=["discussed_at", "discussed_by"])
    return question


def _overseen(actor: User, user_id: int) -> User:
    person = selectors.people_overseen_by(actor).filter(pk=user_id).first()
    if person is None:
        raise NotAllowed("No such person in your team.")
    return person


@transaction.atomic
def set_training(*, actor: User, user_id: int, level_id: int, due_on: date) -> TrainingAssignment:
    """A manager's assessment of the training a person needs (5.1) and by when. Replaces the
    person's open assignment, if any; a new due date gets its own reminders."""
    person = _overseen(actor, user_id)
    level = TrainingLevel.objects.filter(pk=level_id).first()
    if level is None:
        raise GuidanceError("Choose a training level.", extra={"level": "Choose a training level."})
    if due_on < timezone.localdate():
        raise GuidanceError(
            "The due date has passed. Choose today or a later date.",
            extra={"due_on": "The due date has passed. Choose today or a later date."},
        )
    assignment = (
        TrainingAssignment.objects.select_for_update()
        .filter(user=person, completed_on__isnull=True)
        .first()
    )
    if assignment is None:
        assignment = TrainingAssignment(user=person)
    assignment.level = level
    assignment.due_on = due_on
    assignment.assigned_by = actor
    assignment.assigned_at = timezone.now()
    assignment.save()
    return assignment


@transaction.atomic
def record_training_completed(
    *, actor: User, assignment_id: int, completed_on: date
) -> TrainingAssignment:
    """Record that a person completed their training (6.3: from then on they must comply)."""
    assignment = (
        TrainingAssignment.objects.select_for_update()
        .filter(
            pk=assignment_id,
            user__in=selectors.people_overseen_by(actor),
            completed_on__isnull=True,
        )
        .first()
    )
    if assignment is None:
        raise NotAllowed("No such open training.")
    if completed_on > timezone.localdate():
        raise GuidanceError(
            "The completion date is in the future.",
            extra={"completed_on": "The completion date is in the future."},
        )
    assignment.completed_on = completed_on
    assignment.completed_recorded_by = actor
    assignment.completed_recorded_at = timezone.now()
    assignment.save()
    return assignment


def send_training_reminders(*, today: date | None = None) -> int:
    """Record and announce every training reminder due today: once per assignment, due date and
    period, however often this runs (the unique constraint decides between two runs at once).
    notifications turns each announcement into an email and an SMS. Returns how many."""
    today = today or timezone.localdate()
    sent = 0
    for assignment, period in selectors.training_reminders_due(today=today):
        try:
            with transaction.atomic():
                TrainingReminder.objects.create(
                    assignment=assignment, due_on=assignment.due_on, period=period
                )
                payload = {
                    "user_id": assignment.user_id,
                    "assignment_id": assignment.pk,
                    "period": period,
                    "due_date": assignment.due_on,
                }
                transaction.on_commit(
                    lambda payload=payload: signals.training_reminder_due.send(
                        sender=TrainingAssignment, **payload
                    )
                )
        except IntegrityError:
            continue  # another run recorded it first
        sent += 1
    return sent


@transaction.atomic
def record_team_export(*, actor: User, team: Team | None, rows: int) -> TeamExport:
    """Who downloaded a team list, when, and how many rows."""
    logger.info("team list exported by user %s (%s rows)", actor.pk, rows)
    return TeamExport.objects.create(actor=actor, team=team, rows=rows)


TOKEN_PREFIX = "cl_"


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def issue_api_token(
    *, user: User, name: str, days: int | None = None, second_factor: bool = False
) -> tuple[ApiToken, str]:
    """A new API token for `user`; returns the record and the key, which is shown once and
    never stored. `second_factor` says the person proved one to get it (the caller checked)."""
    key = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name[:80],
        prefix=key[:10],
        key_hash=hash_api_key(key),
        expires_at=timezone.now() + timedelta(days=days or settings.API_TOKEN_DAYS),
        second_factor=second_factor,
    )
    return token, key


# How often a token's "last used" time is written: not on every request.
LAST_USED_RESOLUTION_SECONDS = 300


def use_api_token(key: str) -> ApiToken | None:
    """The token with this key, if it is live (not revoked, not expired, its owner active),
    with its "last used" time brought up to date; None otherwise."""
    now = timezone.now()
    token = selectors.token_by_key_hash(hash_api_key(key))
    if (
        token is None
        or token.revoked_at is not None
        or token.expires_at <= now
        or not token.user.is_active
    ):
        return None
    stale = token.last_used_at is None or (
        (now - token.last_used_at).total_seconds() > LAST_USED_RESOLUTION_SECONDS
    )
    if stale:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


class TokenNotFound(ConcernlineError):
    status_code = 404
    code = "not_found"


def revoke_api_token(*, token_id: int, actor: User) -> ApiToken:
    """Revoke a token: its owner may, and so may an administrator. Anyone else is told there is
    no such token."""
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().filter(pk=token_id).first()
        if token is None or not (token.user_id == actor.id or actor.is_superuser):
            raise TokenNotFound("No such token.")
        if token.revoked_at is None:
            token.revoked_at = timezone.now()
            token.revoked_by = actor
            token.save(update_fields=["revoked_at", "revoked_by"])
    return token


class LanguageError(ConcernlineError):
    code = "language"


def set_language_preference(*, actor: User, language: str) -> User:
    """A person's own choice of English or Welsh, made with the switcher on any page. Pages,
    emails, SMS pages and call scripts to them follow it."""
    if language not in Language.values:
        raise LanguageError(_("Choose English or Welsh."))
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=actor.pk)
        if user.language != language:
            user.language = language
            user.save(update_fields=["language"])
    actor.language = language
    return user
