"""The on-call pages, the calendar feeds and the JSON API, for every role."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from icalendar import Calendar

from oncall.models import LayerMember, PersonalFeed, Rota, RotaLayer, RotaOverride, Window
from oncall.selectors import gaps_between, on_call_at

SIGNED_IN = ["worker", "manager", "manager2", "hr", "dpo", "safeguarding", "admin"]
MANAGING = ["manager", "manager2", "admin"]
NOT_MANAGING = ["worker", "hr", "dpo", "safeguarding"]


def signed_in(client, people, role):
    client.force_login(people[role])
    return client


def as_local_input(when):
    return timezone.localtime(when).strftime("%Y-%m-%dT%H:%M")


@pytest.fixture
def gappy(people):
    """A rota with only an office-hours layer: every evening and weekend is a gap."""
    rota = Rota.objects.create(name="Office only")
    layer = RotaLayer.objects.create(
        rota=rota,
        name="Office",
        start_date=timezone.localdate() - timedelta(days=14),
        window=Window.OFFICE_HOURS,
    )
    LayerMember.objects.create(layer=layer, person=people["manager"], position=0)
    return rota


class TestWhoIsOnCall:
    URL = "/oncall/"

    @pytest.mark.parametrize("role", SIGNED_IN)
    def test_every_member_of_staff_sees_who_is_on_call(self, client, people, rota, role):
        assert reverse("oncall:now") == self.URL
        response = signed_in(client, people, role).get(self.URL)
        assert response.status_code == 200
        body = response.content.decode()
        manager = people["manager"]
        assert manager.full_name in body and "Manager" in body
        assert f'href="tel:{manager.phone}"' in body
        assert "On call until" in body
        assert f"Next: {people['manager2'].full_name}" in body
        # Only managers are offered the rota page.
        assert (reverse("oncall:rota", args=[rota.id]) in body) == (role in MANAGING)

    def test_anonymous_is_sent_to_sign_in(self, client, rota):
        response = client.get(self.URL)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]

    def test_nobody_on_call_says_so(self, client, people, db):
        Rota.objects.create(name="Empty", is_default=True)
        body = signed_in(client, people, "worker").get(self.URL).content.decode()
        assert "Nobody is on call in this rota right now" in body

    def test_the_report_page_links_to_it(self, client, people, rota):
        body = signed_in(client, people, "worker").get("/report/").content.decode()
        assert f'href="{self.URL}"' in body

    def test_constant_queries_however_many_rotas(
        self, client, people, rota, django_assert_max_num_queries
    ):
        signed_in(client, people, "worker")
        client.get(self.URL)
        for n in range(5):
            extra = Rota.objects.create(name=f"Extra {n}")
            layer = RotaLayer.objects.create(
                rota=extra, name="L", start_date=timezone.localdate() - timedelta(days=3)
            )
            LayerMember.objects.create(layer=layer, person=people["manager2"], position=0)
        # Session, user, rotas, layers, members, overrides.
        with django_assert_max_num_queries(8):
            assert client.get(self.URL).status_code == 200


class TestRotaPage:
    @pytest.mark.parametrize("role", MANAGING)
    def test_managers_see_the_coming_weeks_with_gaps_in_red(self, client, people, gappy, role):
        response = signed_in(client, people, role).get(reverse("oncall:rota", args=[gappy.id]))
        assert response.status_code == 200
        body = response.content.decode()
        assert body.count('class="day') == 14
        assert 'class="gap"' in body and "Nobody on call" in body
        assert people["manager"].full_name in body
        assert gappy.feed_secret in body  # the calendar address
        # Only a manager can cover a gap themselves; an administrator adds cover for others.
        assert ("ll cover, until" in body) == (role != "admin")

    @pytest.mark.parametrize("role", NOT_MANAGING)
    def test_others_are_refused(self, client, people, gappy, role):
        response = signed_in(client, people, role).get(reverse("oncall:rota", args=[gappy.id]))
        assert response.status_code == 403
        assert gappy.feed_secret not in response.content.decode()

    def test_anonymous_is_sent_to_sign_in(self, client, gappy):
        response = client.get(reverse("oncall:rota", args=[gappy.id]))
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]

    def test_weeks_and_start_can_be_chosen(self, client, people, gappy):
        signed_in(client, people, "manager")
        url = reverse("oncall:rota", args=[gappy.id])
        body = client.get(url, {"weeks": 4, "from": "2026-12-07"}).content.decode()
        assert body.count('class="day') == 28 and "Monday 7 December" in body
        assert client.get(url, {"weeks": "many", "from": "soon"}).status_code == 200


class TestCover:
    @pytest.mark.parametrize("role", MANAGING)
    def test_managers_add_cover(self, client, people, gappy, role):
        start = timezone.now() + timedelta(hours=1)
        response = signed_in(client, people, role).post(
            reverse("oncall:rota-override", args=[gappy.id]),
            {
                "person": people["manager2"].pk,
                "starts_at": as_local_input(start),
                "ends_at": as_local_input(start + timedelta(hours=3)),
                "reason": "Swap",
            },
        )
        assert response.status_code == 302
        cover = RotaOverride.objects.get()
        assert cover.person == people["manager2"] and cover.created_by == people[role]
        assert on_call_at(gappy, start + timedelta(hours=1)) == [people["manager2"]]

    @pytest.mark.parametrize("role", NOT_MANAGING)
    def test_others_cannot_add_cover(self, client, people, gappy, role):
        start = timezone.now() + timedelta(hours=1)
        response = signed_in(client, people, role).post(
            reverse("oncall:rota-override", args=[gappy.id]),
            {
                "person": people["manager2"].pk,
                "starts_at": as_local_input(start),
                "ends_at": as_local_input(start + timedelta(hours=3)),
            },
        )
        assert response.status_code == 403
        assert not RotaOverride.objects.exists()

    def test_anonymous_cannot_add_cover(self, client, people, gappy):
        response = client.post(reverse("oncall:rota-override", args=[gappy.id]), {})
        assert response.status_code == 302 and not RotaOverride.objects.exists()

    def test_ill_cover_closes_the_gap(self, client, people, gappy):
        signed_in(client, people, "manager2")
        # Offered from the gap's real start, even when that is before the calendar's first day.
        now = timezone.now()
        gaps = gaps_between(gappy, now - timedelta(days=7), now + timedelta(days=14))
        gap_start, gap_end = next((s, e) for s, e in gaps if e > now)
        page = client.get(reverse("oncall:rota", args=[gappy.id])).content.decode()
        assert f'value="{gap_start.isoformat()}"' in page
        response = client.post(
            reverse("oncall:rota-override", args=[gappy.id]),
            {
                "person": people["manager2"].pk,
                "starts_at": gap_start.isoformat(),
                "ends_at": gap_end.isoformat(),
            },
        )
        assert response.status_code == 302
        assert gaps_between(gappy, gap_start, gap_end) == []
        assert on_call_at(gappy, gap_start) == [people["manager2"]]

    def test_errors_are_shown_by_the_field(self, client, people, gappy):
        signed_in(client, people, "manager")
        start = timezone.now() + timedelta(hours=1)
        response = client.post(
            reverse("oncall:rota-override", args=[gappy.id]),
            {
                "person": people["manager2"].pk,
                "starts_at": as_local_input(start),
                "ends_at": as_local_input(start - timedelta(hours=2)),
            },
        )
        assert response.status_code == 400
        body = response.content.decode()
        assert '<p class="error" id="id_ends_at_error">The end must be after the start.' in body
        assert not RotaOverride.objects.exists()
        # Shown at the POST-only address it was sent to: the language switcher goes back to the
        # rota's page, which opens, not to that address (405).
        page = reverse("oncall:rota", args=[gappy.id])
        assert f'name="next" value="{page}"' in body
        assert client.get(page).status_code == 200

    def test_cover_that_is_already_over_is_refused(self, client, people, gappy):
        signed_in(client, people, "manager")
        start = timezone.now() - timedelta(hours=5)
        response = client.post(
            reverse("oncall:rota-override", args=[gappy.id]),
            {
                "person": people["manager2"].pk,
                "starts_at": as_local_input(start),
                "ends_at": as_local_input(start + timedelta(hours=2)),
            },
        )
        assert response.status_code == 400
        assert "This time is already over." in response.content.decode()

    def test_only_managers_can_be_put_on_call(self, client, people, gappy):
        signed_in(client, people, "manager")
        start = timezone.now() + timedelta(hours=1)
        response = client.post(
            reverse("oncall:rota-override", args=[gappy.id]),
            {
                "person": people["worker"].pk,
                "starts_at": as_local_input(start),
                "ends_at": as_local_input(start + timedelta(hours=2)),
            },
        )
        assert response.status_code == 400
        assert "Choose an active manager." in response.content.decode()


def events(response):
    calendar = Calendar.from_ical(response.content)
    return [
        (str(e["summary"]), e.decoded("dtstart"), e.decoded("dtend"))
        for e in calendar.walk("VEVENT")
    ]


class TestFeeds:
    def test_the_rota_feed_needs_only_its_secret(self, client, people, rota):
        url = reverse("oncall:feed-rota", args=[rota.feed_secret])
        response = client.get(url)
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/calendar")
        found = events(response)
        assert found[0][0] == f"On call: {people['manager'].full_name}"
        assert found[0][1] <= timezone.now() < found[0][2]
        assert found[1][0] == f"On call: {people['manager2'].full_name}"
        assert found[0][2] == found[1][1]

    def test_a_wrong_secret_is_not_found(self, client, rota):
        assert client.get(reverse("oncall:feed-rota", args=["wrong"])).status_code == 404
        assert client.get(reverse("oncall:feed-person", args=["wrong"])).status_code == 404

    def test_the_personal_feed_has_only_that_persons_shifts(self, client, people, rota):
        signed_in(client, people, "manager2")
        page = client.get(reverse("oncall:my-calendar")).content.decode()
        feed = PersonalFeed.objects.get(person=people["manager2"])
        assert feed.secret in page
        client.logout()
        found = events(client.get(reverse("oncall:feed-person", args=[feed.secret])))
        assert found and all(summary == "On call: Default" for summary, _s, _e in found)
        # manager2's first shift is next week's, not manager's of this week.
        assert found[0][1] > timezone.now()

    @pytest.mark.parametrize("role", MANAGING)
    def test_managers_rotate_the_rota_feed(self, client, people, rota, role):
        old = rota.feed_secret
        response = signed_in(client, people, role).post(
            reverse("oncall:rota-rotate-feed", args=[rota.id])
        )
        assert response.status_code == 302
        rota.refresh_from_db()
        assert rota.feed_secret != old and len(rota.feed_secret) >= 43
        assert client.get(reverse("oncall:feed-rota", args=[old])).status_code == 404
        assert client.get(reverse("oncall:feed-rota", args=[rota.feed_secret])).status_code == 200

    @pytest.mark.parametrize("role", NOT_MANAGING)
    def test_others_cannot_rotate_the_rota_feed(self, client, people, rota, role):
        old = rota.feed_secret
        response = signed_in(client, people, role).post(
            reverse("oncall:rota-rotate-feed", args=[rota.id])
        )
        assert response.status_code == 403
        rota.refresh_from_db()
        assert rota.feed_secret == old

    @pytest.mark.parametrize("role", SIGNED_IN)
    def test_everyone_rotates_their_own_feed(self, client, people, rota, role):
        signed_in(client, people, role).get(reverse("oncall:my-calendar"))
        old = PersonalFeed.objects.get(person=people[role]).secret
        assert client.post(reverse("oncall:my-calendar-rotate")).status_code == 302
        new = PersonalFeed.objects.get(person=people[role]).secret
        assert new != old
        assert client.get(reverse("oncall:feed-person", args=[old])).status_code == 404
        assert client.get(reverse("oncall:feed-person", args=[new])).status_code == 200

    def test_anonymous_has_no_calendar_page(self, client, rota):
        for name in ("oncall:my-calendar",):
            response = client.get(reverse(name))
            assert response.status_code == 302 and "/accounts/login/" in response["Location"]
        assert client.post(reverse("oncall:my-calendar-rotate")).status_code == 302
        assert not PersonalFeed.objects.exists()

    def test_an_inactive_persons_feed_is_gone(self, client, people, rota):
        feed = PersonalFeed.objects.create(person=people["manager"])
        people["manager"].is_active = False
        people["manager"].save(update_fields=["is_active"])
        assert client.get(reverse("oncall:feed-person", args=[feed.secret])).status_code == 404


class TestApi:
    URL = "/api/v1/oncall/now/"

    @pytest.mark.parametrize("role", SIGNED_IN)
    def test_every_member_of_staff_gets_who_is_on_call(self, client, people, rota, role):
        response = signed_in(client, people, role).get(self.URL)
        assert response.status_code == 200
        [entry] = response.json()["rotas"]
        assert entry["name"] == "Default" and entry["is_default"]
        assert entry["on_call"]["name"] == people["manager"].full_name
        assert entry["on_call"]["role"] == "manager"
        assert entry["on_call"]["phone"] == "+447700900101"
        assert entry["next"]["name"] == people["manager2"].full_name
        assert entry["on_call"]["until"] == entry["next"]["from"]

    def test_anonymous_gets_a_structured_refusal(self, client, rota):
        response = client.get(self.URL)
        assert response.status_code in (401, 403)
        assert set(response.json()["error"]) == {"code", "message", "fields"}


class TestAdmin:
    def test_a_layer_needs_at_least_one_person(self, client, people, db):
        rota = Rota.objects.create(name="R")
        signed_in(client, people, "admin")
        data = {
            "rota": rota.id,
            "name": "Office",
            "priority": 0,
            "start_date": "2026-01-05",
            "handoff_time": "09:00",
            "handoff_every": 7,
            "handoff_unit": "days",
            "window": "always",
            "members-TOTAL_FORMS": "1",
            "members-INITIAL_FORMS": "0",
            "members-MIN_NUM_FORMS": "1",
            "members-MAX_NUM_FORMS": "1000",
            "members-0-person": "",
            "members-0-position": "",
        }
        response = client.post("/admin/oncall/rotalayer/add/", data)
        assert response.status_code == 200 and not RotaLayer.objects.exists()
        data.update({"members-0-person": people["manager"].pk, "members-0-position": 0})
        data["handoff_time"] = "25:00"
        response = client.post("/admin/oncall/rotalayer/add/", data)
        assert response.status_code == 200 and not RotaLayer.objects.exists()
        data["handoff_time"] = "09:00"
        response = client.post("/admin/oncall/rotalayer/add/", data)
        assert response.status_code == 302
        assert list(RotaLayer.objects.get().members.values_list("person", flat=True)) == [
            people["manager"].pk
        ]

    def test_an_override_must_end_after_it_starts(self, client, people, db):
        rota = Rota.objects.create(name="R")
        signed_in(client, people, "admin")
        data = {
            "rota": rota.id,
            "person": people["manager"].pk,
            "starts_at_0": "2026-12-01",
            "starts_at_1": "10:00",
            "ends_at_0": "2026-12-01",
            "ends_at_1": "09:00",
        }
        response = client.post("/admin/oncall/rotaoverride/add/", data)
        assert response.status_code == 200
        assert "The end must be after the start." in response.content.decode()
        data["ends_at_1"] = "12:00"
        assert client.post("/admin/oncall/rotaoverride/add/", data).status_code == 302
        assert RotaOverride.objects.get().created_by == people["admin"]
