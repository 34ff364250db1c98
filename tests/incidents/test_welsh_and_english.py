"""Welsh and English: pages follow the signed-in person's preference (or the switcher, or the
browser when nobody is signed in), the switcher saves the preference, and SMS pages, calls and
emails go out in each recipient's own language."""

import re

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import translation

from incidents import services
from notifications.messages import PageMessage, sms_text, voice_choices, voice_text
from staff.language import CHOSEN_SESSION_KEY
from staff.models import User

DANGER_CY = "Os oes rhywun mewn perygl uniongyrchol, ffoniwch 999 neu 112 nawr."
DANGER_EN = "If someone is in immediate danger, phone 999 or 112 now."
SWITCH = reverse("set-language")
ROLES = ["worker", "manager", "hr", "dpo", "safeguarding", "admin"]


def speaks(user: User, language: str) -> User:
    user.language = language
    user.save(update_fields=["language"])
    return user


def lang_of(response) -> str:
    return re.search(r'<html lang="([^"]+)"', response.content.decode()).group(1)


class TestPagesFollowThePreference:
    def test_the_report_page_is_in_welsh_with_the_999_line_first(self, client, people, rota):
        client.force_login(speaks(people["worker"], "cy"))
        response = client.get("/report/", HTTP_ACCEPT_LANGUAGE="en")
        body = response.content.decode()
        assert response.status_code == 200 and lang_of(response) == "cy"
        assert DANGER_CY in body and DANGER_EN not in body
        assert "Ffoniwch 999" in body
        assert response["Content-Language"] == "cy"

    def test_an_english_preference_beats_a_welsh_browser(self, client, people, rota):
        client.force_login(people["worker"])
        response = client.get("/report/", HTTP_ACCEPT_LANGUAGE="cy")
        assert lang_of(response) == "en" and DANGER_EN in response.content.decode()

    def test_the_case_page_is_in_welsh(self, client, make_case, people):
        case = make_case()
        client.force_login(speaks(people["manager"], "cy"))
        response = client.get(reverse("incidents:case-detail", args=[case.reference]))
        body = response.content.decode()
        assert response.status_code == 200 and lang_of(response) == "cy"
        assert "Llinell amser" in body and "Timeline" not in body
        assert case.reference in body

    def test_a_preference_changed_elsewhere_applies_on_the_next_page(self, client, people, rota):
        client.force_login(people["worker"])
        assert lang_of(client.get("/report/")) == "en"
        speaks(people["worker"], "cy")  # e.g. by an administrator
        assert lang_of(client.get("/report/")) == "cy"

    def test_anonymous_pages_follow_the_browser(self, client, db):
        welsh = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="cy").content.decode()
        english = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
        assert "Cyfrinair" in welsh and "Password" in english


