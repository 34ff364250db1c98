"""A concern with no line manager goes to the manager on call now. The default rota's
resolution is reused between reports while a digest of its rows is unchanged, so every kind of
change must still reach the very next report: edits that send signals and bulk updates that do
not, new overrides, people leaving, another rota made the default, and time passing a handover."""

from datetime import timedelta

import pytest
from django.utils import timezone
from freezegun import freeze_time

from incidents import services
from incidents.models import ReportKind
from incidents.services import submit_report
from oncall import selectors
from oncall.models import LayerMember, Rota, RotaLayer, RotaOverride
from oncall.selectors import on_call_at, shifts_between
from staff.models import User


def owner_of_a_concern(reporter):
    case = submit_report(
        reporter=reporter,
        kind=ReportKind.CONCERN_COLLEAGUE,
        narrative="Left notes on a bus.",
        details={"colleague": "B."},
    )
    return case.owner


@pytest.fixture
def worker(people):
    assert people["worker"].line_manager_id is None
    return people["worker"]


def test_the_manager_on_call_takes_it_again_and_again(people, rota, worker):
    assert owner_of_a_concern(worker) == people["manager"]
    assert owner_of_a_concern(worker) == people["manager"]


def test_reusing_the_rota_costs_one_query(people, rota, worker, django_assert_num_queries):
    now = timezone.now()
    services._first_owner(reporter=worker, now=now)
    with django_assert_num_queries(1):
        assert services._first_owner(reporter=worker, now=now) == people["manager"]


def test_an_override_made_since_wins_at_once(people, rota, worker):
    assert owner_of_a_concern(worker) == people["manager"]
    now = timezone.now()
    RotaOverride.objects.create(
        rota=rota,
        person=people["manager2"],
        starts_at=now - timedelta(minutes=1),
        ends_at=now + timedelta(hours=2),
    )
    assert owner_of_a_concern(worker) == people["manager2"]


def test_an_override_changed_by_a_bulk_update_counts(people, rota, worker):
    now = timezone.now()
    cover = RotaOverride.objects.create(
        rota=rota,
        person=people["manager2"],
        starts_at=now + timedelta(hours=3),
        ends_at=now + timedelta(hours=4),
    )
    assert owner_of_a_concern(worker) == people["manager"]
    # No save(), no signal: the digest still sees the row change.
    RotaOverride.objects.filter(pk=cover.pk).update(starts_at=now - timedelta(minutes=5))
    assert owner_of_a_concern(worker) == people["manager2"]
    RotaOverride.objects.filter(pk=cover.pk).delete()
    assert owner_of_a_concern(worker) == people["manager"]


def test_a_manager_deactivated_without_a_signal_is_passed_over(people, rota, worker):
    assert owner_of_a_concern(worker) == people["manager"]
    User.objects.filter(pk=people["manager"].pk).update(is_active=False)
    assert owner_of_a_concern(worker) == people["manager2"]


def test_a_layer_edited_by_a_bulk_update_counts(people, rota, worker):
    assert owner_of_a_concern(worker) == people["manager"]
    layer = rota.layers.get()
    LayerMember.objects.filter(layer=layer, person=people["manager"]).update(position=5)
    assert owner_of_a_concern(worker) == people["manager2"]


def test_a_layer_added_above_wins(people, rota, worker):
    assert owner_of_a_concern(worker) == people["manager"]
    layer = rota.layers.get()
    top = RotaLayer.objects.create(
        rota=rota,
        name="Cover",
        priority=layer.priority + 1,
        start_date=layer.start_date,
        handoff_time=layer.handoff_time,
        handoff_every=7,
    )
    LayerMember.objects.create(layer=top, person=people["hr"], position=0)
    assert owner_of_a_concern(worker) == people["hr"]


