"""Rota writes and rota tasks: cover, feed secrets, gap warnings, handoff reminders; and the
urgent path paging whoever the rota engine says is on call."""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.core import mail
from django.utils import timezone

from incidents.models import ReportKind
from incidents.services import submit_report
from oncall import tasks
from oncall.models import (
    GapWarning,
    HandoffReminder,
    LayerMember,
    Rota,
    RotaLayer,
    RotaOverride,
    Window,
)
from oncall.services import RotaError, add_override, rotate_feed_secret, warn_of_rota_gaps
from staff.models import Role
from tests.conftest import make_person

# Monday 7 December 2026, 08:00 UTC (08:00 GMT).
NOW = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


def office_only(people, *, owners=()):
    rota = Rota.objects.create(name="Office only")
    rota.owners.set(owners)
    layer = RotaLayer.objects.create(
        rota=rota, name="Office", start_date=date(2026, 11, 2), window=Window.OFFICE_HOURS
    )
    LayerMember.objects.create(layer=layer, person=people["manager"], position=0)
    return rota


class TestAddOverride:
    def test_a_care_worker_cannot_change_cover(self, people, rota):
        with pytest.raises(RotaError):
            add_override(
                rota=rota,
                person=people["manager2"],
                starts_at=timezone.now(),
                ends_at=timezone.now() + timedelta(hours=1),
                actor=people["worker"],
            )
        assert not RotaOverride.objects.exists()

    def test_a_person_with_no_phone_cannot_be_put_on_call(self, people, rota):
        phoneless = make_person("nophone@example.org", Role.MANAGER)
        with pytest.raises(RotaError) as caught:
            add_override(
                rota=rota,
                person=phoneless,
                starts_at=timezone.now(),
                ends_at=timezone.now() + timedelta(hours=1),
                actor=people["manager"],
            )
        assert "person" in caught.value.extra

    def test_rotating_a_feed_is_for_managers_or_the_person(self, people, rota):
        with pytest.raises(RotaError):
            rotate_feed_secret(rota=rota, actor=people["worker"])
        with pytest.raises(RotaError):
            rotate_feed_secret(person=people["manager"], actor=people["worker"])
        assert rotate_feed_secret(rota=rota, actor=people["manager"]) != ""


class TestUrgentPath:
    def test_an_urgent_report_pages_whoever_covers_now(
        self, people, rota, outbox, django_capture_on_commit_callbacks
    ):
        now = timezone.now()
        add_override(
            rota=rota,
            person=people["manager2"],
            starts_at=now - timedelta(minutes=5),
            ends_at=now + timedelta(hours=2),
            actor=people["manager"],
        )
        with django_capture_on_commit_callbacks(execute=True):
            case = submit_report(
                reporter=people["worker"],
                kind=ReportKind.URGENT_DISCLOSURE,
                urgent=True,
                grounds=["abuse_or_harm"],
                narrative="Something was said in confidence.",
            )
        assert [m["to"] for m in outbox] == [str(people["manager2"].phone)]
        assert case.reference in outbox[0]["body"]


