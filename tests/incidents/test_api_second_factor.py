"""Two-step sign-in holds in the API as on the pages: a token for those who must prove a second
factor needs the code as well as the password, a token given without one is refused to them,
and a browser session reaches the API only once it has given its code."""

import time

import pytest
from django_otp.oath import TOTP, totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient

from staff.models import ApiToken
from staff.services import confirm_totp_setup, issue_api_token, start_totp_setup

from .conftest import NARRATIVE

TOKEN_URL = "/api/v1/auth/token/"
TOKENS_URL = "/api/v1/auth/tokens/"
PASSWORD = "a-long-test-password"
MUST = ["manager", "hr", "dpo", "safeguarding", "admin"]


@pytest.fixture(autouse=True)
def _second_factor_on(settings):
    settings.SECOND_FACTOR_REQUIRED = True


def set_up_second_factor(user) -> tuple[TOTPDevice, list[str]]:
    device = start_totp_setup(user=user)
    return confirm_totp_setup(user=user, token=code_for(device))


def code_for(device) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


def next_code(device) -> str:
    """A code the device has not accepted yet. A TOTP code is good once (django-otp remembers
    the last time step used) and the app's next code is accepted a step early, so this is the
    code of the first step after the last one used, rather than a wait of up to 30 seconds."""
    device.refresh_from_db()
    now = TOTP(device.bin_key, device.step, device.t0, device.digits).t()
    ahead = max(0, device.last_t + 1 - now)
    return f"{totp(device.bin_key, device.step, device.t0, device.digits, drift=ahead):06d}"


def ask_for_token(user, **extra):
    return APIClient().post(
        TOKEN_URL, {"email": user.email, "password": PASSWORD, **extra}, format="json"
    )


