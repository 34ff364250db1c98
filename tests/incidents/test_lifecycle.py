"""Each transition of a case, legal and illegal: review, outcome, close, and the HR stages."""

from datetime import datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from incidents import services
from incidents.models import (
    AccessLogEntry,
    CaseStatus,
    ClockKind,
    HRStage,
    Outcome,
    TimelineKind,
)
from incidents.services import IllegalTransition, NotAllowed


def kinds(case):
    return list(case.timeline.values_list("kind", flat=True))


class TestStartReview:
    def test_from_reported_by_the_paged_manager(self, make_case, people):
        case = make_case()
        services.start_review(case=case, actor=people["manager"])
        case.refresh_from_db()
        assert case.status == CaseStatus.UNDER_REVIEW
        assert case.owner == people["manager"] and case.acknowledged_at is not None
        assert kinds(case)[-1] == TimelineKind.REVIEW_STARTED
        assert case.clocks.get(kind=ClockKind.ACKNOWLEDGEMENT).met_at is not None

    @pytest.mark.parametrize("role", ["worker", "manager2", "hr", "dpo", "admin"])
    def test_refused_to_anyone_without_a_review_basis(self, make_case, people, role):
        case = make_case()
        with pytest.raises(NotAllowed):
            services.start_review(case=case, actor=people[role])
        case.refresh_from_db()
        assert case.status == CaseStatus.REPORTED
        assert TimelineKind.REVIEW_STARTED not in kinds(case)

    def test_twice_is_an_illegal_transition(self, make_case, people):
        case = make_case(to="under_review")
        with pytest.raises(IllegalTransition, match="under review"):
            services.start_review(case=case, actor=people["manager"])

    def test_non_urgent_case_goes_to_the_reporters_line_manager(self, people, rota):
        people["worker"].line_manager = people["manager2"]
        people["worker"].save()
        case = services.submit_report(
            reporter=people["worker"],
            kind="concern_colleague",
            narrative="Read out a care plan in the canteen.",
            details={"colleague": "B. Colleague", "occurred": "Monday lunch"},
        )
        assert case.owner == people["manager2"] and not case.urgent
        services.start_review(case=case, actor=people["manager2"])
        case.refresh_from_db()
        assert case.status == CaseStatus.UNDER_REVIEW

    def test_without_a_line_manager_it_goes_to_the_manager_on_call(self, people, rota, outbox):
        case = services.submit_report(
            reporter=people["worker"],
            kind="worrying_information",
            narrative="Told me something in confidence.",
        )
        assert case.owner == people["manager"] and not case.urgent and outbox == []


class TestAssignReviewer:
    def test_owner_assigns_a_manager(self, make_case, people):
        case = make_case(to="under_review")
        services.assign_reviewer(case=case, actor=people["manager"], reviewer=people["manager2"])
        case.refresh_from_db()
        assert case.reviewer == people["manager2"]
        assert kinds(case)[-1] == TimelineKind.REVIEWER_ASSIGNED
        # The reviewer may now record the outcome.
        services.record_outcome(case=case, actor=people["manager2"], outcome="no_breach")

    def test_only_a_manager_may_review(self, make_case, people):
        case = make_case(to="under_review")
        with pytest.raises(services.ConcernlineError):
            services.assign_reviewer(case=case, actor=people["manager"], reviewer=people["hr"])

    def test_only_the_owner_assigns(self, make_case, people):
        case = make_case(to="under_review")
        with pytest.raises(NotAllowed):
            services.assign_reviewer(
                case=case, actor=people["manager2"], reviewer=people["manager2"]
            )

    def test_not_after_the_outcome(self, make_case, people):
        case = make_case(to="outcome")
        with pytest.raises(IllegalTransition):
            services.assign_reviewer(
                case=case, actor=people["manager"], reviewer=people["manager2"]
            )


