import re
import uuid

import pytest

from incidents.models import Case, CaseStatus, ReportKind, TimelineKind
from incidents.services import ReportInvalid, submit_report
from notifications.models import NotificationAttempt
from oncall.models import Alert, AlertState

NARRATIVE = "Mrs Example at 4 Secret Lane told me her son hits her."
SERVICE_USER = "SU-40411"


def urgent(reporter, **overrides):
    fields = {
        "reporter": reporter,
        "kind": ReportKind.URGENT_DISCLOSURE,
        "narrative": NARRATIVE,
        "grounds": ["abuse_or_harm", "imminent_danger"],
        "service_user_ref": SERVICE_USER,
        "who_was_told": "Duty social worker",
        "representative_consulted": "no",
        "emergency_services_called": "yes",
    }
    fields.update(overrides)
    return submit_report(**fields)


class TestSubmitReport:
    def test_urgent_report_pages_whoever_is_on_call(
        self, people, rota, outbox, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True):
            case = urgent(people["worker"])

        case.refresh_from_db()
        assert case.reference.startswith("C-") and case.urgent and case.safeguarding
        assert case.status == CaseStatus.REPORTED
        assert [m["to"] for m in outbox] == ["+447700900101"]
        alert = Alert.objects.get(owner_type=Case.ALERT_OWNER_TYPE, owner_id=case.id)
        assert alert.state == AlertState.TRIGGERED and alert.step_tries == 1
        assert alert.category == "urgent_disclosure"
        assert alert.hints == {
            "line_manager_id": people["worker"].line_manager_id,
            "not_to_page": [people["worker"].id],
        }
        kinds = list(case.timeline.values_list("kind", flat=True))
        assert kinds == [
            TimelineKind.REPORTED,
            TimelineKind.ALERT_RAISED,
            TimelineKind.STEP_STARTED,
            TimelineKind.PAGE_SENT,
        ]
        step_event = case.timeline.get(kind=TimelineKind.STEP_STARTED)
        assert step_event.data["recipient_ids"] == [people["manager"].id]
        assert step_event.data["step"] == 1
        page_event = case.timeline.get(kind=TimelineKind.PAGE_SENT)
        assert page_event.data["recipient_id"] == people["manager"].id
        assert page_event.data["provider_sid"] == outbox[0]["sid"]

    def test_page_carries_reference_urgency_kind_and_nothing_confidential(
        self, people, rota, outbox, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True):
            case = urgent(people["worker"])
        body = outbox[0]["body"]
        assert case.reference in body and "URGENT" in body and "urgent disclosure" in body
        assert re.search(r"Reply (\d+)A to acknowledge, \1E to escalate", body)
        for secret in ("Example", "Secret Lane", SERVICE_USER, "Duty social worker", "son"):
            assert secret not in body
        assert len(body) <= 160 and body.isascii()

    def test_nothing_is_sent_before_the_report_commits(self, people, rota, outbox):
        # Inside the test transaction on_commit never fires: the report and its alert exist,
        # step 0 is due now, and nothing has been paged yet.
        case = urgent(people["worker"])
        assert Case.objects.filter(pk=case.pk).exists()
        alert = Alert.objects.get(owner_id=case.id)
        assert alert.current_step == 0 and alert.next_step_at is not None
        assert outbox == [] and NotificationAttempt.objects.count() == 0

    def test_references_count_up_within_the_year(self, people, rota):
        first = urgent(people["worker"])
        second = urgent(people["worker"])
        year = first.created_at.year
        number = int(first.reference.rsplit("-", 1)[1])
        assert first.reference == f"C-{year}-{number:04d}"
        assert second.reference == f"C-{year}-{number + 1:04d}"

    def test_the_case_given_back_reads_its_stored_report(self, people, rota):
        """The report goes in with the case in one statement without being told its id: the
        case given back must not hold that unsaved copy (saving it would insert it again)."""
        case = urgent(people["worker"])
        assert case.report.pk is not None
        assert case.report.narrative == NARRATIVE

    def test_same_client_token_returns_the_same_case(self, people, rota):
        token = uuid.uuid4()
        first = urgent(people["worker"], client_token=token)
        again = urgent(people["worker"], client_token=token)
        assert again.pk == first.pk
        assert Case.objects.count() == 1 and Alert.objects.count() == 1

    def test_non_urgent_concern_does_not_page(
        self, people, rota, outbox, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True):
            case = submit_report(
                reporter=people["worker"],
                kind=ReportKind.CONCERN_COLLEAGUE,
                narrative="Left notes on a bus seat.",
                details={"colleague": "A. Colleague"},
                urgent=True,
            )
        assert not case.urgent
        assert outbox == [] and Alert.objects.count() == 0

    def test_worrying_information_pages_when_the_reporter_says_it_cannot_wait(
        self, people, rota, outbox, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True):
            submit_report(
                reporter=people["worker"],
                kind=ReportKind.WORRYING_INFORMATION,
                narrative="Told in confidence.",
                urgent=True,
            )
        assert len(outbox) == 1

    @pytest.mark.parametrize(
        ("fields", "error_field"),
        [
            ({"grounds": []}, "grounds"),
            ({"grounds": ["nonsense"]}, "grounds"),
            ({"narrative": "   "}, "narrative"),
            ({"kind": "gossip"}, "kind"),
        ],
    )
    def test_incomplete_reports_are_refused_with_reasons(self, people, rota, fields, error_field):
        with pytest.raises(ReportInvalid) as caught:
            urgent(people["worker"], **fields)
        assert error_field in caught.value.extra
        assert Case.objects.count() == 0

    def test_the_database_refuses_a_second_case_for_one_submission(self, people, rota):
        from django.db import IntegrityError, transaction

        from incidents.services import _open_case

        token = uuid.uuid4()
        fields = {
            "reporter": people["worker"],
            "kind": ReportKind.URGENT_DISCLOSURE,
            "urgent": True,
            "narrative": "x",
            "grounds": ["crime"],
            "service_user_ref": "",
            "who_was_told": "",
            "representative_consulted": "",
            "emergency_services_called": "",
            "client_token": token,
        }
        _open_case(**fields)
        with pytest.raises(IntegrityError), transaction.atomic():
            _open_case(**fields)


@pytest.mark.django_db(transaction=True)
def test_reports_at_the_same_moment_get_different_references(people, rota):
    """Ten reports at once, each in its own connection: ten different references, none lost."""
    import threading

    from django.db import connection

    references, errors = [], []

    def report():
        try:
            case = submit_report(
                reporter=people["worker"],
                kind=ReportKind.CONCERN_COLLEAGUE,
                narrative="At once.",
                details={"colleague": "B. Staff"},
            )
            references.append(case.reference)
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=report) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(set(references)) == 10 == Case.objects.count()
