"""A care worker on a phone switches the report page to Welsh, and back."""

import pytest

from staff.models import User

pytestmark = [pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long-test-password"
DANGER_CY = "Os oes rhywun mewn perygl uniongyrchol, ffoniwch 999 neu 112 nawr."


def test_switching_the_report_page_to_welsh(live_server, phone, people, rota):
    csp_errors = []
    phone.on(
        "console",
        lambda msg: csp_errors.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    phone.goto(f"{live_server.url}/accounts/login/")
    phone.get_by_label("Email address").fill(people["worker"].email)
    phone.get_by_label("Password").fill(PASSWORD)
    phone.get_by_role("button", name="Sign in").click()
    assert "phone 999 or 112" in phone.locator("main").inner_text().strip().splitlines()[0]

    switch = phone.get_by_role("button", name="Cymraeg")
    assert switch.is_visible()
    box = switch.bounding_box()
    assert box["height"] >= 44 and box["x"] + box["width"] <= 390  # a finger's size, on screen
    switch.click()

    phone.wait_for_url(f"{live_server.url}/report/")
    assert phone.locator("html").get_attribute("lang") == "cy"
    assert phone.locator("main").inner_text().strip().splitlines()[0].startswith(DANGER_CY)
    assert phone.get_by_role("button", name="Parhau").is_visible()
    assert User.objects.get(pk=people["worker"].pk).language == "cy"

    phone.get_by_role("button", name="English").click()
    phone.wait_for_url(f"{live_server.url}/report/")
    assert phone.locator("html").get_attribute("lang") == "en"
    assert User.objects.get(pk=people["worker"].pk).language == "en"
    assert csp_errors == []
