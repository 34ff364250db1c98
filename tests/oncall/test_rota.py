"""Who is on call: layers rotating at local (Europe/London) times, windows, overrides, gaps."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from oncall.models import HandoffUnit, LayerMember, Rota, RotaLayer, RotaOverride, Window
from oncall.selectors import (
    default_rota,
    gaps_between,
    on_call_at,
    on_call_now,
    shifts_between,
    shifts_for_rotas,
    shifts_of_person,
)
from staff.models import Role
from tests.conftest import make_person

LONDON = ZoneInfo("Europe/London")


def london(*args, fold=0) -> datetime:
    return datetime(*args, tzinfo=LONDON, fold=fold)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def make_layer(
    rota,
    people,
    *,
    start,
    name="Layer",
    at=time(9, 0),
    every=7,
    unit=HandoffUnit.DAYS,
    window=Window.ALWAYS,
    priority=0,
):
    layer = RotaLayer.objects.create(
        rota=rota,
        name=name,
        priority=priority,
        start_date=start,
        handoff_time=at,
        handoff_every=every,
        handoff_unit=unit,
        window=window,
    )
    for position, person in enumerate(people):
        LayerMember.objects.create(layer=layer, person=person, position=position)
    return layer


def make_rota(people, *, start, name="Test rota", **layer):
    rota = Rota.objects.create(name=name)
    make_layer(rota, people, start=start, **layer)
    return rota


def override(rota, person, starts_at, ends_at):
    return RotaOverride.objects.create(
        rota=rota, person=person, starts_at=starts_at, ends_at=ends_at
    )


def handoffs(rota, start, end):
    """The instants someone new comes on call within (start, end)."""
    return [s.start for s in shifts_between(rota, start, end) if s.start > start]


def assert_contiguous(shifts):
    for before, after in zip(shifts, shifts[1:], strict=False):
        assert before.end == after.start, (before, after)
        assert before.start < before.end


@pytest.fixture
def three(db):
    return [make_person(f"m{i}@example.org", Role.MANAGER, f"+44770090040{i}") for i in range(3)]


class TestRotation:
    # 5 January 2026 is a Monday, in winter (GMT).
    START = date(2026, 1, 5)

    def test_weekly_turns_follow_the_order(self, three):
        rota = make_rota(three, start=self.START)
        assert on_call_at(rota, london(2026, 1, 7, 12, 0)) == [three[0]]
        assert on_call_at(rota, london(2026, 1, 14, 12, 0)) == [three[1]]
        assert on_call_at(rota, london(2026, 1, 21, 12, 0)) == [three[2]]

    def test_handover_happens_exactly_at_the_handover_time(self, three):
        rota = make_rota(three, start=self.START)
        assert on_call_at(rota, london(2026, 1, 12, 9, 0)) == [three[1]]
        assert on_call_at(rota, london(2026, 1, 12, 8, 59, 59, 999999)) == [three[0]]

    def test_nobody_is_on_call_before_the_first_handover(self, three):
        rota = make_rota(three, start=self.START)
        assert on_call_at(rota, london(2026, 1, 5, 8, 59)) == []
        assert on_call_at(rota, london(2025, 12, 1, 12, 0)) == []
        assert on_call_at(rota, london(2026, 1, 5, 9, 0)) == [three[0]]

    def test_turns_wrap_around(self, three):
        rota = make_rota(three, start=self.START)
        assert on_call_at(rota, london(2026, 1, 26, 9, 0)) == [three[0]]
        assert on_call_at(rota, london(2026, 2, 23, 9, 0)) == [three[1]]

    def test_order_is_position_not_creation_order(self, three):
        rota = Rota.objects.create(name="Reordered")
        layer = make_layer(rota, [], start=self.START)
        LayerMember.objects.create(layer=layer, person=three[0], position=5)
        LayerMember.objects.create(layer=layer, person=three[1], position=1)
        assert on_call_at(rota, london(2026, 1, 6, 12, 0)) == [three[1]]
        assert on_call_at(rota, london(2026, 1, 13, 12, 0)) == [three[0]]

    def test_an_inactive_person_is_skipped(self, three):
        three[1].is_active = False
        three[1].save(update_fields=["is_active"])
        rota = make_rota(three, start=self.START)
        assert on_call_at(rota, london(2026, 1, 14, 12, 0)) == [three[2]]
        for week in range(6):
            assert three[1] not in on_call_at(rota, london(2026, 1, 6, 12) + timedelta(weeks=week))

    def test_an_empty_layer_or_rota_has_nobody(self, db):
        assert on_call_at(make_rota([], start=self.START), london(2026, 1, 14, 12, 0)) == []
        assert on_call_at(Rota.objects.create(name="Bare"), london(2026, 1, 14, 12, 0)) == []

    def test_daily_turns(self, three):
        rota = make_rota(three, start=self.START, every=1, at=time(8, 0))
        assert on_call_at(rota, london(2026, 1, 5, 8, 0)) == [three[0]]
        assert on_call_at(rota, london(2026, 1, 6, 7, 59)) == [three[0]]
        assert on_call_at(rota, london(2026, 1, 6, 8, 0)) == [three[1]]
        assert on_call_at(rota, london(2026, 1, 8, 8, 0)) == [three[0]]

    def test_every_three_days(self, three):
        rota = make_rota(three[:2], start=self.START, every=3)
        assert on_call_at(rota, london(2026, 1, 8, 8, 59)) == [three[0]]
        assert on_call_at(rota, london(2026, 1, 8, 9, 0)) == [three[1]]
        assert on_call_at(rota, london(2026, 1, 11, 9, 0)) == [three[0]]

    def test_every_twelve_hours(self, three):
        rota = make_rota(three[:2], start=self.START, every=12, unit=HandoffUnit.HOURS, at=time(8))
        assert on_call_at(rota, london(2026, 1, 5, 19, 59)) == [three[0]]
        assert on_call_at(rota, london(2026, 1, 5, 20, 0)) == [three[1]]
        assert on_call_at(rota, london(2026, 1, 6, 8, 0)) == [three[0]]

    def test_another_weekday_and_time(self, three):
        # Wednesday 7 January 2026, handing over at 17:30.
        rota = make_rota(three, start=date(2026, 1, 7), at=time(17, 30))
        assert on_call_at(rota, london(2026, 1, 7, 17, 29)) == []
        assert on_call_at(rota, london(2026, 1, 12, 9, 0)) == [three[0]]
        assert on_call_at(rota, london(2026, 1, 14, 17, 30)) == [three[1]]

    def test_accepts_an_instant_in_any_time_zone(self, three):
        rota = make_rota(three, start=self.START)
        # 23:30 on Sunday 11 January in New York is 04:30 on Monday in London: before handover.
        new_york = datetime(2026, 1, 11, 23, 30, tzinfo=ZoneInfo("America/New_York"))
        assert on_call_at(rota, new_york) == [three[0]]


class TestWindows:
    START = date(2026, 1, 5)  # a Monday

    def test_office_hours_are_weekdays_nine_to_five(self, three):
        rota = make_rota(three[:1], start=self.START, window=Window.OFFICE_HOURS)
        assert on_call_at(rota, london(2026, 1, 6, 9, 0)) == [three[0]]
        assert on_call_at(rota, london(2026, 1, 6, 16, 59)) == [three[0]]
        assert on_call_at(rota, london(2026, 1, 6, 17, 0)) == []
        assert on_call_at(rota, london(2026, 1, 6, 8, 59)) == []
        assert on_call_at(rota, london(2026, 1, 10, 12, 0)) == []  # Saturday

    def test_out_of_hours_is_the_rest(self, three):
        rota = make_rota(three[:1], start=self.START, window=Window.OUT_OF_HOURS)
        assert on_call_at(rota, london(2026, 1, 6, 12, 0)) == []
        assert on_call_at(rota, london(2026, 1, 6, 17, 0)) == [three[0]]
        assert on_call_at(rota, london(2026, 1, 7, 3, 0)) == [three[0]]
        assert on_call_at(rota, london(2026, 1, 10, 12, 0)) == [three[0]]  # Saturday

    def test_office_and_out_of_hours_layers_cover_every_moment(self, three):
        rota = Rota.objects.create(name="Full")
        make_layer(rota, three[:1], start=self.START, window=Window.OFFICE_HOURS, priority=1)
        make_layer(rota, three[1:], start=self.START, every=1, window=Window.OUT_OF_HOURS)
        start, end = london(2026, 1, 5, 9, 0), london(2026, 1, 19, 9, 0)
        assert gaps_between(rota, start, end) == []
        shifts = shifts_between(rota, start, end)
        assert_contiguous(shifts)
        assert on_call_at(rota, london(2026, 1, 6, 12, 0)) == [three[0]]
        # Out of hours: a day each from the handover at 09:00, so Tuesday evening is the second.
        assert on_call_at(rota, london(2026, 1, 6, 20, 0)) == [three[2]]

    def test_office_hours_follow_local_time_in_summer(self, three):
        rota = make_rota(three[:1], start=self.START, window=Window.OFFICE_HOURS)
        # Monday 13 April 2026 is in BST: 09:00 London is 08:00 UTC.
        assert on_call_at(rota, utc(2026, 4, 13, 7, 59)) == []
        assert on_call_at(rota, utc(2026, 4, 13, 8, 0)) == [three[0]]
        assert on_call_at(rota, utc(2026, 4, 13, 15, 59)) == [three[0]]
        assert on_call_at(rota, utc(2026, 4, 13, 16, 0)) == []


class TestLayersAndOverrides:
    START = date(2026, 1, 5)

    def test_a_higher_layer_wins_where_it_has_someone(self, three):
        rota = Rota.objects.create(name="Two layers")
        make_layer(rota, three[:1], start=self.START, priority=0, name="Base")
        make_layer(rota, three[1:2], start=self.START, priority=5, window=Window.OFFICE_HOURS)
        assert on_call_at(rota, london(2026, 1, 6, 12, 0)) == [three[1]]
        assert on_call_at(rota, london(2026, 1, 6, 18, 0)) == [three[0]]
        shifts = shifts_between(rota, london(2026, 1, 6, 0, 0), london(2026, 1, 7, 0, 0))
        assert [(s.person, s.source) for s in shifts] == [
            (three[0], "Base"),
            (three[1], "Layer"),
            (three[0], "Base"),
        ]

    def test_an_override_wins_over_every_layer(self, three):
        rota = make_rota(three[:2], start=self.START)
        override(rota, three[2], london(2026, 1, 6, 12, 0), london(2026, 1, 6, 14, 0))
        assert on_call_at(rota, london(2026, 1, 6, 11, 59)) == [three[0]]
        assert on_call_at(rota, london(2026, 1, 6, 12, 0)) == [three[2]]
        assert on_call_at(rota, london(2026, 1, 6, 14, 0)) == [three[0]]
        shifts = shifts_between(rota, london(2026, 1, 6, 0, 0), london(2026, 1, 7, 0, 0))
        assert [s.person for s in shifts] == [three[0], three[2], three[0]]
        assert shifts[1].is_override and not shifts[0].is_override

    def test_an_override_fills_a_gap(self, three):
        rota = make_rota(three[:1], start=self.START, window=Window.OFFICE_HOURS)
        override(rota, three[1], london(2026, 1, 10, 0, 0), london(2026, 1, 11, 0, 0))
        assert on_call_at(rota, london(2026, 1, 10, 12, 0)) == [three[1]]

    def test_of_two_overrides_the_later_made_wins(self, three):
        rota = make_rota(three[:1], start=self.START)
        override(rota, three[1], london(2026, 1, 6, 10, 0), london(2026, 1, 6, 16, 0))
        override(rota, three[2], london(2026, 1, 6, 12, 0), london(2026, 1, 6, 13, 0))
        assert on_call_at(rota, london(2026, 1, 6, 11, 0)) == [three[1]]
        assert on_call_at(rota, london(2026, 1, 6, 12, 30)) == [three[2]]
        assert on_call_at(rota, london(2026, 1, 6, 13, 0)) == [three[1]]

    def test_an_override_for_an_inactive_person_does_not_count(self, three):
        rota = make_rota(three[:1], start=self.START)
        override(rota, three[1], london(2026, 1, 6, 10, 0), london(2026, 1, 6, 16, 0))
        three[1].is_active = False
        three[1].save(update_fields=["is_active"])
        assert on_call_at(rota, london(2026, 1, 6, 12, 0)) == [three[0]]

    def test_the_same_person_on_across_layers_is_one_shift(self, three):
        rota = Rota.objects.create(name="Same")
        make_layer(rota, three[:1], start=self.START, window=Window.OFFICE_HOURS, priority=1)
        make_layer(rota, three[:1], start=self.START, window=Window.OUT_OF_HOURS)
        shifts = shifts_between(rota, london(2026, 1, 5, 9, 0), london(2026, 1, 12, 9, 0))
        assert len(shifts) == 1 and shifts[0].person == three[0]

    def test_shifts_are_cut_to_the_span_asked(self, three):
        rota = make_rota(three, start=self.START)
        start, end = london(2026, 1, 8, 0, 0), london(2026, 1, 20, 0, 0)
        shifts = shifts_between(rota, start, end)
        assert shifts[0].start == start and shifts[-1].end == end
        assert [s.person for s in shifts] == three[:2] + [three[2]]
        assert shifts[1].start == london(2026, 1, 12, 9, 0)
        assert_contiguous(shifts)


class TestGaps:
    def test_gaps_are_the_windows_nobody_covers(self, three):
        rota = make_rota(three[:1], start=date(2026, 1, 5), window=Window.OFFICE_HOURS)
        gaps = gaps_between(rota, london(2026, 1, 5, 0, 0), london(2026, 1, 7, 0, 0))
        assert gaps == [
            (london(2026, 1, 5, 0, 0), london(2026, 1, 5, 9, 0)),
            (london(2026, 1, 5, 17, 0), london(2026, 1, 6, 9, 0)),
            (london(2026, 1, 6, 17, 0), london(2026, 1, 7, 0, 0)),
        ]

    def test_an_override_closes_a_gap(self, three):
        rota = make_rota(three[:1], start=date(2026, 1, 5), window=Window.OFFICE_HOURS)
        override(rota, three[1], london(2026, 1, 5, 17, 0), london(2026, 1, 6, 9, 0))
        gaps = gaps_between(rota, london(2026, 1, 5, 9, 0), london(2026, 1, 6, 17, 0))
        assert gaps == []

    def test_before_the_first_handover_is_a_gap(self, three):
        rota = make_rota(three, start=date(2026, 1, 5))
        assert gaps_between(rota, london(2026, 1, 4, 0, 0), london(2026, 1, 6, 0, 0)) == [
            (london(2026, 1, 4, 0, 0), london(2026, 1, 5, 9, 0))
        ]


class TestClockChanges:
    """British Summer Time starts at 01:00 GMT on 29 March 2026 and 28 March 2027 (01:00 to
    01:59 do not happen) and ends at 02:00 BST on 25 October 2026 and 31 October 2027 (01:00 to
    01:59 happen twice)."""

    SPRING = [date(2026, 3, 29), date(2027, 3, 28)]
    AUTUMN = [date(2026, 10, 25), date(2027, 10, 31)]

    @pytest.mark.parametrize("day", SPRING)
    def test_a_0200_handover_on_the_spring_night_happens_once(self, three, day):
        rota = make_rota(three, start=day - timedelta(days=3), every=1, at=time(2, 0))
        start = datetime.combine(day - timedelta(days=1), time(12), tzinfo=UTC)
        found = handoffs(rota, start, start + timedelta(days=1))
        # 02:00 BST is 01:00 UTC: one handover, and the turn before it is 23 hours long.
        assert found == [datetime.combine(day, time(1, 0), tzinfo=UTC)]
        shifts = shifts_between(rota, start - timedelta(days=1), start + timedelta(days=2))
        assert_contiguous(shifts)
        lengths = [s.end - s.start for s in shifts[1:-1]]
        assert lengths == [timedelta(hours=23), timedelta(hours=24)]

    @pytest.mark.parametrize("day", SPRING)
    def test_a_handover_in_the_missing_hour_happens_once(self, three, day):
        rota = make_rota(three, start=day - timedelta(days=3), every=1, at=time(1, 30))
        start = datetime.combine(day - timedelta(days=1), time(12), tzinfo=UTC)
        # 01:30 never shows on a London clock that night; the handover is when the clock
        # jumps past it: 01:30 UTC, 02:30 BST.
        assert handoffs(rota, start, start + timedelta(days=1)) == [
            datetime.combine(day, time(1, 30), tzinfo=UTC)
        ]
        before = datetime.combine(day, time(1, 29), tzinfo=UTC)
        after = datetime.combine(day, time(1, 30), tzinfo=UTC)
        assert on_call_at(rota, before) != on_call_at(rota, after)

    @pytest.mark.parametrize("day", AUTUMN)
    def test_a_handover_in_the_repeated_hour_happens_once(self, three, day):
        rota = make_rota(three, start=day - timedelta(days=3), every=1, at=time(1, 30))
        start = datetime.combine(day - timedelta(days=1), time(12), tzinfo=UTC)
        # The first 01:30 (BST) is 00:30 UTC; the second 01:30 (GMT) is no handover.
        assert handoffs(rota, start, start + timedelta(days=1)) == [
            datetime.combine(day, time(0, 30), tzinfo=UTC)
        ]
        incoming = on_call_at(rota, london(day.year, day.month, day.day, 1, 30, fold=0))
        assert on_call_at(rota, london(day.year, day.month, day.day, 1, 30, fold=1)) == incoming
        shifts = shifts_between(rota, start - timedelta(days=1), start + timedelta(days=2))
        assert_contiguous(shifts)
        # The turn that starts that night runs through the repeated hour: 25 hours.
        assert [s.end - s.start for s in shifts[1:-1]] == [
            timedelta(hours=24),
            timedelta(hours=25),
        ]

    @pytest.mark.parametrize("day", AUTUMN)
    def test_the_repeated_hour_is_covered_once_by_an_hourly_rota(self, three, day):
        rota = make_rota(three, start=day - timedelta(days=1), every=1, unit=HandoffUnit.HOURS)
        start = datetime.combine(day, time(0), tzinfo=UTC) - timedelta(hours=2)
        end = start + timedelta(hours=6)
        shifts = shifts_between(rota, start, end)
        assert_contiguous(shifts)
        assert shifts[0].start == start and shifts[-1].end == end
        # Local 01:00 starts at 00:00 UTC and runs through the repeated hour to 02:00 GMT.
        one_am = next(s for s in shifts if s.start == datetime.combine(day, time(0), tzinfo=UTC))
        assert one_am.end - one_am.start == timedelta(hours=2)

    @pytest.mark.parametrize("day", SPRING)
    def test_the_missing_hour_gives_no_empty_turn_to_an_hourly_rota(self, three, day):
        rota = make_rota(three, start=day - timedelta(days=1), every=1, unit=HandoffUnit.HOURS)
        start = datetime.combine(day, time(0), tzinfo=UTC) - timedelta(hours=2)
        end = start + timedelta(hours=6)
        shifts = shifts_between(rota, start, end)
        assert_contiguous(shifts)
        assert all(s.end - s.start == timedelta(hours=1) for s in shifts)
        assert gaps_between(rota, start, end) == []

    @pytest.mark.parametrize("year", [2026, 2027])
    def test_a_weekly_monday_0900_handover_keeps_local_time_all_year(self, three, year):
        first_monday = date(year, 1, 1) + timedelta(days=(7 - date(year, 1, 1).weekday()) % 7)
        rota = make_rota(three[:2], start=first_monday)
        found = handoffs(
            rota,
            datetime.combine(first_monday, time(12), tzinfo=UTC),
            datetime(year, 12, 1, tzinfo=UTC),
        )
        assert len(found) > 40
        for instant in found:
            local = instant.astimezone(LONDON)
            assert (local.weekday(), local.time()) == (0, time(9, 0))
        summer = [i for i in found if i.astimezone(LONDON).utcoffset() == timedelta(hours=1)]
        assert summer and all(i.time() == time(8, 0) for i in summer)


class TestQueries:
    def test_a_constant_number_of_queries_however_long_the_span(
        self, three, django_assert_num_queries
    ):
        rota = make_rota(three, start=date(2026, 1, 5), every=1, unit=HandoffUnit.HOURS)
        override(rota, three[0], london(2026, 2, 1, 0, 0), london(2026, 2, 2, 0, 0))
        rota = Rota.objects.get(pk=rota.pk)
        for days in (1, 30, 365):
            with django_assert_num_queries(3):
                shifts = shifts_between(
                    rota, london(2026, 1, 5, 9), london(2026, 1, 5, 9) + timedelta(days=days)
                )
                assert shifts[0].person.email
        with django_assert_num_queries(3):
            assert on_call_at(rota, london(2026, 3, 1, 12, 0))[0].email

    def test_a_constant_number_of_queries_however_many_rotas(
        self, three, django_assert_num_queries
    ):
        rotas = []
        for n in range(6):
            rota = make_rota(three, start=date(2026, 1, 5), name=f"Rota {n}")
            make_layer(
                rota, three[:1], start=date(2026, 1, 5), window=Window.OFFICE_HOURS, priority=1
            )
            override(rota, three[2], london(2026, 1, 6, 0, 0), london(2026, 1, 6, 6, 0))
            rotas.append(rota)
        for some in (rotas[:1], rotas):
            with django_assert_num_queries(3):
                found = shifts_for_rotas(some, london(2026, 1, 5), london(2026, 2, 5))
                assert all(s.person.email for shifts in found.values() for s in shifts)

    def test_who_is_on_call_now_and_a_persons_shifts_take_four_queries(
        self, three, django_assert_num_queries
    ):
        for n in range(4):
            rota = make_rota(three, start=date(2026, 1, 5), name=f"Rota {n}")
            override(rota, three[2], london(2026, 1, 6, 0, 0), london(2026, 1, 6, 6, 0))
        with django_assert_num_queries(4):
            now = on_call_now(london(2026, 1, 6, 3, 0))
        assert [item.shift.person for item in now] == [three[2]] * 4
        assert all(item.shift.end == london(2026, 1, 6, 6, 0) for item in now)
        assert all(item.next_shift.person == three[0] for item in now)
        with django_assert_num_queries(4):
            mine = shifts_of_person(three[1], london(2026, 1, 5), london(2026, 3, 1))
        assert mine and all(shift.person == three[1] for _rota, shift in mine)
        assert [s.start for _r, s in mine] == sorted(s.start for _r, s in mine)


class TestDefaultRota:
    def test_returns_the_default_rota(self, db):
        Rota.objects.create(name="A other")
        default = Rota.objects.create(name="B default", is_default=True)
        assert default_rota() == default

    def test_none_when_no_rota_is_the_default(self, db):
        Rota.objects.create(name="Other")
        assert default_rota() is None

    def test_a_second_default_rota_is_refused_by_the_database(self, db):
        Rota.objects.create(name="First", is_default=True)
        with pytest.raises(IntegrityError, match="one_default_rota"), transaction.atomic():
            Rota.objects.create(name="Second", is_default=True)
        Rota.objects.create(name="Third")
        assert Rota.objects.count() == 2


class TestValidation:
    def test_an_override_must_end_after_it_starts(self, three):
        rota = Rota.objects.create(name="R")
        bad = RotaOverride(
            rota=rota, person=three[0], starts_at=utc(2026, 1, 5), ends_at=utc(2026, 1, 5)
        )
        with pytest.raises(ValidationError) as caught:
            bad.full_clean()
        assert "ends_at" in caught.value.message_dict
        with pytest.raises(IntegrityError, match="override_ends_after_start"), transaction.atomic():
            bad.save()

    def test_a_handover_time_is_hours_and_minutes(self, db):
        rota = Rota.objects.create(name="R")
        layer = RotaLayer(
            rota=rota, name="L", start_date=date(2026, 1, 5), handoff_time=time(9, 0, 30)
        )
        with pytest.raises(ValidationError) as caught:
            layer.full_clean()
        assert "handoff_time" in caught.value.message_dict

    def test_a_layer_hands_over_at_least_every_hour(self, db):
        rota = Rota.objects.create(name="R")
        layer = RotaLayer(rota=rota, name="L", start_date=date(2026, 1, 5), handoff_every=0)
        with pytest.raises(ValidationError) as caught:
            layer.full_clean()
        assert "handoff_every" in caught.value.message_dict

    def test_feed_secrets_are_long_and_differ(self, db):
        one, two = Rota.objects.create(name="One"), Rota.objects.create(name="Two")
        assert len(one.feed_secret) >= 43 and one.feed_secret != two.feed_secret
