"""People who use Concernline, their roles, teams and line management."""

import phonenumbers
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from phonenumber_field.modelfields import PhoneNumberField
from phonenumber_field.phonenumber import PhoneNumber, to_python


def validate_possible_number(value) -> None:
    """A number of a length that can be dialled in its country. Looser than libphonenumber's
    "valid", which refuses Ofcom's ranges kept for drama and testing (+44 7700 900xxx) that the
    demo and the tests use so that no real phone is ever texted."""
    number = to_python(value)
    if isinstance(number, PhoneNumber) and not phonenumbers.is_possible_number(number):
        raise ValidationError(
            _("Enter a mobile number in international form, e.g. +447700900123."), code="invalid"
        )


class MobileNumberField(PhoneNumberField):
    """Stores every dialable number in E.164 (+447700900123), so lookups by the number an SMS
    comes from always match, whatever spacing was typed."""

    default_validators = [validate_possible_number]

    def get_prep_value(self, value):
        number = to_python(value)
        if isinstance(number, PhoneNumber) and phonenumbers.is_possible_number(number):
            return number.as_e164
        return super().get_prep_value(value)


class Role(models.TextChoices):
    CARE_WORKER = "care_worker", _("Care worker")
    MANAGER = "manager", _("Manager")
    HR = "hr", _("HR")
    DPO = "dpo", _("Data protection officer")
    SAFEGUARDING_LEAD = "safeguarding_lead", _("Safeguarding lead")
    ADMIN = "admin", _("Administrator")


class Language(models.TextChoices):
    ENGLISH = "en", _("English")
    WELSH = "cy", _("Welsh")


class Engagement(models.TextChoices):
    EMPLOYEE = "employee", _("Employee")
    VOLUNTEER = "volunteer", _("Volunteer")


