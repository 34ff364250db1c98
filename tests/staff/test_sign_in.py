"""Sign-in throttling, password reset, idle sign-out and the security headers."""

import re
import time
import uuid
from urllib.parse import quote

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.password_validation import validate_password
from django.core import mail
from django.core.exceptions import ValidationError

from staff.security import IDLE_KEY
from tests.conftest import make_person

PASSWORD = "a-long-test-password"


def sign_in(client, email, password=PASSWORD, **extra):
    return client.post("/accounts/login/", {"username": email, "password": password}, **extra)


@pytest.fixture
def worker(db):
    return make_person("cara@example.org", phone="+447700900201")


class TestLoginThrottling:
    def test_an_account_is_paused_after_five_failures_with_a_plain_answer(self, client, worker):
        for n in range(4):
            failed = sign_in(client, worker.email, "wrong-password", REMOTE_ADDR=f"192.0.2.{n}")
            assert failed.status_code == 200
        # The fifth failure, from yet another address: the account itself is paused.
        assert sign_in(client, worker.email, "wrong", REMOTE_ADDR="192.0.2.9").status_code == 429
        response = sign_in(client, worker.email.upper(), REMOTE_ADDR="192.0.2.10")
        assert response.status_code == 429
        assert "Try again in 15 minutes" in response.content.decode()
        assert response["Retry-After"] == str(15 * 60)
        assert "_auth_user_id" not in client.session

    def test_an_address_is_paused_after_five_failures_across_accounts(self, client, db):
        for n in range(5):
            sign_in(client, f"nobody{n}@example.org", "guess", REMOTE_ADDR="203.0.113.9")
        other = make_person("other@example.org")
        response = sign_in(client, other.email, REMOTE_ADDR="203.0.113.9")
        assert response.status_code == 429
        assert sign_in(client, other.email, REMOTE_ADDR="203.0.113.10").status_code == 302

    def test_forged_forwarded_for_does_not_dodge_the_address_limit(self, client, db):
        for n in range(5):
            sign_in(client, f"x{n}@example.org", "guess", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}")
        response = sign_in(client, "x9@example.org", "guess", HTTP_X_FORWARDED_FOR="198.51.100.9")
        assert response.status_code == 429

    def test_an_admin_sees_and_lifts_a_lockout(self, client, worker, people):
        for _ in range(5):
            sign_in(client, worker.email, "wrong-password")
        assert AccessAttempt.objects.filter(username=worker.email).exists()
        client.force_login(people["admin"])
        listing = client.get("/admin/axes/accessattempt/")
        assert listing.status_code == 200 and worker.email in listing.content.decode()
        # Deleting the lockout's rows in the admin lifts it (README, "Sign-in and security").
        attempts = list(AccessAttempt.objects.values_list("pk", flat=True))
        lifted = client.post(
            "/admin/axes/accessattempt/",
            {"action": "delete_selected", "_selected_action": attempts, "post": "yes"},
        )
        assert lifted.status_code == 302
        assert not AccessAttempt.objects.exists()
        client.logout()

        assert sign_in(client, worker.email).status_code == 302

    def test_the_api_token_endpoint_is_throttled_with_a_structured_429(self, client, worker):
        for _ in range(5):
            client.post(
                "/api/v1/auth/token/",
                {"email": worker.email, "password": "nope"},
                content_type="application/json",
            )
        response = client.post(
            "/api/v1/auth/token/",
            {"email": worker.email, "password": PASSWORD},
            content_type="application/json",
        )
        assert response.status_code == 429
        assert response.json()["error"]["code"] == "locked_out"
        assert "Retry-After" in response


class TestPasswordRules:
    @pytest.mark.parametrize("password", ["short-pw", "password1234", "123456789012"])
    def test_weak_passwords_are_refused(self, password):
        with pytest.raises(ValidationError):
            validate_password(password)

    def test_a_long_uncommon_password_is_accepted(self):
        validate_password("river-lantern-quietly-42")


class TestPasswordReset:
    def test_reset_by_email_link(self, client, worker):
        response = client.post("/accounts/password-reset/", {"email": worker.email})
        assert response.status_code == 302
        assert len(mail.outbox) == 1 and mail.outbox[0].to == [worker.email]
        link = re.search(r"(/accounts/reset/[^/]+/[^/\s]+/)", mail.outbox[0].body).group(1)

        form_page = client.get(link, follow=True)
        assert form_page.status_code == 200
        new = "a-brand-new-long-password"
        done = client.post(
            form_page.redirect_chain[-1][0],
            {"new_password1": new, "new_password2": new},
        )
        assert done.status_code == 302
        assert sign_in(client, worker.email, new).status_code == 302

    def test_unknown_address_gets_the_same_answer_and_no_mail(self, client, db):
        response = client.post("/accounts/password-reset/", {"email": "ghost@example.org"})
        assert response.status_code == 302 and mail.outbox == []