class TestTheSwitcher:
    def test_every_page_has_a_plain_form_to_switch(self, client, people, rota):
        for response in (client.get("/accounts/login/"), self.signed_in_report(client, people)):
            body = response.content.decode()
            assert f'action="{SWITCH}"' in body
            assert 'name="language" value="en"' in body and 'name="language" value="cy"' in body
            assert "English</button>" in body and "Cymraeg</button>" in body
            # A plain form: no inline script or style (the one script, report.js, is a file
            # and only keeps unsent reports; the switcher works without it).
            assert not re.search(r"<script(?![^>]*\bsrc=)", body) and "style=" not in body

    def signed_in_report(self, client, people):
        client.force_login(people["other_worker"])
        response = client.get("/report/")
        client.logout()
        return response

    def test_the_login_page_switches_to_welsh_and_stays_welsh_after_sign_in(self, client, people):
        response = client.post(SWITCH, {"language": "cy", "next": "/accounts/login/"})
        assert response.status_code == 302 and response["Location"] == "/accounts/login/"
        body = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
        assert "Mewngofnodi" in body and "Cyfrinair" in body and "Password</label>" not in body

        signed_in = client.post(
            "/accounts/login/",
            {"username": people["worker"].email, "password": "a-long-test-password"},
        )
        assert signed_in.status_code == 302
        # The choice made this session stands over the saved (English) preference...
        assert DANGER_CY in client.get("/report/").content.decode()
        # ...but switching while anonymous did not change anyone's saved preference.
        people["worker"].refresh_from_db()
        assert people["worker"].language == "en"

    def test_a_welsh_preference_applies_straight_after_sign_in(self, client, people, rota):
        speaks(people["worker"], "cy")
        client.post(
            "/accounts/login/",
            {"username": people["worker"].email, "password": "a-long-test-password"},
        )
        assert DANGER_CY in client.get("/report/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    @pytest.mark.parametrize("role", ROLES)
    def test_every_role_switches_and_saves_only_their_own_preference(self, client, people, role):
        user = people[role]
        client.force_login(user)
        response = client.post(SWITCH, {"language": "cy", "next": "/report/"})
        assert response.status_code == 302 and response["Location"] == "/report/"
        user.refresh_from_db()
        assert user.language == "cy"
        assert client.session[CHOSEN_SESSION_KEY] == "cy"
        others = User.objects.exclude(pk=user.pk).values_list("language", flat=True)
        assert set(others) == {"en"}

        client.post(SWITCH, {"language": "en", "next": "/report/"})
        user.refresh_from_db()
        assert user.language == "en"

    def test_anonymous_may_switch_but_nothing_is_saved(self, client, people):
        response = client.post(SWITCH, {"language": "cy", "next": "/"})
        assert response.status_code == 302 and response.cookies["django_language"].value == "cy"
        assert set(User.objects.values_list("language", flat=True)) == {"en"}

    def test_an_unknown_language_or_a_get_changes_nothing(self, client, people):
        client.force_login(people["worker"])
        assert client.get(SWITCH).status_code == 405
        client.post(SWITCH, {"language": "fr", "next": "/"})
        people["worker"].refresh_from_db()
        assert people["worker"].language == "en" and CHOSEN_SESSION_KEY not in client.session

    def test_next_may_not_leave_the_site(self, client, people):
        client.force_login(people["worker"])
        response = client.post(SWITCH, {"language": "cy", "next": "https://evil.example/"})
        assert response.status_code == 302 and "evil" not in response["Location"]

    def test_the_preference_saved_by_switching_reaches_sms_pages(
        self, client, people, rota, outbox, django_capture_on_commit_callbacks
    ):
        client.force_login(people["manager"])
        client.post(SWITCH, {"language": "cy", "next": "/"})
        client.logout()
        with translation.override("en"), django_capture_on_commit_callbacks(execute=True):
            services.submit_report(
                reporter=people["worker"],
                kind="urgent_disclosure",
                grounds=["crime"],
                narrative="Something grave.",
                service_user_ref="SU-1",
            )
        to_manager = [m["body"] for m in outbox if m["to"] == str(people["manager"].phone)]
        assert to_manager and "Atebwch" in to_manager[0] and "datgelu brys" in to_manager[0]


class TestMessagesInTheRecipientsLanguage:
    MESSAGE = PageMessage(reference="C-2026-0042", urgency="urgent", title="urgent disclosure")

    def test_an_sms_page_for_a_welsh_speaker(self):
        body = sms_text(self.MESSAGE, language="cy", code="77")
        assert body.startswith("Concernline BRYS: datgelu brys, achos C-2026-0042.")
        assert "77A i gydnabod" in body and "77E i uwchgyfeirio" in body
        assert "urgent" not in body

    def test_a_call_script_for_a_welsh_speaker(self):
        assert voice_text(self.MESSAGE, language="cy").startswith("Dyma Concernline. Neges BRYS")
        assert "datgelu brys" in voice_text(self.MESSAGE, language="cy")
        assert voice_choices(language="cy").startswith("Pwyswch 1 i gydnabod.")

    def test_a_welsh_report_pages_an_english_manager_in_english(
        self, people, rota, outbox, django_capture_on_commit_callbacks
    ):
        with translation.override("cy"), django_capture_on_commit_callbacks(execute=True):
            services.submit_report(
                reporter=speaks(people["worker"], "cy"),
                kind="urgent_disclosure",
                grounds=["crime"],
                narrative="Rhywbeth difrifol.",
                service_user_ref="SU-1",
            )
        to_manager = [m["body"] for m in outbox if m["to"] == str(people["manager"].phone)]
        assert to_manager and "urgent disclosure" in to_manager[0] and "Reply" in to_manager[0]


class TestEmailsInTheRecipientsLanguage:
    def test_a_password_reset_asked_from_an_english_page_is_in_welsh(self, client, people):
        speaks(people["worker"], "cy")
        client.post(
            "/accounts/password-reset/",
            {"email": people["worker"].email},
            HTTP_ACCEPT_LANGUAGE="en",
        )
        (email,) = mail.outbox
        assert email.subject == "Concernline: gosod cyfrinair newydd"
        assert "I ddewis cyfrinair newydd, agorwch y ddolen hon:" in email.body
        assert "/accounts/reset/" in email.body and "password" not in email.body.lower()

    def test_an_english_speaker_gets_the_reset_in_english_from_a_welsh_page(self, client, people):
        client.post(
            "/accounts/password-reset/",
            {"email": people["worker"].email},
            HTTP_ACCEPT_LANGUAGE="cy",
        )
        (email,) = mail.outbox
        assert email.subject == "Concernline: set a new password"

    def test_break_glass_tells_each_dpo_in_their_own_language(
        self, make_case, people, django_capture_on_commit_callbacks
    ):
        from tests.conftest import make_person

        speaks(people["dpo"], "cy")
        english_dpo = make_person("dpo2@example.org", "dpo")
        case = make_case()
        mail.outbox.clear()
        with translation.override("en"), django_capture_on_commit_callbacks(execute=True):
            services.break_glass(
                case=case,
                actor=people["hr"],
                reason="Police are on the phone about an immediate risk.",
            )
        by_address = {m.to[0]: m for m in mail.outbox}
        welsh, english = by_address[people["dpo"].email], by_address[english_dpo.email]
        assert welsh.subject == f"Concernline: mynediad brys i achos {case.reference}"
        assert "fynediad brys" in welsh.body and "amser y DU" in welsh.body
        assert english.subject == f"Concernline: break-glass access to case {case.reference}"
        assert "Police" not in welsh.body + english.body

    def test_a_rota_gap_warning_to_a_welsh_owner_is_in_welsh(
        self, people, django_capture_on_commit_callbacks
    ):
        from oncall.models import Rota
        from oncall.services import warn_of_rota_gaps

        rota = Rota.objects.create(name="Nos", is_default=True)
        rota.owners.add(speaks(people["manager"], "cy"))
        with django_capture_on_commit_callbacks(execute=True):
            told = warn_of_rota_gaps()
        assert told >= 1
        (email,) = [m for m in mail.outbox if m.to == [people["manager"].email]]
        assert email.subject == "Bwlch yn y rota ar alwad Nos"
        assert "nid oes neb ar alwad yn rota Nos" in email.body


class TestTheService:
    def test_saves_english_or_welsh_and_refuses_anything_else(self, people):
        from staff.services import LanguageError, set_language_preference

        worker = people["worker"]
        assert set_language_preference(actor=worker, language="cy").language == "cy"
        worker.refresh_from_db()
        assert worker.language == "cy"
        with pytest.raises(LanguageError, match="Choose English or Welsh"):
            set_language_preference(actor=worker, language="fr")
        worker.refresh_from_db()
        assert worker.language == "cy"
