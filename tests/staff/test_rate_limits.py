"""Rate limits per person and per address: 429 with Retry-After, in plain words."""

import pytest
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from freezegun import freeze_time
from rest_framework.test import APIClient

from incidents.models import Case
from staff.services import confirm_totp_setup, start_totp_setup
from tests.conftest import api_client_for, setting_in_subprocess

PASSWORD = "a-long-test-password"


def code_for(device) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


REPORT = {"kind": "concern_colleague", "narrative": "Left notes on a bus.", "colleague": "B. Staff"}


def limit(settings, **numbers: tuple[int, int]) -> None:
    """The rules as settings configure them (their methods, paths and window), with the named
    rules' limits lowered to (per person, per address) and every other rule out of reach; a
    test of a rule that is not configured fails."""
    configured = settings.RATE_LIMITS
    missing = set(numbers) - set(configured)
    assert not missing, f"no such rule configured: {missing}"
    settings.RATE_LIMITS = {
        name: {
            **rule,
            "per_person": numbers.get(name, (10_000, 10_000))[0],
            "per_address": numbers.get(name, (10_000, 10_000))[1],
        }
        for name, rule in configured.items()
    }


@pytest.fixture
def tight(settings):
    limit(settings, report=(2, 3))


def post_report(client, **extra):
    return client.post("/report/", REPORT, **extra)


class TestReportLimits:
    def test_a_person_is_held_after_their_limit_with_a_plain_answer(
        self, client, people, rota, tight
    ):
        client.force_login(people["worker"])
        with freeze_time("2026-11-30 10:00:00"):
            assert post_report(client).status_code == 302
            assert post_report(client).status_code == 302
            held = post_report(client)
        assert held.status_code == 429
        assert "Try again in 10 minutes" in held.content.decode()
        assert held["Retry-After"] == "600"
        assert Case.objects.count() == 2

    def test_the_window_passes(self, client, people, rota, tight):
        client.force_login(people["worker"])
        with freeze_time("2026-11-30 10:00:00"):
            post_report(client)
            post_report(client)
            assert post_report(client).status_code == 429
        with freeze_time("2026-11-30 10:10:01"):
            assert post_report(client).status_code == 302

    def test_one_address_is_held_across_people(self, client, people, rota, tight):
        with freeze_time("2026-11-30 10:00:00"):
            for name in ("worker", "other_worker", "manager"):
                client.force_login(people[name])
                assert post_report(client, REMOTE_ADDR="203.0.113.5").status_code == 302
            client.force_login(people["hr"])
            assert post_report(client, REMOTE_ADDR="203.0.113.5").status_code == 429
            assert post_report(client, REMOTE_ADDR="203.0.113.6").status_code == 302

    def test_reading_pages_is_not_limited_by_the_report_rule(self, client, people, tight):
        client.force_login(people["worker"])
        for _ in range(5):
            assert client.get("/report/").status_code == 200


def sign_in_from(address: str, user, password: str = PASSWORD):
    """A password sign-in from a browser that has not signed in before."""
    return Client(REMOTE_ADDR=address).post(
        "/accounts/login/", {"username": user.email, "password": password}
    )


def assert_plain_429(response):
    assert response.status_code == 429
    assert response["Retry-After"] == "600"
    page = response.content.decode()
    assert "Try again in 10 minutes" in page and "Sign-in paused" in page


def assert_structured_429(response):
    assert response.status_code == 429
    assert response["Retry-After"] == "600"
    assert response.json()["error"]["code"] == "rate_limited"
    assert "Try again in 10 minutes" in response.json()["error"]["message"]