def test_another_rota_made_the_default_takes_over(people, rota, worker):
    assert owner_of_a_concern(worker) == people["manager"]
    layer = rota.layers.get()
    Rota.objects.filter(pk=rota.pk).update(is_default=False)
    other = Rota.objects.create(name="Other", is_default=True)
    other_layer = RotaLayer.objects.create(
        rota=other, name="Weekly", start_date=layer.start_date, handoff_every=7
    )
    LayerMember.objects.create(layer=other_layer, person=people["dpo"], position=0)
    assert owner_of_a_concern(worker) == people["dpo"]
    Rota.objects.filter(pk=other.pk).delete()
    assert owner_of_a_concern(worker) is None


def test_time_passing_a_handover_moves_the_case_to_the_next_manager(people, rota, worker):
    """Within one reused span and across spans, the owner is always the rota's own answer."""
    start = timezone.now()
    layer = rota.layers.get()
    # The fixture's weekly handover (Monday 09:00 local), within a week from now.
    first, second = shifts_between(rota, start, start + timedelta(days=8))[:2]
    assert (first.person, second.person) == (people["manager"], people["manager2"])
    handover = first.end
    assert layer.handoff_every == 7
    for moment in (
        handover - timedelta(minutes=61),
        handover - timedelta(minutes=31),  # the span resolved above still covers this
        handover - timedelta(seconds=1),
        handover + timedelta(minutes=29),
        handover + timedelta(days=3),
    ):
        with freeze_time(moment):
            expected = on_call_at(rota, timezone.now())[0]
            assert owner_of_a_concern(worker) == expected
    with freeze_time(handover + timedelta(minutes=29)):
        assert owner_of_a_concern(worker) == people["manager2"]
    # Back in time (another thread's clock a moment behind): not read from a later span.
    with freeze_time(handover - timedelta(minutes=1)):
        assert owner_of_a_concern(worker) == people["manager"]


def test_a_line_manager_comes_first(people, rota, worker):
    worker.line_manager = people["manager2"]
    worker.save(update_fields=["line_manager"])
    assert owner_of_a_concern(worker) == people["manager2"]


def test_the_owner_is_a_copy_not_shared_between_reports(people, rota, worker):
    first = owner_of_a_concern(worker)
    second = owner_of_a_concern(worker)
    assert first == second and first is not second


def test_a_resolution_raced_by_an_edit_is_not_kept(people, rota, worker, monkeypatch):
    """The rota changes between the digest and the resolution: that resolution answers its
    own report but is not filed under the digest it was not resolved from."""
    selectors._kept_spans.clear()
    real_shifts_between = selectors.shifts_between

    def shifts_between_then_edit(*args, **kwargs):
        shifts = real_shifts_between(*args, **kwargs)
        User.objects.filter(pk=people["manager"].pk).update(is_active=False)
        return shifts

    monkeypatch.setattr(selectors, "shifts_between", shifts_between_then_edit)
    assert owner_of_a_concern(worker) == people["manager"]
    assert None not in selectors._kept_spans
    monkeypatch.setattr(selectors, "shifts_between", real_shifts_between)
    User.objects.filter(pk=people["manager"].pk).update(is_active=True)
    assert owner_of_a_concern(worker) == people["manager"]
    assert None in selectors._kept_spans


def test_an_urgent_report_copies_the_kept_resolution_onto_its_alert(
    people, rota, worker, django_assert_num_queries
):
    """The alert's snapshot of who is on call uses the same kept resolution: one digest query
    for the rota once it has been resolved, the same people as on_call_at."""
    from oncall.models import Alert
    from oncall.policies import snapshot_for

    now = timezone.now()
    snapshot_for(category="", urgency="urgent", rota=rota, now=now)
    with django_assert_num_queries(2):  # the policies (none: the built-in steps), the digest
        again = snapshot_for(category="", urgency="urgent", rota=rota, now=now)
    assert [p["id"] for p in again["on_call"][""]["people"]] == [
        p.id for p in on_call_at(rota, now)
    ]
    case = submit_report(
        reporter=worker, kind=ReportKind.URGENT_DISCLOSURE, narrative="x", grounds=["crime"]
    )
    snapshot = Alert.objects.get(owner_id=case.id).snapshot
    assert [p["id"] for p in snapshot["on_call"][""]["people"]] == [people["manager"].id]
