"""Guidance (section 6) and training (section 5): the services and selectors."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from staff import selectors, services, signals
from staff.models import (
    Engagement,
    GuidanceAcknowledgement,
    GuidanceQuestion,
    TrainingAssignment,
    TrainingReminder,
)

from ..conftest import make_person
from .guidance_helpers import in_days, levels, organise, publish

pytestmark = pytest.mark.django_db


@pytest.fixture
def org(people):
    organise(people)
    return people


class TestPublishGuidance:
    def test_versions_count_up_per_audience(self, people):
        admin = people["admin"]
        assert publish(admin).version == 1
        assert publish(admin).version == 2
        assert publish(admin, Engagement.VOLUNTEER).version == 1
        assert selectors.current_guidance(Engagement.EMPLOYEE).version == 2

    def test_only_an_administrator_publishes(self, people):
        for role in ("worker", "manager", "hr", "dpo", "safeguarding"):
            with pytest.raises(services.NotAllowed):
                publish(people[role])

    def test_empty_text_is_refused(self, people):
        with pytest.raises(services.GuidanceError, match="no text"):
            services.publish_guidance(
                actor=people["admin"], audience=Engagement.EMPLOYEE, title="T", body="  \n"
            )


class TestConfirmGuidance:
    def test_records_version_time_and_person(self, people):
        document = publish(people["admin"])
        worker = people["worker"]
        assert selectors.guidance_to_confirm(worker) == document
        signature = services.confirm_guidance(actor=worker, document_id=document.pk)
        assert signature.document == document and signature.user == worker
        assert abs(signature.confirmed_at - timezone.now()) < timedelta(seconds=5)
        assert selectors.guidance_to_confirm(worker) is None

    def test_confirming_twice_keeps_the_first_time(self, people):
        document = publish(people["admin"])
        first = services.confirm_guidance(actor=people["worker"], document_id=document.pk)
        again = services.confirm_guidance(actor=people["worker"], document_id=document.pk)
        assert again.pk == first.pk and again.confirmed_at == first.confirmed_at
        assert GuidanceAcknowledgement.objects.count() == 1

    def test_a_new_version_asks_everyone_again(self, people):
        v1 = publish(people["admin"])
        for key in ("worker", "manager", "hr"):
            services.confirm_guidance(actor=people[key], document_id=v1.pk)
            assert selectors.guidance_to_confirm(people[key]) is None
        v2 = publish(people["admin"])
        for key in ("worker", "manager", "hr"):
            assert selectors.guidance_to_confirm(people[key]) == v2
        # The old version can no longer be signed; the old signature is kept.
        with pytest.raises(services.GuidanceError, match="not the current version"):
            services.confirm_guidance(actor=people["worker"], document_id=v1.pk)
        assert GuidanceAcknowledgement.objects.filter(document=v1).count() == 3

    def test_employees_and_volunteers_each_get_their_own(self, people):
        employees = publish(people["admin"], Engagement.EMPLOYEE)
        volunteers = publish(people["admin"], Engagement.VOLUNTEER)
        volunteer = make_person("vol@example.org", engagement=Engagement.VOLUNTEER)
        assert selectors.current_guidance_for(volunteer) == volunteers
        assert selectors.current_guidance_for(people["worker"]) == employees
        with pytest.raises(services.GuidanceError):
            services.confirm_guidance(actor=volunteer, document_id=employees.pk)
        services.confirm_guidance(actor=volunteer, document_id=volunteers.pk)
        assert selectors.guidance_to_confirm(volunteer) is None
        # A new employees' version leaves volunteers alone.
        publish(people["admin"], Engagement.EMPLOYEE)
        assert selectors.guidance_to_confirm(volunteer) is None

    def test_nothing_to_confirm_before_anything_is_published(self, people):
        assert selectors.guidance_to_confirm(people["worker"]) is None

    def test_banner_check_is_two_queries(self, people, django_assert_num_queries):
        publish(people["admin"])
        with django_assert_num_queries(2):
            selectors.guidance_to_confirm(people["worker"])


class TestQuestions:
    def test_goes_to_the_line_manager_with_ids_only(self, org, django_capture_on_commit_callbacks):
        document = publish(org["admin"])
        heard = []

        def receiver(sender, **kwargs):
            heard.append(kwargs)

        signals.guidance_question_asked.connect(receiver)
        try:
            with django_capture_on_commit_callbacks(execute=True):
                question = services.ask_guidance_question(
                    actor=org["worker"], document_id=document.pk, question="What is 'need to know'?"
                )
        finally:
            signals.guidance_question_asked.disconnect(receiver)
        assert question.manager == org["manager"]
        assert [{k: v for k, v in h.items() if k != "signal"} for h in heard] == [
            {
                "question_id": question.pk,
                "asked_by_id": org["worker"].pk,
                "manager_id": org["manager"].pk,
            }
        ]
        # Shown to the line manager, not another manager; asking is not confirming.
        assert list(selectors.questions_for(org["manager"])) == [question]
        assert list(selectors.questions_for(org["manager2"])) == []
        assert selectors.guidance_to_confirm(org["worker"]) == document

    def test_without_a_line_manager_it_goes_to_hr(self, org):
        document = publish(org["admin"])
        question = services.ask_guidance_question(
            actor=org["dpo"], document_id=document.pk, question="Who do I ask?"
        )
        assert question.manager is None
        assert list(selectors.questions_for(org["hr"])) == [question]
        assert list(selectors.questions_for(org["admin"])) == [question]
        assert list(selectors.questions_for(org["manager"])) == []

    def test_empty_question_is_refused(self, org):
        document = publish(org["admin"])
        with pytest.raises(services.GuidanceError, match="Say what"):
            services.ask_guidance_question(
                actor=org["worker"], document_id=document.pk, question=" "
            )

    def test_only_the_line_manager_marks_it_discussed(self, org):
        document = publish(org["admin"])
        question = services.ask_guidance_question(
            actor=org["worker"], document_id=document.pk, question="A question"
        )
        with pytest.raises(services.NotAllowed):
            services.mark_question_discussed(actor=org["manager2"], question_id=question.pk)
        services.mark_question_discussed(actor=org["manager"], question_id=question.pk)
        question.refresh_from_db()
        assert question.discussed_by == org["manager"] and question.discussed_at is not None
        assert list(selectors.questions_for(org["manager"])) == []
        assert GuidanceQuestion.objects.count() == 1


class TestTraining:
    def test_manager_sets_training_for_their_team_only(self, org):
        care, *_ = levels()[1:]
        assignment = services.set_training(
            actor=org["manager"], user_id=org["worker"].pk, level_id=care.pk, due_on=in_days(30)
        )
        assert assignment.level == care and assignment.assigned_by == org["manager"]
        with pytest.raises(services.NotAllowed):
            services.set_training(
                actor=org["manager"],
                user_id=org["other_worker"].pk,
                level_id=care.pk,
                due_on=in_days(30),
            )
        for key in ("worker", "dpo", "safeguarding"):
            with pytest.raises(services.NotAllowed):
                services.set_training(
                    actor=org[key], user_id=org["manager"].pk, level_id=care.pk, due_on=in_days(3)
                )
        # HR and administrators look after everyone.
        services.set_training(
            actor=org["hr"], user_id=org["other_worker"].pk, level_id=care.pk, due_on=in_days(9)
        )

    def test_setting_again_replaces_the_open_assignment(self, org):
        _aw, care, managing = levels()
        services.set_training(
            actor=org["manager"], user_id=org["worker"].pk, level_id=care.pk, due_on=in_days(30)
        )
        services.set_training(
            actor=org["manager"], user_id=org["worker"].pk, level_id=managing.pk, due_on=in_days(5)
        )
        open_ = TrainingAssignment.objects.get(user=org["worker"], completed_on__isnull=True)
        assert open_.level == managing and open_.due_on == in_days(5)
        assert TrainingAssignment.objects.count() == 1

    def test_one_open_assignment_per_person_is_a_database_rule(self, org):
        care = levels()[1]
        TrainingAssignment.objects.create(user=org["worker"], level=care, due_on=in_days(1))
        with pytest.raises(IntegrityError), transaction.atomic():
            TrainingAssignment.objects.create(user=org["worker"], level=care, due_on=in_days(2))

    def test_a_past_due_date_is_refused(self, org):
        care = levels()[1]
        with pytest.raises(services.GuidanceError, match="passed") as caught:
            services.set_training(
                actor=org["manager"], user_id=org["worker"].pk, level_id=care.pk, due_on=in_days(-1)
            )
        assert "due_on" in caught.value.extra

    def test_completion_is_recorded_and_closes_it(self, org):
        care = levels()[1]
        assignment = services.set_training(
            actor=org["manager"], user_id=org["worker"].pk, level_id=care.pk, due_on=in_days(3)
        )
        with pytest.raises(services.NotAllowed):
            services.record_training_completed(
                actor=org["manager2"], assignment_id=assignment.pk, completed_on=in_days(0)
            )
        with pytest.raises(services.GuidanceError, match="future"):
            services.record_training_completed(
                actor=org["manager"], assignment_id=assignment.pk, completed_on=in_days(1)
            )
        done = services.record_training_completed(
            actor=org["manager"], assignment_id=assignment.pk, completed_on=in_days(0)
        )
        assert done.completed_on == in_days(0) and done.completed_recorded_by == org["manager"]
        assert selectors.open_training_for(org["worker"]) is None
        # A new assessment may follow.
        services.set_training(
            actor=org["manager"], user_id=org["worker"].pk, level_id=care.pk, due_on=in_days(365)
        )

    def test_usual_level_follows_the_role(self, org):
        all_levels = levels()
        assert selectors.usual_level_for("care_worker", all_levels).name == "Care practice"
        assert selectors.usual_level_for("hr", all_levels).name == "Managing"
        assert selectors.usual_level_for("dpo", all_levels) is None


class TestOverdueAndTeam:
    def test_overdue_is_open_training_past_its_date(self, org):
        care = levels()[1]
        assignment = services.set_training(
            actor=org["manager"], user_id=org["worker"].pk, level_id=care.pk, due_on=in_days(0)
        )
        today = timezone.localdate()
        assert not assignment.is_overdue(today)
        assert assignment.is_overdue(today + timedelta(days=1))
        rows = selectors.team_overview(org["manager"], today=today + timedelta(days=1))
        assert [r.person for r in rows if r.overdue] == [org["worker"]]
        services.record_training_completed(
            actor=org["manager"], assignment_id=assignment.pk, completed_on=today
        )
        rows = selectors.team_overview(org["manager"], today=today + timedelta(days=1))
        assert not any(r.overdue for r in rows)
        assert next(r for r in rows if r.person == org["worker"]).last_completed == assignment

    def test_manager_sees_reports_and_team_not_other_teams(self, org):
        extra = make_person("north2@example.org", team=org["worker"].team)
        direct_elsewhere = make_person("report@example.org", line_manager=org["manager"])
        seen = set(selectors.people_overseen_by(org["manager"]))
        assert seen == {org["worker"], extra, direct_elsewhere}
        assert org["other_worker"] not in seen and org["manager"] not in seen
        assert set(selectors.people_overseen_by(org["manager2"])) == {org["other_worker"]}
        everyone = set(selectors.people_overseen_by(org["hr"]))
        assert org["other_worker"] in everyone and org["worker"] in everyone
        for key in ("worker", "dpo", "safeguarding"):
            assert list(selectors.people_overseen_by(org[key])) == []

    def test_team_overview_shows_who_signed(self, org):
        document = publish(org["admin"])
        services.confirm_guidance(actor=org["worker"], document_id=document.pk)
        rows = {r.person: r for r in selectors.team_overview(org["hr"])}
        assert rows[org["worker"]].signed and rows[org["worker"]].document == document
        assert not rows[org["other_worker"]].signed

    def test_team_overview_query_count_is_fixed(self, org, django_assert_num_queries):
        document = publish(org["admin"])
        care = levels()[1]
        for i in range(5):
            person = make_person(f"p{i}@example.org", team=org["worker"].team)
            services.confirm_guidance(actor=person, document_id=document.pk)
            services.set_training(
                actor=org["manager"], user_id=person.pk, level_id=care.pk, due_on=in_days(i)
            )
            services.ask_guidance_question(actor=person, document_id=document.pk, question="?")
        with django_assert_num_queries(6):
            rows = selectors.team_overview(org["manager"])
            assert [r.training.level.name for r in rows if r.training] == ["Care practice"] * 5


class TestReminders:
    @pytest.fixture
    def heard(self):
        heard = []

        def receiver(sender, **kwargs):
            kwargs.pop("signal")
            heard.append(kwargs)

        signals.training_reminder_due.connect(receiver)
        yield heard
        signals.training_reminder_due.disconnect(receiver)

    def test_period_follows_the_days_left(self, settings):
        settings.TRAINING_REMINDER_DAYS = [14, 1]
        today = timezone.localdate()

        def period(days):
            return selectors.reminder_period(due_on=today + timedelta(days=days), today=today)

        assert period(20) is None and period(15) is None
        assert period(14) == "before_14" and period(2) == "before_14"
        assert period(1) == "before_1" and period(0) == "before_1"
        assert period(-1) == "overdue"

    def test_sent_once_per_due_date_and_period(
        self, org, settings, heard, django_capture_on_commit_callbacks
    ):
        settings.TRAINING_REMINDER_DAYS = [14, 1]
        care = levels()[1]
        assignment = services.set_training(
            actor=org["manager"], user_id=org["worker"].pk, level_id=care.pk, due_on=in_days(10)
        )
        today = timezone.localdate()

        def run(day_offset):
            with django_capture_on_commit_callbacks(execute=True):
                return services.send_training_reminders(today=today + timedelta(days=day_offset))

        assert run(0) == 1 and run(0) == 0 and run(3) == 0  # still "before_14"
        assert run(9) == 1 and run(10) == 0  # "before_1"
        assert run(11) == 1 and run(30) == 0  # overdue, once
        assert [h["period"] for h in heard] == ["before_14", "before_1", "overdue"]
        assert {h["due_date"] for h in heard} == {assignment.due_on}
        assert {h["user_id"] for h in heard} == {org["worker"].pk}
        assert TrainingReminder.objects.count() == 3

        # A new due date is a new set of reminders.
        services.set_training(
            actor=org["manager"], user_id=org["worker"].pk, level_id=care.pk, due_on=in_days(40)
        )
        assert run(30) == 1
        assert heard[-1]["period"] == "before_14" and heard[-1]["due_date"] == in_days(40)

    def test_nothing_for_completed_or_far_off_training(self, org, settings, heard):
        settings.TRAINING_REMINDER_DAYS = [7]
        care = levels()[1]
        services.set_training(
            actor=org["manager"], user_id=org["worker"].pk, level_id=care.pk, due_on=in_days(30)
        )
        done = services.set_training(
            actor=org["hr"], user_id=org["other_worker"].pk, level_id=care.pk, due_on=in_days(1)
        )
        services.record_training_completed(
            actor=org["hr"], assignment_id=done.pk, completed_on=in_days(0)
        )
        assert services.send_training_reminders() == 0 and heard == []

    def test_due_selector_is_two_queries(self, org, settings, django_assert_num_queries):
        settings.TRAINING_REMINDER_DAYS = [14]
        care = levels()[1]
        for i in range(4):
            person = make_person(f"r{i}@example.org", team=org["worker"].team)
            services.set_training(
                actor=org["manager"], user_id=person.pk, level_id=care.pk, due_on=in_days(i)
            )
        with django_assert_num_queries(2):
            due = selectors.training_reminders_due(today=timezone.localdate())
            assert len(due) == 4 and all(a.user.email for a, _p in due)

    def test_the_beat_task_is_named_scheduled_and_runs_the_service(self, org, settings, heard):
        from config.celery import app
        from staff.tasks import send_training_reminders

        settings.TRAINING_REMINDER_DAYS = [14]
        assert send_training_reminders.name == "staff.send_training_reminders"
        assert send_training_reminders.max_retries == 3
        assert any(
            entry["task"] == "staff.send_training_reminders"
            for entry in app.conf.beat_schedule.values()
        )
        care = levels()[1]
        services.set_training(
            actor=org["manager"], user_id=org["worker"].pk, level_id=care.pk, due_on=in_days(2)
        )
        assert send_training_reminders.delay().get() == 1
        assert send_training_reminders.delay().get() == 0
