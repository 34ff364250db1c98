"""Two-step sign-in (TOTP, with one-time recovery codes) for everyone who can see cases."""

import re
import time

import pytest
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from staff.services import confirm_totp_setup, start_totp_setup

PASSWORD = "a-long-test-password"
MUST = ["manager", "hr", "dpo", "safeguarding", "admin"]


@pytest.fixture(autouse=True)
def _second_factor_on(settings):
    settings.SECOND_FACTOR_REQUIRED = True


def sign_in(client, user):
    response = client.post("/accounts/login/", {"username": user.email, "password": PASSWORD})
    assert response.status_code == 302
    return response


def code_for(device) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


@pytest.mark.parametrize("role", MUST)
def test_roles_that_see_cases_must_set_up_a_second_factor(client, people, role):
    sign_in(client, people[role])
    for path in ("/cases/", "/admin/"):
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/two-factor/setup/")


def test_a_care_worker_is_not_asked(client, people):
    sign_in(client, people["worker"])
    assert client.get("/cases/").status_code == 200
    assert client.get("/report/").status_code == 200


def test_setup_shows_a_qr_code_then_recovery_codes_and_opens_case_pages(client, people):
    manager = people["manager"]
    sign_in(client, manager)
    page = client.get("/accounts/two-factor/setup/?next=/cases/")
    assert page.status_code == 200 and "<svg" in page.content.decode()

    device = TOTPDevice.objects.get(user=manager, confirmed=False)
    wrong = client.post("/accounts/two-factor/setup/", {"token": "000000", "next": "/cases/"})
    assert "That code is not right" in wrong.content.decode()

    done = client.post(
        "/accounts/two-factor/setup/", {"token": code_for(device), "next": "/cases/"}
    )
    codes = re.findall(r"<code>([0-9a-z]+)</code>", done.content.decode())
    assert len(codes) == 10
    assert client.get("/cases/").status_code == 200


def test_next_session_asks_for_the_code_and_a_recovery_code_works_once(client, people):
    manager = people["manager"]
    start_totp_setup(user=manager)
    device = TOTPDevice.objects.get(user=manager)
    _device, codes = confirm_totp_setup(user=manager, token=code_for(device))

    sign_in(client, manager)
    response = client.get("/cases/")
    assert response["Location"].startswith("/accounts/two-factor/?next=")
    refused = client.post("/accounts/two-factor/", {"token": "123456", "next": "/cases/"})
    assert "That code is not right" in refused.content.decode()
    time.sleep(1.1)  # django-otp pauses a device for a second after a wrong code
    assert (
        client.post("/accounts/two-factor/", {"token": codes[0], "next": "/cases/"})["Location"]
        == "/cases/"
    )
    assert client.get("/cases/").status_code == 200

    client.post("/accounts/logout/")
    sign_in(client, manager)
    reused = client.post("/accounts/two-factor/", {"token": codes[0], "next": "/cases/"})
    assert reused.status_code == 200 and "That code is not right" in reused.content.decode()


def test_a_care_worker_who_opted_in_is_held_to_it(client, people):
    worker = people["worker"]
    start_totp_setup(user=worker)
    confirm_totp_setup(user=worker, token=code_for(TOTPDevice.objects.get(user=worker)))
    sign_in(client, worker)
    assert client.get("/report/")["Location"].startswith("/accounts/two-factor/")


def test_next_cannot_send_you_off_site(client, people):
    manager = people["manager"]
    start_totp_setup(user=manager)
    device = TOTPDevice.objects.get(user=manager)
    _d, codes = confirm_totp_setup(user=manager, token=code_for(device))
    sign_in(client, manager)
    response = client.post(
        "/accounts/two-factor/", {"token": codes[1], "next": "https://evil.example/"}
    )
    assert response["Location"] == "/"


def test_the_two_factor_pages_need_a_signed_in_person(client, db):
    for path in ("/accounts/two-factor/", "/accounts/two-factor/setup/"):
        response = client.get(path)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