class Team(models.Model):
    name = models.CharField(_("name"), max_length=120, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **fields):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        user.set_password(password)
        user.full_clean(exclude=["password"])
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **fields):
        fields.setdefault("is_staff", False)
        fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **fields)

    def get_by_natural_key(self, username: str):
        """Sign-in by email ignores case: addresses are stored lower-case."""
        return self.get(email__iexact=username)

    def create_superuser(self, email: str, password: str | None = None, **fields):
        fields.setdefault("is_staff", True)
        fields.setdefault("is_superuser", True)
        fields.setdefault("role", Role.ADMIN)
        return self._create_user(email, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    """A member of staff or a volunteer. Signs in with an email address.

    `is_superuser` opens the configuration screens of the admin; it never opens case content,
    which follows need-to-know (incidents/access.py) for everybody.
    """

    email = models.EmailField(_("email address"), unique=True)
    full_name = models.CharField(_("full name"), max_length=150)
    role = models.CharField(_("role"), max_length=32, choices=Role, default=Role.CARE_WORKER)
    phone = MobileNumberField(
        _("mobile phone"), blank=True, help_text=_("In international form, e.g. +447700900123.")
    )
    team = models.ForeignKey(
        Team,
        verbose_name=_("team"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="members",
    )
    line_manager = models.ForeignKey(
        "self",
        verbose_name=_("line manager"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="reports",
    )
    language = models.CharField(
        _("preferred language"), max_length=2, choices=Language, default=Language.ENGLISH
    )
    engagement = models.CharField(
        _("employee or volunteer"),
        max_length=16,
        choices=Engagement,
        default=Engagement.EMPLOYEE,
    )
    is_active = models.BooleanField(_("active"), default=True)
    is_staff = models.BooleanField(
        _("admin site access"),
        default=False,
        help_text=_("May sign in to the configuration screens."),
    )
    date_joined = models.DateTimeField(_("date joined"), default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["full_name"]

    class Meta:
        ordering = ["full_name", "email"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(line_manager=models.F("pk")), name="staff_not_own_manager"
            ),
        ]

    def __str__(self) -> str:
        return self.full_name or self.email

    def get_full_name(self) -> str:
        return self.full_name

    def get_short_name(self) -> str:
        return self.full_name.split(" ")[0] if self.full_name else self.email

    @property
    def is_manager(self) -> bool:
        return self.role == Role.MANAGER


# Guidance (section 6) and training (section 5). A document's text lives in the database: it is
# read on phones as a page, versions are immutable once published, and no upload ever sits in a
# web-served folder.


class GuidanceDocument(models.Model):
    """One published version of the confidentiality guidance for employees or for volunteers.
    Never edited after publishing: a change is a new version, and everyone is asked again."""

    audience = models.CharField(_("for"), max_length=16, choices=Engagement)
    version = models.PositiveIntegerField(_("version"))
    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("text"))
    published_at = models.DateTimeField(_("published"), default=timezone.now)
    published_by = models.ForeignKey(
        User,
        verbose_name=_("published by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        ordering = ["audience", "-version"]
        verbose_name = _("guidance document")
        constraints = [
            models.UniqueConstraint(fields=["audience", "version"], name="guidance_version_once"),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.get_audience_display()}, v{self.version})"


class GuidanceAcknowledgement(models.Model):
    """A person's signature (6.1): they have received, read and understood this version."""

    document = models.ForeignKey(
        GuidanceDocument, on_delete=models.PROTECT, related_name="acknowledgements"
    )
    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="guidance_signatures")
    confirmed_at = models.DateTimeField(_("confirmed"), default=timezone.now)

    class Meta:
        ordering = ["-confirmed_at"]
        verbose_name = _("guidance confirmation")
        constraints = [
            models.UniqueConstraint(fields=["document", "user"], name="guidance_signed_once"),
        ]

    def __str__(self) -> str:
        return f"{self.user} signed {self.document}"


class GuidanceQuestion(models.Model):
    """ "I have a question" (6.2): goes to the asker's line manager, who discusses it with them."""

    document = models.ForeignKey(
        GuidanceDocument, on_delete=models.PROTECT, related_name="questions"
    )
    asked_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="guidance_questions")
    manager = models.ForeignKey(
        User,
        verbose_name=_("line manager"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="guidance_questions_to_answer",
    )
    question = models.TextField(_("question"), max_length=2000)
    asked_at = models.DateTimeField(_("asked"), default=timezone.now)
    discussed_at = models.DateTimeField(_("discussed"), null=True, blank=True)
    discussed_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["asked_at", "id"]
        verbose_name = _("guidance question")

    def __str__(self) -> str:
        return f"Question from {self.asked_by} on {self.document}"


class TrainingLevel(models.Model):
    """A level of confidentiality training (5.1). `roles` lists the roles it is the usual level
    for, so a manager setting someone's training starts from their role."""

    name = models.CharField(_("name"), max_length=120, unique=True)
    description = models.TextField(_("what it covers"), blank=True)
    roles = models.JSONField(_("usual for roles"), default=list, blank=True)
    position = models.PositiveSmallIntegerField(_("order"), default=0)

    class Meta:
        ordering = ["position", "name"]
        verbose_name = _("training level")

    def __str__(self) -> str:
        return self.name


class TrainingAssignment(models.Model):
    """The training a manager has assessed a person needs, by when, and when it was done.
    At most one open (not completed) assignment per person."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="training")
    level = models.ForeignKey(TrainingLevel, on_delete=models.PROTECT, related_name="assignments")
    due_on = models.DateField(_("due"))
    assigned_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    assigned_at = models.DateTimeField(default=timezone.now)
    completed_on = models.DateField(_("completed"), null=True, blank=True)
    completed_recorded_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    completed_recorded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["due_on", "id"]
        verbose_name = _("training assignment")
        constraints = [
            models.UniqueConstraint(
                fields=["user"],
                condition=models.Q(completed_on__isnull=True),
                name="training_one_open_per_person",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.level} for {self.user}, due {self.due_on}"

    def is_overdue(self, today) -> bool:
        return self.completed_on is None and self.due_on < today


class TrainingReminder(models.Model):
    """A reminder sent: once per assignment, due date and period (e.g. "7 days before")."""

    assignment = models.ForeignKey(
        TrainingAssignment, on_delete=models.CASCADE, related_name="reminders"
    )
    due_on = models.DateField()
    period = models.CharField(max_length=16)
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["sent_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["assignment", "due_on", "period"], name="training_reminder_once"
            ),
        ]

    def __str__(self) -> str:
        return f"Reminder {self.period} for training due {self.due_on}"


class TeamExport(models.Model):
    """Who downloaded a team list (names, signed or not, training) and when."""

    actor = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL)
    rows = models.PositiveIntegerField()
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at"]
        verbose_name = _("team list export")

    def __str__(self) -> str:
        return f"Team list exported by {self.actor} at {self.at:%Y-%m-%d %H:%M}"


class ApiToken(models.Model):
    """A credential for the API. Only a SHA-256 of the key is stored: a database dump gives no
    usable token. Tokens expire, can be listed and revoked by their owner and by admins."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(_("name"), max_length=80)
    prefix = models.CharField(_("starts with"), max_length=12)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(_("expires"))
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)
    revoked_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Whether the token was given for a password and a second factor. A token without one is
    # refused to anyone who must prove a second factor (staff.security.held_to_second_factor):
    # those issued before the API asked for it, or before its owner set one up.
    second_factor = models.BooleanField(_("given after a second factor"), default=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("API token")

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"