def error_of(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert set(error) == {"code", "message", "fields"} and error["message"]
    assert error["code"] == code
    return error


def with_token(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


class TestTokenForRolesThatMustProveASecondFactor:
    @pytest.mark.parametrize("role", MUST)
    def test_a_password_alone_is_not_enough(self, people, role):
        person = people[role]
        set_up_second_factor(person)
        error = error_of(ask_for_token(person), 401, "second_factor_required")
        assert "otp" in error["fields"] and "authenticator app" in error["message"]
        assert not ApiToken.objects.filter(user=person).exists()

    @pytest.mark.parametrize("role", MUST)
    def test_without_a_second_factor_set_up_they_are_sent_to_the_web(self, people, role):
        person = people[role]
        error = error_of(ask_for_token(person, otp="123456"), 403, "second_factor_not_set_up")
        assert "Sign in on the web first" in error["message"]
        assert not ApiToken.objects.filter(user=person).exists()

    @pytest.mark.parametrize("role", MUST)
    def test_the_code_from_the_app_gives_a_token_that_works(self, people, role):
        person = people[role]
        device, _codes = set_up_second_factor(person)
        response = ask_for_token(person, otp=next_code(device))
        assert response.status_code == 200, response.content
        assert ApiToken.objects.get(user=person).second_factor is True
        assert with_token(response.json()["token"]).get(TOKENS_URL).status_code == 200

    def test_a_wrong_code_is_refused(self, people):
        manager = people["manager"]
        set_up_second_factor(manager)
        error = error_of(ask_for_token(manager, otp="000000"), 401, "second_factor_invalid")
        assert "otp" in error["fields"]
        assert not ApiToken.objects.filter(user=manager).exists()

    def test_a_wrong_password_says_nothing_of_the_second_factor(self, people):
        manager = people["manager"]
        device, _codes = set_up_second_factor(manager)
        response = APIClient().post(
            TOKEN_URL,
            {"email": manager.email, "password": "not-the-password", "otp": next_code(device)},
            format="json",
        )
        error_of(response, 401, "invalid_credentials")

    def test_a_recovery_code_works_once(self, people):
        dpo = people["dpo"]
        _device, codes = set_up_second_factor(dpo)
        assert ask_for_token(dpo, otp=codes[0]).status_code == 200
        error_of(ask_for_token(dpo, otp=codes[0]), 401, "second_factor_invalid")
        time.sleep(1.1)  # django-otp pauses a device for a second after a wrong code
        assert ask_for_token(dpo, otp=codes[1]).status_code == 200
        assert ApiToken.objects.filter(user=dpo, second_factor=True).count() == 2

    def test_a_stolen_password_does_not_read_a_case(self, people, make_case):
        case = make_case("crime")
        manager = people["manager"]
        set_up_second_factor(manager)
        error_of(ask_for_token(manager), 401, "second_factor_required")
        device = TOTPDevice.objects.get(user=manager)
        key = ask_for_token(manager, otp=next_code(device)).json()["token"]
        response = with_token(key).get(f"/api/v1/cases/{case.reference}/")
        assert response.status_code == 200 and response.json()["narrative"] == NARRATIVE


class TestTokensGivenForAPasswordAlone:
    """Tokens from before the API asked for the second factor (the migration marks them as
    given without one), or from before their owner set one up."""

    @pytest.mark.parametrize("role", MUST)
    def test_are_refused_to_roles_that_must_prove_a_second_factor(self, people, role):
        _token, key = issue_api_token(user=people[role], name="phone")
        error_of(with_token(key).get(TOKENS_URL), 401, "second_factor_required")

    def test_do_not_read_a_case(self, people, make_case):
        case = make_case("crime")
        _token, key = issue_api_token(user=people["manager"], name="phone")
        response = with_token(key).get(f"/api/v1/cases/{case.reference}/")
        error_of(response, 401, "second_factor_required")
        assert NARRATIVE not in response.content.decode()

    def test_still_work_for_a_care_worker(self, people):
        _token, key = issue_api_token(user=people["worker"], name="phone")
        assert with_token(key).get(TOKENS_URL).status_code == 200

    def test_stop_working_when_a_care_worker_sets_up_a_second_factor(self, people):
        worker = people["worker"]
        _token, key = issue_api_token(user=worker, name="phone")
        set_up_second_factor(worker)
        error_of(with_token(key).get(TOKENS_URL), 401, "second_factor_required")

    def test_a_promoted_care_workers_token_stops_working(self, people):
        worker = people["worker"]
        _token, key = issue_api_token(user=worker, name="phone")
        worker.role = "manager"
        worker.save(update_fields=["role"])
        error_of(with_token(key).get(TOKENS_URL), 401, "second_factor_required")

    def test_all_work_when_the_second_factor_is_switched_off(self, people, settings):
        settings.SECOND_FACTOR_REQUIRED = False
        for role in MUST:
            _token, key = issue_api_token(user=people[role], name="phone")
            assert with_token(key).get(TOKENS_URL).status_code == 200


class TestTokenForCareWorkers:
    def test_a_password_alone_gives_a_token(self, people, rota):
        response = ask_for_token(people["worker"])
        assert response.status_code == 200
        assert ApiToken.objects.get(user=people["worker"]).second_factor is False
        report = with_token(response.json()["token"]).post(
            "/api/v1/reports/",
            {"kind": "urgent_disclosure", "narrative": "Bruises.", "grounds": ["crime"]},
            format="json",
        )
        assert report.status_code == 201, report.content

    def test_one_who_opted_in_is_held_to_it(self, people):
        worker = people["worker"]
        device, codes = set_up_second_factor(worker)
        error_of(ask_for_token(worker), 401, "second_factor_required")
        response = ask_for_token(worker, otp=next_code(device))
        assert response.status_code == 200
        assert with_token(response.json()["token"]).get(TOKENS_URL).status_code == 200
        assert ask_for_token(worker, otp=codes[0]).status_code == 200


def sign_in(client, user):
    response = client.post("/accounts/login/", {"username": user.email, "password": PASSWORD})
    assert response.status_code == 302


class TestSessionUseOfTheApi:
    @pytest.mark.parametrize("role", MUST)
    def test_a_session_without_its_code_is_refused(self, client, people, role):
        sign_in(client, people[role])
        error = error_of(client.get(TOKENS_URL), 403, "second_factor_required")
        assert "/accounts/two-factor/" in error["message"]

    @pytest.mark.parametrize("role", MUST)
    def test_a_session_that_gave_its_code_is_let_in(self, client, people, role):
        person = people[role]
        device, _codes = set_up_second_factor(person)
        sign_in(client, person)
        client.post("/accounts/two-factor/", {"token": next_code(device), "next": "/"})
        assert client.get(TOKENS_URL).status_code == 200

    def test_a_manager_without_a_second_factor_reads_no_case(self, client, people, make_case):
        case = make_case("crime")
        sign_in(client, people["manager"])
        assert client.get("/cases/").status_code == 302
        response = client.get(f"/api/v1/cases/{case.reference}/")
        error_of(response, 403, "second_factor_required")
        assert NARRATIVE not in response.content.decode()

    def test_a_care_worker_session_is_let_in(self, client, people):
        sign_in(client, people["worker"])
        assert client.get(TOKENS_URL).status_code == 200

    def test_a_care_worker_who_opted_in_must_give_the_code(self, client, people):
        worker = people["worker"]
        set_up_second_factor(worker)
        sign_in(client, worker)
        error_of(client.get(TOKENS_URL), 403, "second_factor_required")

    def test_the_public_schema_opens_for_a_session_without_its_code(self, client, people):
        sign_in(client, people["manager"])
        assert client.get("/api/schema/").status_code == 200