class TestGapWarnings:
    @pytest.fixture(autouse=True)
    def _no_per_phone_limit(self, settings):
        """A fortnight of gaps is more SMS to one phone than its per-minute limit allows; in
        production the rest follow a minute later, but eager tests would wait it out."""
        settings.PAGING_THROTTLE_SMS = "100/60"

    def test_owners_are_told_of_each_gap_once_by_sms_and_email(
        self, people, outbox, django_capture_on_commit_callbacks
    ):
        office_only(people, owners=[people["manager2"]])
        with django_capture_on_commit_callbacks(execute=True):
            told = warn_of_rota_gaps(now=NOW)
        # Now until 09:00, then every evening and night, and the weekends.
        assert told == GapWarning.objects.count() > 5
        assert {m["to"] for m in outbox} == {str(people["manager2"].phone)}
        assert len(outbox) == told and len(mail.outbox) == told
        assert all("Office only" in m["body"] for m in outbox)
        assert mail.outbox[0].to == [people["manager2"].email]
        # Gaps are known by their real start and end: this one began on Friday at 17:00.
        first = GapWarning.objects.order_by("starts_at").first()
        assert first.starts_at == datetime(2026, 12, 4, 17, 0, tzinfo=UTC)
        assert first.ends_at == datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
        assert "Mon 7 Dec 08:00" in outbox[0]["body"]  # from now, not from Friday

        sent = len(outbox)
        for later in (timedelta(minutes=1), timedelta(hours=2), timedelta(hours=8)):
            with django_capture_on_commit_callbacks(execute=True):
                assert warn_of_rota_gaps(now=NOW + later) == 0
        # Later, one more evening (Monday 21st) comes within the fortnight: only it is told.
        with django_capture_on_commit_callbacks(execute=True):
            assert warn_of_rota_gaps(now=NOW + timedelta(days=1)) == 1
        assert len(outbox) == sent + 1

    def test_a_gap_partly_covered_is_not_told_again(
        self, people, outbox, django_capture_on_commit_callbacks
    ):
        rota = office_only(people, owners=[people["manager2"]])
        with django_capture_on_commit_callbacks(execute=True):
            told = warn_of_rota_gaps(now=NOW)
        RotaOverride.objects.create(
            rota=rota,
            person=people["manager2"],
            starts_at=datetime(2026, 12, 7, 17, 0, tzinfo=UTC),
            ends_at=datetime(2026, 12, 7, 20, 0, tzinfo=UTC),
        )
        with django_capture_on_commit_callbacks(execute=True):
            assert warn_of_rota_gaps(now=NOW) == 0
        assert len(outbox) == told

    def test_no_owner_means_every_manager_is_told(
        self, people, outbox, django_capture_on_commit_callbacks
    ):
        office_only(people)
        with django_capture_on_commit_callbacks(execute=True):
            assert warn_of_rota_gaps(now=NOW) > 0
        assert {m["to"] for m in outbox} == {
            str(people["manager"].phone),
            str(people["manager2"].phone),
        }

    def test_a_rota_with_no_gap_tells_nobody(self, people, rota, outbox):
        assert warn_of_rota_gaps() == 0
        assert outbox == [] and mail.outbox == []

    def test_the_task_runs_the_check(self, people, outbox, django_capture_on_commit_callbacks):
        office_only(people, owners=[people["manager"]])
        with django_capture_on_commit_callbacks(execute=True):
            assert tasks.warn_of_rota_gaps.delay().get() > 0
        assert outbox


class TestHandoffReminders:
    def test_whoever_comes_on_call_is_reminded_once(
        self, people, outbox, settings, django_capture_on_commit_callbacks
    ):
        settings.ROTA_HANDOFF_REMINDER_MINUTES = 90
        office_only(people)
        from oncall.services import send_handoff_reminders

        with django_capture_on_commit_callbacks(execute=True):
            assert send_handoff_reminders(now=NOW) == 1  # 09:00 is within 90 minutes
        assert [m["to"] for m in outbox] == [str(people["manager"].phone)]
        assert "Office only" in outbox[0]["body"] and "09:00" in outbox[0]["body"]
        assert mail.outbox[0].to == [people["manager"].email]
        reminder = HandoffReminder.objects.get()
        assert reminder.starts_at == datetime(2026, 12, 7, 9, 0, tzinfo=UTC)

        with django_capture_on_commit_callbacks(execute=True):
            assert send_handoff_reminders(now=NOW + timedelta(minutes=5)) == 0
        assert len(outbox) == 1

    def test_not_before_the_lead_time(self, people, outbox, settings):
        settings.ROTA_HANDOFF_REMINDER_MINUTES = 30
        office_only(people)
        from oncall.services import send_handoff_reminders

        assert send_handoff_reminders(now=NOW) == 0
        assert send_handoff_reminders(now=NOW + timedelta(minutes=30)) == 1

    def test_a_shift_already_running_is_not_a_handoff(self, people, outbox, settings):
        settings.ROTA_HANDOFF_REMINDER_MINUTES = 60
        office_only(people)
        from oncall.services import send_handoff_reminders

        assert send_handoff_reminders(now=datetime(2026, 12, 7, 12, 0, tzinfo=UTC)) == 0

    def test_the_task_sends_them(
        self, people, outbox, settings, django_capture_on_commit_callbacks
    ):
        settings.ROTA_HANDOFF_REMINDER_MINUTES = 24 * 60
        office_only(people)
        with django_capture_on_commit_callbacks(execute=True):
            assert tasks.send_handoff_reminders.delay().get() >= 1
        assert outbox and outbox[0]["to"] == str(people["manager"].phone)


def test_beat_runs_both_rota_tasks(settings):
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {"oncall.warn_of_rota_gaps", "oncall.send_handoff_reminders"} <= scheduled
