"""A manager on a phone sees next week's gaps in red and covers one; a care worker finds who is
on call from the report page and can tap to call them."""

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from oncall.models import LayerMember, Rota, RotaLayer, RotaOverride, Window
from oncall.selectors import gaps_between, on_call_at

pytestmark = [pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long-test-password"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture
def screenshots(tmp_path):
    return DOCS if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp_path


def sign_in(page, base_url, email):
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_a_manager_covers_next_weeks_gap_from_a_phone(live_server, phone, people, screenshots):
    rota = Rota.objects.create(name="Community North", is_default=True)
    layer = RotaLayer.objects.create(
        rota=rota,
        name="Office hours",
        start_date=timezone.localdate() - timedelta(days=14),
        window=Window.OFFICE_HOURS,
    )
    LayerMember.objects.create(layer=layer, person=people["manager"], position=0)
    next_monday = timezone.localdate() + timedelta(days=7 - timezone.localdate().weekday())

    sign_in(phone, live_server.url, people["manager2"].email)
    phone.goto(f"{live_server.url}/oncall/")
    phone.get_by_role("link", name="Rota, gaps and cover").click()
    phone.goto(f"{phone.url}?from={next_monday.isoformat()}&weeks=1")

    gaps = phone.locator("li.gap")
    assert gaps.count() >= 5  # every evening and the weekend
    colour = gaps.first.evaluate("e => getComputedStyle(e).borderLeftColor")
    assert colour == "rgb(176, 0, 32)"  # the danger red
    # Readable on a phone: nothing wider than the screen.
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    phone.screenshot(path=str(screenshots / "rota-gaps.png"), full_page=True)

    before = len(gaps_between(rota, timezone.now(), timezone.now() + timedelta(days=14)))
    gaps.first.get_by_role("button").click()
    assert "is on call from" in phone.get_by_role("status").inner_text()
    cover = RotaOverride.objects.get()
    assert cover.person == people["manager2"] and cover.created_by == people["manager2"]
    assert on_call_at(rota, cover.starts_at) == [people["manager2"]]
    after = len(gaps_between(rota, timezone.now(), timezone.now() + timedelta(days=14)))
    assert after == before - 1


def test_a_care_worker_finds_who_is_on_call(live_server, phone, people, rota, screenshots):
    sign_in(phone, live_server.url, people["worker"].email)
    phone.get_by_role("link", name="Who is on call now").click()
    call = phone.locator(f'a[href="tel:{people["manager"].phone}"]')
    assert call.is_visible()
    assert people["manager"].full_name in phone.locator("main").inner_text()
    assert phone.get_by_role("link", name="Rota, gaps and cover").count() == 0
    phone.screenshot(path=str(screenshots / "who-is-on-call.png"), full_page=True)
