"""A manager who reports is never the one to answer for their own report: not paged for it,
not its first owner, not handed it, not the manager a breached clock escalates to. Paged, they
would hold a basis that shows them everyone else's notes (DESIGN: a reporter sees the status
and their own entries), and their acknowledgement would stop the escalation with nobody else
told."""

from datetime import timedelta

import pytest
from django.utils import timezone
from freezegun import freeze_time

from config.errors import ConcernlineError
from incidents import services
from incidents.access import bases_for
from incidents.models import CaseClock, ClockKind, ReportKind
from oncall.models import Alert
from oncall.services import AlertError, acknowledge_alert
from staff.models import Role
from tests.conftest import make_person


def report(reporter, kind=ReportKind.URGENT_DISCLOSURE, **fields):
    if kind == ReportKind.URGENT_DISCLOSURE:
        fields.setdefault("grounds", ["crime"])
    else:
        fields.setdefault("details", {"colleague": "B. Staff"})
    return services.submit_report(
        reporter=reporter, kind=kind, narrative="Told me about harm at home.", **fields
    )


@pytest.fixture
def manager_on_call(people, rota):
    """`manager` is on call this week and has no line manager of their own."""
    assert people["manager"].line_manager_id is None
    return people["manager"]


def test_the_manager_on_call_who_reports_is_not_paged_the_fallback_is(
    people, manager_on_call, outbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        case = report(manager_on_call)

    alert = Alert.objects.get(owner_type="incidents.case", owner_id=case.pk)
    paged = set(alert.pages.values_list("recipient_id", flat=True))
    assert manager_on_call.pk not in paged
    assert people["manager2"].pk in paged  # the built-in fallback: every other manager
    assert str(manager_on_call.phone) not in [m["to"] for m in outbox]
    with pytest.raises(AlertError):
        acknowledge_alert(alert=alert, actor=manager_on_call, via="web")
    assert bases_for(manager_on_call, case) == ["reporter"]


def test_anyone_else_on_call_is_still_paged(
    people, rota, outbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        case = report(people["worker"])

    alert = Alert.objects.get(owner_type="incidents.case", owner_id=case.pk)
    assert list(alert.pages.values_list("recipient_id", flat=True)) == [people["manager"].pk]


def test_the_manager_on_call_does_not_own_their_own_concern_another_manager_does(
    people, manager_on_call
):
    case = report(manager_on_call, kind=ReportKind.CONCERN_COLLEAGUE)

    assert case.owner == people["manager2"]  # never nobody
    assert bases_for(manager_on_call, case) == ["reporter"]


def test_their_report_cannot_be_handed_to_them(
    people, rota, outbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        case = report(people["manager2"])

    with pytest.raises(AlertError) as refused:
        services.reassign_case(case=case, actor=people["manager"], to=people["manager2"])
    assert "made this report" in str(refused.value)
    case.refresh_from_db()
    assert case.owner_id != people["manager2"].pk


def test_a_breached_clock_does_not_escalate_to_the_reporter(
    people, rota, outbox, django_capture_on_commit_callbacks
):
    """The owner's line manager is the very manager who reported (and on call): the
    escalation passes over them, to another manager."""
    manager3 = make_person("manager3@example.org", Role.MANAGER, "+447700900103")
    people["manager2"].line_manager = people["manager"]
    people["manager2"].save()
    case = report(people["manager"], kind=ReportKind.CONCERN_COLLEAGUE)
    case.owner = people["manager2"]
    case.save()
    ack = CaseClock.objects.get(case=case, kind=ClockKind.ACKNOWLEDGEMENT)

    with (
        freeze_time(ack.due_at + timedelta(minutes=1)),
        django_capture_on_commit_callbacks(execute=True),
    ):
        services.sweep_clocks(now=timezone.now())

    ack.refresh_from_db()
    assert ack.breached_at is not None
    assert ack.escalated_to == manager3
    assert bases_for(people["manager"], case) == ["reporter"]


def test_the_reporter_is_not_offered_nor_made_the_reviewer(people, rota, client):
    case = report(people["manager2"], kind=ReportKind.CONCERN_COLLEAGUE)
    assert case.owner == people["manager"]

    with pytest.raises(ConcernlineError) as refused:
        services.assign_reviewer(case=case, actor=people["manager"], reviewer=people["manager2"])
    assert "made this report" in str(refused.value)
    case.refresh_from_db()
    assert case.reviewer_id is None
    client.force_login(people["manager"])
    form = client.get(f"/cases/{case.reference}/").context["reviewer_form"]
    assert people["manager2"] not in form.fields["reviewer"].queryset
    assert people["manager"] in form.fields["reviewer"].queryset