class TestSignInLimits:
    def test_one_address_is_held_at_the_sign_in_page_in_plain_words(self, people, settings):
        limit(settings, sign_in=(100, 3))
        with freeze_time("2026-11-30 10:00:00"):
            for name in ("worker", "other_worker", "hr"):
                assert sign_in_from("203.0.113.5", people[name]).status_code == 302
            assert_plain_429(sign_in_from("203.0.113.5", people["dpo"]))
            # The token endpoint is a sign-in too, held for the same address, in the API's form.
            token = APIClient(REMOTE_ADDR="203.0.113.5").post(
                "/api/v1/auth/token/",
                {"email": people["dpo"].email, "password": PASSWORD},
                format="json",
            )
            assert_structured_429(token)
            assert sign_in_from("203.0.113.6", people["dpo"]).status_code == 302

    def test_one_person_is_held_at_the_two_step_page_from_any_address(
        self, client, people, settings
    ):
        settings.SECOND_FACTOR_REQUIRED = True
        limit(settings, sign_in=(2, 100))
        manager = people["manager"]
        start_totp_setup(user=manager)
        device = TOTPDevice.objects.get(user=manager)
        confirm_totp_setup(user=manager, token=code_for(device))
        with freeze_time("2026-11-30 10:00:00"):
            signed_in = client.post(
                "/accounts/login/", {"username": manager.email, "password": PASSWORD}
            )
            assert signed_in.status_code == 302

            def guess(address):
                return client.post(
                    "/accounts/two-factor/", {"token": "000000"}, REMOTE_ADDR=address
                )

            assert guess("203.0.113.7").status_code == 200  # "That code is not right"
            assert guess("203.0.113.8").status_code == 200
            assert_plain_429(guess("203.0.113.9"))


class TestApiLimits:
    def test_report_submission_through_the_api_is_held_by_the_report_rule(
        self, people, rota, tight
    ):
        api: APIClient = api_client_for(people["worker"])
        with freeze_time("2026-11-30 10:00:00"):
            assert api.post("/api/v1/reports/", REPORT, format="json").status_code == 201
            assert api.post("/api/v1/reports/", REPORT, format="json").status_code == 201
            held = api.post("/api/v1/reports/", REPORT, format="json")
        assert_structured_429(held)

    def test_one_credential_is_held_across_addresses(self, people, rota, settings):
        limit(settings, api=(2, 100))
        api: APIClient = api_client_for(people["worker"])
        with freeze_time("2026-11-30 10:00:00"):
            for address in ("203.0.113.5", "203.0.113.6"):
                assert api.get("/api/v1/oncall/now/", REMOTE_ADDR=address).status_code == 200
            assert_structured_429(api.get("/api/v1/oncall/now/", REMOTE_ADDR="203.0.113.7"))
            other = api_client_for(people["other_worker"])
            assert other.get("/api/v1/oncall/now/", REMOTE_ADDR="203.0.113.7").status_code == 200

    def test_one_address_is_held_across_credentials(self, people, settings):
        limit(settings, api=(100, 3))
        with freeze_time("2026-11-30 10:00:00"):
            for name in ("worker", "other_worker", "hr"):
                api = api_client_for(people[name])
                assert api.get("/api/v1/auth/tokens/", REMOTE_ADDR="203.0.113.5").status_code == 200
            api = api_client_for(people["dpo"])
            assert_structured_429(api.get("/api/v1/auth/tokens/", REMOTE_ADDR="203.0.113.5"))
            assert api.get("/api/v1/auth/tokens/", REMOTE_ADDR="203.0.113.6").status_code == 200


def configured_rate_limits(**env: str) -> dict:
    return setting_in_subprocess("settings.RATE_LIMITS", **env)


def test_each_limit_is_read_from_its_own_variable():
    rules = configured_rate_limits(
        RATE_LIMIT_SIGN_IN_PER_PERSON="7",
        RATE_LIMIT_SIGN_IN_PER_ADDRESS="8",
        RATE_LIMIT_API_PER_PERSON="9",
        RATE_LIMIT_API_PER_ADDRESS="10",
        RATE_LIMIT_REPORTS_PER_PERSON="11",
        RATE_LIMIT_REPORTS_PER_ADDRESS="12",
    )
    numbers = {name: (rule["per_person"], rule["per_address"]) for name, rule in rules.items()}
    assert numbers == {"sign_in": (7, 8), "api": (9, 10), "report": (11, 12)}