class TestRecordOutcome:
    @pytest.mark.parametrize("outcome", [o for o in Outcome.values if o != Outcome.DISCIPLINARY])
    def test_each_outcome(self, make_case, people, outcome):
        case = make_case(to="under_review")
        services.record_outcome(case=case, actor=people["manager"], outcome=outcome)
        case.refresh_from_db()
        assert case.status == CaseStatus.OUTCOME_RECORDED and case.outcome == outcome
        assert case.referred_at is None and case.hr_stage == ""
        assert case.clocks.get(kind=ClockKind.REVIEW).met_at is not None
        event = case.timeline.get(kind=TimelineKind.OUTCOME_RECORDED)
        assert event.data == {"outcome": outcome} and event.actor == people["manager"]

    def test_referral_opens_the_hr_stages(self, make_case, people):
        case = make_case(to="under_review")
        services.record_outcome(case=case, actor=people["manager"], outcome="disciplinary")
        case.refresh_from_db()
        assert case.hr_stage == HRStage.REFERRED and case.referred_at is not None
        assert kinds(case)[-2:] == [TimelineKind.OUTCOME_RECORDED, TimelineKind.REFERRED]

    def test_before_review_is_illegal(self, make_case, people):
        case = make_case()
        with pytest.raises(IllegalTransition):
            services.record_outcome(case=case, actor=people["manager"], outcome="no_breach")

    def test_unknown_outcome(self, make_case, people):
        case = make_case(to="under_review")
        with pytest.raises(services.ConcernlineError) as caught:
            services.record_outcome(case=case, actor=people["manager"], outcome="shrug")
        assert "outcome" in caught.value.extra

    def test_refused_to_the_safeguarding_lead(self, make_case, people):
        # May see the case (safeguarding grounds), but reviewing is not theirs.
        case = make_case("safeguarding", to="under_review")
        with pytest.raises(NotAllowed):
            services.record_outcome(case=case, actor=people["safeguarding"], outcome="no_breach")


class TestClose:
    def test_close_after_outcome(self, make_case, people):
        case = make_case(to="outcome")
        services.close_case(case=case, actor=people["manager"])
        case.refresh_from_db()
        assert case.status == CaseStatus.CLOSED and case.closed_at is not None
        assert kinds(case)[-1] == TimelineKind.CLOSED

    def test_close_before_outcome_is_illegal(self, make_case, people):
        case = make_case(to="under_review")
        with pytest.raises(IllegalTransition):
            services.close_case(case=case, actor=people["manager"])

    def test_referred_case_is_closed_by_hr_not_the_reviewer(self, make_case, people):
        case = make_case(to="referred")
        with pytest.raises(IllegalTransition, match="HR"):
            services.close_case(case=case, actor=people["manager"])

    def test_closed_twice_is_illegal(self, make_case, people):
        case = make_case(to="outcome")
        services.close_case(case=case, actor=people["manager"])
        with pytest.raises(IllegalTransition):
            services.close_case(case=case, actor=people["manager"])


class TestHRStages:
    def test_the_whole_procedure_with_an_appeal(self, make_case, people):
        case = make_case(to="referred")
        hr = people["hr"]
        hearing = timezone.now() + timedelta(days=7)
        services.advance_referral(case=case, actor=hr, stage="investigation")
        services.advance_referral(case=case, actor=hr, stage="hearing", hearing_at=hearing)
        services.advance_referral(case=case, actor=hr, stage="decision", decision="written_warning")
        services.advance_referral(case=case, actor=hr, stage="appeal")
        services.advance_referral(case=case, actor=hr, stage="closed")
        case.refresh_from_db()
        assert case.hr_stage == HRStage.CLOSED and case.status == CaseStatus.CLOSED
        assert case.hr_decision == "written_warning" and case.hearing_at == hearing
        stages = [e.data["to"] for e in case.timeline.filter(kind=TimelineKind.HR_STAGE)]
        assert stages == ["investigation", "hearing", "decision", "appeal", "closed"]
        invitation = case.timeline.get(kind=TimelineKind.HR_STAGE, data__to="hearing")
        assert invitation.data["right_to_be_accompanied"] is True
        assert kinds(case)[-1] == TimelineKind.CLOSED

    def test_no_case_to_answer_without_a_hearing(self, make_case, people):
        case = make_case(to="referred")
        services.advance_referral(case=case, actor=people["hr"], stage="investigation")
        services.advance_referral(
            case=case, actor=people["hr"], stage="decision", decision="no_case"
        )
        services.advance_referral(case=case, actor=people["hr"], stage="closed")
        case.refresh_from_db()
        assert case.status == CaseStatus.CLOSED

    def test_a_warning_needs_a_hearing(self, make_case, people):
        case = make_case(to="referred")
        services.advance_referral(case=case, actor=people["hr"], stage="investigation")
        with pytest.raises(IllegalTransition, match="hearing"):
            services.advance_referral(
                case=case, actor=people["hr"], stage="decision", decision="dismissal"
            )

    @pytest.mark.parametrize("stage", ["hearing", "decision", "appeal", "closed", "referred"])
    def test_stages_cannot_be_skipped(self, make_case, people, stage):
        case = make_case(to="referred")
        with pytest.raises(IllegalTransition):
            services.advance_referral(
                case=case,
                actor=people["hr"],
                stage=stage,
                hearing_at=timezone.now(),
                decision="no_case",
            )
        case.refresh_from_db()
        assert case.hr_stage == HRStage.REFERRED

    def test_a_hearing_needs_its_date(self, make_case, people):
        case = make_case(to="referred")
        services.advance_referral(case=case, actor=people["hr"], stage="investigation")
        with pytest.raises(services.ConcernlineError) as caught:
            services.advance_referral(case=case, actor=people["hr"], stage="hearing")
        assert "hearing_at" in caught.value.extra

    @pytest.mark.parametrize("role", ["manager", "manager2", "dpo", "admin", "worker"])
    def test_only_hr_runs_the_procedure(self, make_case, people, role):
        case = make_case(to="referred")
        with pytest.raises(NotAllowed):
            services.advance_referral(case=case, actor=people[role], stage="investigation")

    def test_hr_has_nothing_before_referral(self, make_case, people):
        case = make_case(to="outcome")
        with pytest.raises(NotAllowed):
            services.advance_referral(case=case, actor=people["hr"], stage="investigation")


