"""Property: for any layers and overrides, the resolved shifts never overlap, cover exactly what
the rules say, and `on_call_at` agrees with `shifts_between` at every instant sampled.

The rules are restated here one instant at a time, independently of the engine's sweep: the
override made last that covers the instant, else the highest layer whose window holds the
instant and whose turn (the last handover at or before it) names someone.
"""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oncall import rotas
from oncall.models import HandoffUnit, LayerMember, Rota, RotaLayer, RotaOverride, Window
from oncall.selectors import on_call_at, shifts_between
from staff.models import Role
from tests.conftest import make_person

LONDON = ZoneInfo("Europe/London")
# Spans start near both 2026 clock changes and an ordinary week.
ANCHORS = [
    datetime(2026, 3, 27, tzinfo=UTC),
    datetime(2026, 10, 23, tzinfo=UTC),
    datetime(2027, 3, 26, tzinfo=UTC),
    datetime(2026, 6, 1, tzinfo=UTC),
]

layer_strategy = st.fixed_dictionaries(
    {
        "start_offset": st.integers(min_value=-10, max_value=3),  # days from the span's anchor
        "hour": st.integers(min_value=0, max_value=23),
        "minute": st.sampled_from([0, 15, 30, 45]),
        "every": st.integers(min_value=1, max_value=9),
        "unit": st.sampled_from([HandoffUnit.DAYS, HandoffUnit.HOURS]),
        "window": st.sampled_from(list(Window.values)),
        "people": st.lists(st.integers(min_value=0, max_value=2), max_size=3),
    }
)
override_strategy = st.tuples(
    st.integers(min_value=0, max_value=2),
    st.integers(min_value=0, max_value=3 * 24 * 60),  # start, minutes from the anchor
    st.integers(min_value=1, max_value=36 * 60),  # length in minutes
)


def in_window(window: str, instant: datetime) -> bool:
    local = instant.astimezone(LONDON)
    office = local.weekday() < 5 and time(9, 0) <= local.time() < time(17, 0)
    return {Window.ALWAYS: True, Window.OFFICE_HOURS: office, Window.OUT_OF_HOURS: not office}[
        window
    ]


def layer_person_at(layer: RotaLayer, people: list, instant: datetime):
    if not people or not in_window(layer.window, instant):
        return None
    plan = rotas.LayerPlan(
        id=layer.id,
        name=layer.name,
        priority=layer.priority,
        start_date=layer.start_date,
        handoff_time=layer.handoff_time,
        every=layer.handoff_every,
        unit=layer.handoff_unit,
        window=layer.window,
        people=people,
    )
    # The last handover at or before the instant, found by walking the handovers one by one.
    # Clock changes move a handover by an hour at most, and turns are an hour or longer, so
    # the walk can start two turns before the count of whole turns since the first.
    first = rotas.handoff(plan, 0, LONDON)
    step = (
        timedelta(hours=plan.every)
        if plan.unit == HandoffUnit.HOURS
        else timedelta(days=plan.every)
    )
    k = None
    n = max(0, (instant - first) // step - 2)
    while rotas.handoff(plan, n, LONDON) <= instant:
        k = n
        n += 1
    return None if k is None else people[k % len(people)]


def expected_at(layers, members, overrides, instant):
    for o in sorted(overrides, key=lambda o: o.id, reverse=True):
        if o.starts_at <= instant < o.ends_at:
            return o.person
    for layer in sorted(layers, key=lambda layer: (-layer.priority, layer.id)):
        person = layer_person_at(layer, members[layer.id], instant)
        if person is not None:
            return person
    return None


@pytest.fixture
def three(db):
    return [make_person(f"p{i}@example.org", Role.MANAGER, f"+44770090050{i}") for i in range(3)]


@pytest.mark.django_db
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    anchor=st.sampled_from(ANCHORS),
    layers=st.lists(layer_strategy, max_size=3),
    overrides=st.lists(override_strategy, max_size=3),
    span_hours=st.integers(min_value=1, max_value=5 * 24),
    samples=st.lists(st.integers(min_value=0, max_value=10**9), min_size=5, max_size=15),
)
def test_resolved_shifts_follow_the_rules(three, anchor, layers, overrides, span_hours, samples):
    with transaction.atomic():
        rota = Rota.objects.create(name="Property")
        made, members = [], {}
        for priority, spec in enumerate(layers):
            layer = RotaLayer.objects.create(
                rota=rota,
                name=f"L{priority}",
                priority=priority,
                start_date=anchor.date() + timedelta(days=spec["start_offset"]),
                handoff_time=time(spec["hour"], spec["minute"]),
                handoff_every=spec["every"],
                handoff_unit=spec["unit"],
                window=spec["window"],
            )
            for position, who in enumerate(spec["people"]):
                LayerMember.objects.create(layer=layer, person=three[who], position=position)
            made.append(layer)
            members[layer.id] = [three[who] for who in spec["people"]]
        made_overrides = [
            RotaOverride.objects.create(
                rota=rota,
                person=three[who],
                starts_at=anchor + timedelta(minutes=start),
                ends_at=anchor + timedelta(minutes=start + length),
            )
            for who, start, length in overrides
        ]
        start = anchor + timedelta(hours=12)
        end = start + timedelta(hours=span_hours)
        shifts = shifts_between(rota, start, end)

        # Never overlapping, in order, inside the span.
        for shift in shifts:
            assert start <= shift.start < shift.end <= end
        for before, after in zip(shifts, shifts[1:], strict=False):
            assert before.end <= after.start
            if before.end == after.start:
                assert before.person != after.person  # joined when the same person goes on

        def from_shifts(instant):
            return [s.person for s in shifts if s.start <= instant < s.end]

        span = (end - start).total_seconds()
        instants = {start + timedelta(seconds=span * n / 10**9) for n in samples}
        for shift in shifts:  # every edge, and the instant before each
            instants.update({shift.start, shift.end - timedelta(microseconds=1)})
        instants = {i for i in instants if start <= i < end}
        for instant in sorted(instants):
            expected = expected_at(made, members, made_overrides, instant)
            assert from_shifts(instant) == ([expected] if expected else []), instant
            assert on_call_at(rota, instant) == from_shifts(instant), instant
        transaction.set_rollback(True)