def idle_for(client, seconds: float) -> None:
    session = client.session
    session[IDLE_KEY] = time.time() - seconds
    session.save()


def is_signed_out_to_sign_in(client, response) -> bool:
    return (
        response.status_code == 302
        and response["Location"].startswith("/accounts/login/")
        and "_auth_user_id" not in client.session
    )


CONCERN = {"kind": "concern_colleague", "narrative": "Left notes on a bus.", "colleague": "B. S"}


def a_report_by(person):
    from incidents import services

    return services.submit_report(
        reporter=person,
        kind=CONCERN["kind"],
        narrative=CONCERN["narrative"],
        details={"colleague": CONCERN["colleague"]},
    )


class TestIdleSignOut:
    def test_case_pages_sign_out_after_idle_time(self, client, worker, settings):
        settings.SESSION_IDLE_SECONDS = 60
        client.force_login(worker)
        idle_for(client, 61)

        response = client.get("/cases/")
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
        assert "_auth_user_id" not in client.session

    def test_the_default_is_thirty_minutes(self, client, worker, settings):
        assert settings.SESSION_IDLE_SECONDS == 30 * 60
        client.force_login(worker)
        idle_for(client, 29 * 60)
        assert client.get("/cases/").status_code == 200
        idle_for(client, 31 * 60)
        assert is_signed_out_to_sign_in(client, client.get("/cases/"))

    @pytest.mark.parametrize("first", ["/", "/report/", "/staff/guidance/", "/me/paging/"])
    def test_another_page_first_does_not_restart_the_clock(self, client, worker, first):
        """Once idle past the limit, only signing in again restarts the clock: opening a page
        that is not protected first, then a case page, still signs out."""
        client.force_login(worker)
        idle_for(client, 3600)
        assert client.get(first).status_code in (200, 302)
        assert "_auth_user_id" in client.session  # that page itself did not sign out
        assert is_signed_out_to_sign_in(client, client.get("/cases/"))

    def test_a_report_handed_in_after_an_idle_hour_is_taken(self, client, people, rota):
        from incidents.models import Case

        worker = people["worker"]
        client.force_login(worker)
        assert client.get("/report/?kind=concern_colleague").status_code == 200
        idle_for(client, 3600)  # a long report, typed slowly

        response = client.post("/report/", {**CONCERN, "client_token": str(uuid.uuid4())})
        case = Case.objects.get(reporter=worker)
        assert response.status_code == 302
        assert response["Location"] == f"/my-reports/{case.reference}/"
        # The report is in; the page showing it asks for the password again first, and the
        # sign-in page says the report arrived.
        assert is_signed_out_to_sign_in(client, client.get(response["Location"]))
        sign_in_page = client.get("/accounts/login/").content.decode()
        assert f"Report {case.reference} received." in sign_in_page

    def test_information_added_after_an_idle_hour_is_taken(self, client, people, rota):
        worker = people["worker"]
        case = a_report_by(worker)
        client.force_login(worker)
        idle_for(client, 3600)
        response = client.post(f"/my-reports/{case.reference}/add/", {"text": "He did it again."})
        assert response.status_code == 302
        assert case.notes.filter(author=worker).exists()
        assert is_signed_out_to_sign_in(client, client.get(response["Location"]))

    @pytest.mark.parametrize(
        "path",
        [
            "/my-reports/",
            "/my-reports/{ref}/",
            "/breach-log/",
            "/outcomes/",
            "/outcomes/export.csv",
            "/retention/",
            "/subject-access/",
            "/staff/team/",
            "/admin/",
        ],
    )
    def test_every_page_with_case_content_signs_out(self, client, people, rota, path):
        case = a_report_by(people["worker"])
        client.force_login(people["dpo"])
        idle_for(client, 3600)
        assert is_signed_out_to_sign_in(client, client.get(path.format(ref=case.reference)))

    def test_the_api_signs_an_idle_session_out(self, client, people, rota):
        case = a_report_by(people["worker"])
        client.force_login(people["worker"])
        idle_for(client, 3600)
        response = client.get(f"/api/v1/reports/{case.reference}/")
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "not_authenticated"
        assert "_auth_user_id" not in client.session

    def test_a_token_still_counts_beside_an_idle_session(self, client, worker):
        from staff.services import issue_api_token

        _token, key = issue_api_token(user=worker, name="phone")
        client.force_login(worker)
        idle_for(client, 3600)
        response = client.get("/api/v1/auth/tokens/", HTTP_AUTHORIZATION=f"Token {key}")
        assert response.status_code == 200
        assert "_auth_user_id" not in client.session

    def test_active_sessions_stay(self, client, worker, settings):
        settings.SESSION_IDLE_SECONDS = 60
        client.force_login(worker)
        assert client.get("/cases/").status_code == 200
        assert client.get("/cases/").status_code == 200