class TestThroughTheWeb:
    """An illegal transition from the page is a message, never a 500."""

    def test_outcome_from_the_case_page(self, client, make_case, people):
        case = make_case(to="under_review")
        client.force_login(people["manager"])
        response = client.post(
            reverse("incidents:case-outcome", args=[case.reference]), {"outcome": "learning_need"}
        )
        assert response.status_code == 302
        case.refresh_from_db()
        assert case.outcome == "learning_need"
        assert AccessLogEntry.objects.filter(case=case, action="change").count() == 1

    def test_illegal_transition_is_a_plain_message(self, client, make_case, people):
        case = make_case()
        client.force_login(people["manager"])
        response = client.post(reverse("incidents:case-close", args=[case.reference]), follow=True)
        assert response.status_code == 200
        assert "Not possible while the case is reported." in response.content.decode()

    def test_hr_stage_from_the_page(self, client, make_case, people):
        case = make_case(to="referred")
        client.force_login(people["hr"])
        url = reverse("incidents:case-hr-stage", args=[case.reference])
        client.post(url, {"stage": "investigation"})
        client.post(url, {"stage": "hearing", "hearing_at": "2030-01-15T10:00"})
        case.refresh_from_db()
        assert case.hr_stage == "hearing" and case.hearing_at.year == 2030
        body = client.get(reverse("incidents:case-detail", args=[case.reference])).content
        assert "Hearing" in body.decode()

    def test_the_stage_form_offers_only_where_the_procedure_can_go_next(
        self, client, make_case, people
    ):
        case = make_case(to="referred")
        hr = people["hr"]
        client.force_login(hr)
        url = reverse("incidents:case-detail", args=[case.reference])

        def offered():
            form = client.get(url).context["hr_form"]
            return [value for value, _label in form.fields["stage"].choices], sorted(form.fields)

        assert offered() == (["investigation"], ["stage"])
        services.advance_referral(case=case, actor=hr, stage="investigation")
        assert offered() == (["hearing", "decision"], ["decision", "hearing_at", "stage"])
        services.advance_referral(
            case=case, actor=hr, stage="hearing", hearing_at=timezone.now() + timedelta(days=7)
        )
        assert offered() == (["decision"], ["decision", "stage"])
        services.advance_referral(case=case, actor=hr, stage="decision", decision="no_case")
        assert offered() == (["appeal", "closed"], ["stage"])

    def test_the_timeline_says_in_words_what_was_decided_and_when_the_hearing_is(
        self, client, make_case, people, django_capture_on_commit_callbacks
    ):
        """HR preparing a hearing reads the procedure on the timeline as words (the stage, the
        hearing's date, the decision, the outcome, how the page was answered), not codes."""
        case = make_case(to="referred")
        hr = people["hr"]
        hearing = timezone.make_aware(datetime(2030, 1, 15, 10, 0))
        services.advance_referral(case=case, actor=hr, stage="investigation")
        services.advance_referral(case=case, actor=hr, stage="hearing", hearing_at=hearing)
        services.advance_referral(case=case, actor=hr, stage="decision", decision="written_warning")
        client.force_login(hr)

        body = client.get(reverse("incidents:case-detail", args=[case.reference])).content
        timeline = body.decode().split('<ol class="timeline">')[1]

        for words in (
            "<small>Investigation</small>",
            "<small>hearing on 15 Jan 2030 10:00</small>",
            "<small>Written warning</small>",
            "<small>Refer to the disciplinary procedure</small>",
        ):
            assert words in timeline, words
        for code in (">investigation<", ">written_warning<", ">disciplinary<", "by web"):
            assert code not in timeline, code

    def test_case_page_names_the_grounds_in_words_not_codes(self, client, make_case, people):
        """The on-call manager reads why a disclosure could not wait as the reporter ticked it,
        in their own language."""
        case = make_case("safeguarding")
        client.force_login(people["manager"])
        url = reverse("incidents:case-detail", args=[case.reference])
        body = client.get(url).content.decode()
        assert "Abuse or harm (safeguarding)" in body and "abuse_or_harm" not in body
        people["manager"].language = "cy"
        people["manager"].save(update_fields=["language"])
        assert "Cam-drin neu niwed (diogelu)" in client.get(url).content.decode()

    def test_case_page_offers_only_the_actions_open_to_you(self, client, make_case, people):
        case = make_case(to="under_review")
        client.force_login(people["manager"])
        body = client.get(reverse("incidents:case-detail", args=[case.reference])).content
        assert b"Record outcome" in body and b"Close the case" not in body
        case = make_case("breach", to="reported")
        client.force_login(people["dpo"])
        body = client.get(reverse("incidents:case-detail", args=[case.reference])).content
        assert b"Record the decision" in body and b"Record outcome" not in body


