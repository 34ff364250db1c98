"""A care worker on a phone sees the prompt, reads the guidance and signs it."""

import pytest

from staff.models import GuidanceAcknowledgement
from tests.staff.guidance_helpers import publish

from .test_report_on_a_phone import sign_in

pytestmark = [pytest.mark.django_db(transaction=True)]


def test_sign_the_guidance_on_a_phone(live_server, phone, people, rota, screenshots):
    document = publish(people["admin"])
    sign_in(phone, live_server.url, people["worker"].email)

    # The report page comes first and works; the prompt is a banner with a link.
    assert "phone 999 or 112" in phone.locator("main").inner_text()
    banner = phone.get_by_role("note")
    assert "Please read and confirm the confidentiality guidance." in banner.inner_text()
    banner.get_by_role("link", name="Read the guidance").click()

    assert phone.get_by_role("heading", level=1).inner_text() == "Confidentiality guidance"
    assert "6.1 Sign to say you have read it." in phone.locator("article").inner_text()
    button = phone.get_by_role("button", name="I have received, read and understood it")
    button.scroll_into_view_if_needed()
    box = button.bounding_box()
    assert box["height"] >= 44 and box["x"] >= 0 and box["x"] + box["width"] <= 390
    phone.screenshot(path=str(screenshots / "guidance.png"), full_page=True)
    button.click()

    assert "You confirmed version 1" in phone.get_by_role("status").first.inner_text()
    assert phone.get_by_role("note").count() == 0
    signature = GuidanceAcknowledgement.objects.get()
    assert signature.user == people["worker"] and signature.document == document
    # Nothing on the page is wider than the phone.
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