class TestSignedOutSend:
    """A form sent once signed out is not saved: the sign-in page says so, and afterwards
    brings the person back to the page the form was on, not to the address it was sent to
    (which only takes POST: a bare 405 after signing in)."""

    def test_added_information_after_the_session_ended(self, client, people, rota):
        worker = people["worker"]
        case = a_report_by(worker)
        mine = f"/my-reports/{case.reference}/"

        response = client.post(
            f"{mine}add/", {"text": "He did it again."}, HTTP_REFERER=f"http://testserver{mine}"
        )

        assert response["Location"] == f"/accounts/login/?next={quote(mine)}"
        assert not case.notes.exists()
        page = client.get(response["Location"]).content.decode()
        assert "You were signed out, so what you sent was not saved." in page
        signed_in = client.post(
            response["Location"], {"username": worker.email, "password": PASSWORD}
        )
        assert signed_in["Location"] == mine
        assert client.get(mine).status_code == 200

    def test_a_note_on_a_case_after_an_idle_hour(self, client, people, rota, settings):
        settings.SECOND_FACTOR_REQUIRED = False
        manager = people["manager"]
        case = a_report_by(people["worker"])
        assert case.owner == manager
        page = f"/cases/{case.reference}/"
        client.force_login(manager)
        idle_for(client, 3600)

        response = client.post(
            f"{page}notes/", {"text": "Called her back."}, HTTP_REFERER=f"http://testserver{page}"
        )

        assert is_signed_out_to_sign_in(client, response)
        assert response["Location"] == f"/accounts/login/?next={quote(page)}"
        assert not case.notes.exists()
        text = client.get(response["Location"]).content.decode()
        assert "You were signed out after a time without activity." in text
        assert "You were signed out, so what you sent was not saved." in text

    @pytest.mark.parametrize(
        "referer", ["", "https://elsewhere.example/cases/", "http://testserver/accounts/login/"]
    )
    def test_without_a_page_of_ours_to_go_back_to_it_is_the_home_page(
        self, client, people, rota, referer
    ):
        case = a_report_by(people["worker"])
        extra = {"HTTP_REFERER": referer} if referer else {}
        response = client.post(f"/cases/{case.reference}/notes/", {"text": "x"}, **extra)
        assert response["Location"] == f"/accounts/login/?next={quote('/')}"

    def test_a_page_asked_for_by_get_keeps_its_own_address(self, client, people, rota):
        case = a_report_by(people["worker"])
        response = client.get(f"/cases/{case.reference}/")
        assert response["Location"] == f"/accounts/login/?next={quote(f'/cases/{case.reference}/')}"
        assert "not saved" not in client.get(response["Location"]).content.decode()


class TestSecurityHeaders:
    def test_every_page_carries_the_headers(self, client, worker):
        client.force_login(worker)
        for path in ("/accounts/login/", "/report/", "/my-reports/", "/cases/"):
            response = client.get(path)
            csp = response["Content-Security-Policy"]
            assert "default-src 'self'" in csp and "unsafe-inline" not in csp
            assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
            assert response["X-Frame-Options"] == "DENY"
            assert response["Referrer-Policy"] == "same-origin"
            assert "camera=()" in response["Permissions-Policy"]

    def test_hsts_on_https(self, client, worker, settings):
        settings.SECURE_HSTS_SECONDS = 31536000
        response = client.get("/accounts/login/", secure=True)
        assert response["Strict-Transport-Security"].startswith("max-age=31536000")

    def test_pages_have_no_inline_script_or_style(self, client, worker, people, rota):
        client.force_login(worker)
        for path in ("/accounts/login/", "/report/", "/my-reports/", "/cases/"):
            html = client.get(path).content.decode()
            assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path
            assert not re.search(r"\sstyle=", html) and "<style" not in html, path
