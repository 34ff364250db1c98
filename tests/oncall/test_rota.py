"""Who is on call: weekly turns handing over at a local (Europe/London) weekday and time."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from oncall.models import Rota, RotaParticipant
from oncall.selectors import default_rota, on_call_at
from staff.models import Role
from tests.conftest import make_person

LONDON = ZoneInfo("Europe/London")


def london(*args) -> datetime:
    return datetime(*args, tzinfo=LONDON)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def make_rota(people, *, start, name="Test rota", weekday=Rota.Weekday.MONDAY, at=time(9, 0)):
    rota = Rota.objects.create(
        name=name, start_date=start, handoff_weekday=weekday, handoff_time=at
    )
    for position, person in enumerate(people):
        RotaParticipant.objects.create(rota=rota, person=person, position=position)
    return rota


@pytest.fixture
def three(db):
    return [make_person(f"m{i}@example.org", Role.MANAGER, f"+44770090040{i}") for i in range(3)]


class TestOnCallAt:
    # 5 January 2026 is a Monday, in winter (GMT).
    START = date(2026, 1, 5)

    def test_weekly_turns_follow_participant_order(self, three):
        rota = make_rota(three, start=self.START)
        assert on_call_at(rota, london(2026, 1, 7, 12, 0)) == [three[0]]
        assert on_call_at(rota, london(2026, 1, 14, 12, 0)) == [three[1]]
        assert on_call_at(rota, london(2026, 1, 21, 12, 0)) == [three[2]]

    def test_handover_happens_exactly_at_the_handover_time(self, three):
        rota = make_rota(three, start=self.START)
        assert on_call_at(rota, london(2026, 1, 12, 9, 0)) == [three[1]]

    def test_one_minute_before_handover_the_previous_person_is_on_call(self, three):
        rota = make_rota(three, start=self.START)
        assert on_call_at(rota, london(2026, 1, 12, 8, 59)) == [three[0]]
        # The last moment of the turn, not only whole minutes.
        assert on_call_at(rota, london(2026, 1, 12, 8, 59, 59, 999999)) == [three[0]]

    def test_nobody_is_on_call_before_the_first_handover(self, three):
        rota = make_rota(three, start=self.START)
        assert on_call_at(rota, london(2026, 1, 5, 8, 59)) == []
        assert on_call_at(rota, london(2026, 1, 1, 12, 0)) == []
        assert on_call_at(rota, london(2026, 1, 5, 9, 0)) == [three[0]]

    def test_turns_wrap_around_the_participants(self, three):
        rota = make_rota(three, start=self.START)
        # Weeks 3, 4 and 7 after the start: back to the first, then the second.
        assert on_call_at(rota, london(2026, 1, 26, 9, 0)) == [three[0]]
        assert on_call_at(rota, london(2026, 2, 2, 9, 0)) == [three[1]]
        assert on_call_at(rota, london(2026, 2, 23, 9, 0)) == [three[1]]

    def test_order_is_position_not_creation_order(self, three):
        rota = Rota.objects.create(name="Reordered", start_date=self.START)
        RotaParticipant.objects.create(rota=rota, person=three[0], position=5)
        RotaParticipant.objects.create(rota=rota, person=three[1], position=1)
        assert on_call_at(rota, london(2026, 1, 6, 12, 0)) == [three[1]]
        assert on_call_at(rota, london(2026, 1, 13, 12, 0)) == [three[0]]

    def test_an_inactive_participant_is_skipped(self, three):
        three[1].is_active = False
        three[1].save(update_fields=["is_active"])
        rota = make_rota(three, start=self.START)
        on_call = on_call_at(rota, london(2026, 1, 14, 12, 0))
        assert on_call == [three[2]]
        for week in range(6):
            assert three[1] not in on_call_at(
                rota, london(2026, 1, 6, 12, 0) + timedelta(weeks=week)
            )

    def test_an_empty_rota_has_nobody_on_call(self, db):
        rota = make_rota([], start=self.START)
        assert on_call_at(rota, london(2026, 1, 14, 12, 0)) == []

    def test_a_rota_of_only_inactive_people_has_nobody_on_call(self, three):
        for person in three:
            person.is_active = False
            person.save(update_fields=["is_active"])
        rota = make_rota(three, start=self.START)
        assert on_call_at(rota, london(2026, 1, 14, 12, 0)) == []

    def test_handover_on_another_weekday_and_time(self, three):
        # Wednesday 7 January 2026, handing over at 17:30.
        rota = make_rota(
            three, start=date(2026, 1, 7), weekday=Rota.Weekday.WEDNESDAY, at=time(17, 30)
        )
        assert on_call_at(rota, london(2026, 1, 7, 17, 29)) == []
        assert on_call_at(rota, london(2026, 1, 7, 17, 30)) == [three[0]]
        # Monday and Tuesday of the next week are still the first person's turn.
        assert on_call_at(rota, london(2026, 1, 12, 9, 0)) == [three[0]]
        assert on_call_at(rota, london(2026, 1, 14, 17, 29)) == [three[0]]
        assert on_call_at(rota, london(2026, 1, 14, 17, 30)) == [three[1]]

    def test_accepts_an_instant_in_any_time_zone(self, three):
        rota = make_rota(three, start=self.START)
        # 23:30 on Sunday 11 January in New York is 04:30 on Monday in London: before handover.
        new_york = datetime(2026, 1, 11, 23, 30, tzinfo=ZoneInfo("America/New_York"))
        assert on_call_at(rota, new_york) == [three[0]]


class TestOnCallAcrossClockChanges:
    """British Summer Time starts on 29 March 2026 and ends on 25 October 2026. A Monday 09:00
    London handover is 08:00 UTC in summer and 09:00 UTC in winter."""

    def test_first_handover_in_summer_time_is_at_eight_utc(self, three):
        # Started on Monday 23 March (GMT); the next handover, 30 March, is in BST.
        rota = make_rota(three[:2], start=date(2026, 3, 23))
        assert london(2026, 3, 30, 9, 0).astimezone(UTC) == utc(2026, 3, 30, 8, 0)
        assert on_call_at(rota, utc(2026, 3, 30, 7, 59, 59)) == [three[0]]
        assert on_call_at(rota, utc(2026, 3, 30, 8, 0)) == [three[1]]

    def test_winter_time_handover_before_the_change_is_at_nine_utc(self, three):
        rota = make_rota(three[:2], start=date(2026, 3, 23))
        assert on_call_at(rota, utc(2026, 3, 23, 8, 59, 59)) == []
        assert on_call_at(rota, utc(2026, 3, 23, 9, 0)) == [three[0]]

    def test_first_handover_after_summer_time_ends_is_at_nine_utc(self, three):
        # Started on Monday 19 October (BST); the next handover, 26 October, is in GMT.
        rota = make_rota(three[:2], start=date(2026, 10, 19))
        assert on_call_at(rota, utc(2026, 10, 19, 7, 59, 59)) == []
        assert on_call_at(rota, utc(2026, 10, 19, 8, 0)) == [three[0]]
        assert london(2026, 10, 26, 9, 0).astimezone(UTC) == utc(2026, 10, 26, 9, 0)
        assert on_call_at(rota, utc(2026, 10, 26, 8, 0)) == [three[0]]
        assert on_call_at(rota, utc(2026, 10, 26, 8, 59, 59)) == [three[0]]
        assert on_call_at(rota, utc(2026, 10, 26, 9, 0)) == [three[1]]

    def test_a_winter_rota_hands_over_at_local_time_all_summer(self, three):
        rota = make_rota(three[:2], start=date(2026, 1, 5))
        # Monday 6 April 2026 is 13 weeks on: the second person's turn starts at 08:00 UTC.
        assert on_call_at(rota, utc(2026, 4, 6, 7, 59)) == [three[0]]
        assert on_call_at(rota, utc(2026, 4, 6, 8, 0)) == [three[1]]
        # Monday 2 November 2026 is 43 weeks on, in GMT again: 09:00 UTC.
        assert on_call_at(rota, utc(2026, 11, 2, 8, 59)) == [three[0]]
        assert on_call_at(rota, utc(2026, 11, 2, 9, 0)) == [three[1]]


class TestOnCallAtQueries:
    def test_one_query_however_many_participants(self, three, django_assert_num_queries):
        small = make_rota(three[:1], start=date(2026, 1, 5), name="Small")
        more = [make_person(f"x{i}@example.org", Role.MANAGER) for i in range(5)]
        big = make_rota(three + more, start=date(2026, 1, 5), name="Big")
        when = london(2026, 2, 4, 12, 0)
        for rota in (small, big):
            rota = Rota.objects.get(pk=rota.pk)
            with django_assert_num_queries(1):
                on_call = on_call_at(rota, when)
                assert on_call[0].email  # the person comes with the participants


class TestDefaultRota:
    def test_returns_the_default_rota(self, db):
        Rota.objects.create(name="A other", start_date=date(2026, 1, 5))
        default = Rota.objects.create(
            name="B default", start_date=date(2026, 1, 5), is_default=True
        )
        assert default_rota() == default

    def test_none_when_no_rota_is_the_default(self, db):
        Rota.objects.create(name="Other", start_date=date(2026, 1, 5))
        assert default_rota() is None

    def test_a_second_default_rota_is_refused_by_the_database(self, db):
        Rota.objects.create(name="First", start_date=date(2026, 1, 5), is_default=True)
        with pytest.raises(IntegrityError, match="one_default_rota"), transaction.atomic():
            Rota.objects.create(name="Second", start_date=date(2026, 1, 5), is_default=True)
        # Any number of rotas that are not the default.
        Rota.objects.create(name="Third", start_date=date(2026, 1, 5))
        Rota.objects.create(name="Fourth", start_date=date(2026, 1, 5))
        assert Rota.objects.count() == 3


class TestRotaClean:
    def test_refuses_a_first_handover_not_on_the_handover_day(self):
        rota = Rota(name="Bad", start_date=date(2026, 1, 6), handoff_weekday=Rota.Weekday.MONDAY)
        with pytest.raises(ValidationError) as caught:
            rota.clean()
        assert "start_date" in caught.value.message_dict

    def test_accepts_a_first_handover_on_the_handover_day(self):
        Rota(name="Good", start_date=date(2026, 1, 6), handoff_weekday=Rota.Weekday.TUESDAY).clean()