def test_starting_the_review_ends_the_paging(make_case, people, outbox):
    from oncall.models import Alert, AlertState
    from oncall.services import run_alert_step

    case = make_case("crime")
    alert = Alert.objects.get(owner_type=case.ALERT_OWNER_TYPE, owner_id=case.id)
    token = str(alert.active_token)
    services.start_review(case=case, actor=people["manager"])
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED
    assert not run_alert_step(alert_id=alert.id, token=token)


def test_starting_the_review_stops_the_pages_next_call_and_email(make_case, people, settings):
    """The page's own channel plan stops too, as on acknowledgement: no call again, no email."""
    from notifications.models import PageRequest
    from notifications.providers import outbox as sms_outbox
    from notifications.services import advance_page

    case = make_case("crime")
    (page,) = PageRequest.objects.filter(recipient=people["manager"])
    assert page.closed_at is None and page.next_step_at is not None  # a call again is due
    sent = (len(sms_outbox.calls), len(sms_outbox.outbox))
    services.start_review(case=case, actor=people["manager"])
    page.refresh_from_db()
    assert page.closed_at is not None and page.next_step_at is None
    assert page.acknowledged_via == "resolved"
    later = timezone.now() + timedelta(seconds=settings.PAGING_CALL_RETRY_SECONDS + 1)
    for step in range(len(page.plan)):
        assert advance_page(page_id=page.id, step=step, now=later) is False
    assert (len(sms_outbox.calls), len(sms_outbox.outbox)) == sent
    assert not page.attempts.filter(step__gt=0).exists()


def test_starting_the_review_stops_the_review_reminders_page(
    make_case, people, settings, django_capture_on_commit_callbacks
):
    """Acknowledged, then reminded to take it into review: the reminder's call again stops too."""
    from notifications.models import PageRequest
    from oncall.models import Alert
    from oncall.services import run_alert_step

    case = make_case("crime")
    with django_capture_on_commit_callbacks(execute=True):
        services.acknowledge_case(case=case, actor=people["manager"])
    alert = Alert.objects.get(owner_type=case.ALERT_OWNER_TYPE, owner_id=case.id)
    Alert.objects.filter(pk=alert.pk).update(next_step_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        assert run_alert_step(alert_id=alert.id, token=str(alert.active_token))
    reminder = PageRequest.objects.filter(recipient=people["manager"]).latest("id")
    assert alert.pages.filter(reason="review_reminder").exists()
    assert reminder.closed_at is None and reminder.next_step_at is not None
    services.start_review(case=case, actor=people["manager"])
    reminder.refresh_from_db()
    assert reminder.closed_at is not None and reminder.next_step_at is None
