"""API tokens: stored hashed, expiring, listed and revoked by their owner and by admins."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from freezegun import freeze_time
from rest_framework.test import APIClient

from staff.models import ApiToken
from staff.services import issue_api_token

LIST_URL = "/api/v1/auth/tokens/"


def client_with(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


class TestStorage:
    def test_the_database_holds_no_usable_key(self, people):
        _token, key = issue_api_token(user=people["worker"], name="phone")
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM staff_apitoken")
            raw = " ".join(str(value) for row in cursor.fetchall() for value in row)
        assert key not in raw and key[10:] not in raw

    def test_bearer_works_too(self, people):
        _token, key = issue_api_token(user=people["worker"], name="phone")
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        assert client.get(LIST_URL).status_code == 200


class TestExpiryAndRevocation:
    def test_an_expired_token_is_refused(self, people, settings):
        token, key = issue_api_token(user=people["worker"], name="phone", days=1)
        with freeze_time(token.expires_at + timedelta(seconds=1)):
            response = client_with(key).get(LIST_URL)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "authentication_failed"

    def test_the_owner_lists_and_revokes_their_tokens(self, people):
        first, key = issue_api_token(user=people["worker"], name="phone")
        other, _ = issue_api_token(user=people["worker"], name="tablet")
        issue_api_token(user=people["other_worker"], name="not theirs")
        client = client_with(key)

        listed = client.get(LIST_URL).json()
        assert {t["name"] for t in listed} == {"phone", "tablet"}
        assert all("key" not in t and "key_hash" not in t for t in listed)

        assert client.delete(f"{LIST_URL}{other.id}/").status_code == 200
        assert ApiToken.objects.get(pk=other.id).revoked_at is not None
        assert client.delete(f"{LIST_URL}{first.id}/").status_code == 200
        assert client.get(LIST_URL).status_code == 401  # it revoked itself

    def test_nobody_revokes_someone_elses_token(self, people):
        theirs, their_key = issue_api_token(user=people["other_worker"], name="phone")
        _mine, key = issue_api_token(user=people["worker"], name="phone")
        response = client_with(key).delete(f"{LIST_URL}{theirs.id}/")
        assert response.status_code == 404
        assert ApiToken.objects.get(pk=theirs.id).revoked_at is None
        assert client_with(their_key).get(LIST_URL).status_code == 200

    def test_an_admin_revokes_any_token_in_the_admin(self, client, people):
        theirs, their_key = issue_api_token(user=people["worker"], name="phone")
        client.force_login(people["admin"])
        page = client.get("/admin/staff/apitoken/")
        assert page.status_code == 200 and theirs.prefix in page.content.decode()
        client.post(
            "/admin/staff/apitoken/",
            {"action": "revoke", "_selected_action": [theirs.id]},
        )
        assert ApiToken.objects.get(pk=theirs.id).revoked_by == people["admin"]
        assert client_with(their_key).get(LIST_URL).status_code == 401

    def test_a_deactivated_person_tokens_stop_working(self, people):
        _token, key = issue_api_token(user=people["worker"], name="phone")
        people["worker"].is_active = False
        people["worker"].save(update_fields=["is_active"])
        assert client_with(key).get(LIST_URL).status_code == 401

    @pytest.mark.parametrize("role", ["anonymous", "worker", "manager", "hr", "dpo", "admin"])
    def test_listing_needs_a_credential_and_shows_only_your_own(self, people, role):
        issue_api_token(user=people["other_worker"], name="someone else's")
        if role == "anonymous":
            assert APIClient().get(LIST_URL).status_code == 401
            return
        _token, key = issue_api_token(user=people[role], name="mine")
        assert [t["name"] for t in client_with(key).get(LIST_URL).json()] == ["mine"]

    def test_last_used_is_recorded_without_a_write_per_request(
        self, people, django_assert_num_queries
    ):
        token, key = issue_api_token(user=people["worker"], name="phone")
        client = client_with(key)
        client.get(LIST_URL)
        token.refresh_from_db()
        assert token.last_used_at is not None
        assert token.last_used_at <= timezone.now()
        with django_assert_num_queries(2):  # the token and the list; no "last used" write
            assert client.get(LIST_URL).status_code == 200


class TestLookup:
    def test_the_token_and_its_owner_load_as_the_orm_loads_them(self, people):
        """The plain query behind every API call gives the very instances the ORM would, each
        field through its converters (the phone number, the dates), and nothing for a key
        nobody holds."""
        from staff import selectors
        from staff.services import hash_api_key

        person = people["manager"]
        assert person.phone  # a converted field is compared, not only plain ones
        token, key = issue_api_token(user=person, name="phone")
        found = selectors.token_by_key_hash(hash_api_key(key))
        expected = ApiToken.objects.select_related("user").get(pk=token.pk)
        for field in ApiToken._meta.concrete_fields:
            assert getattr(found, field.attname) == getattr(expected, field.attname), field
        for field in type(person)._meta.concrete_fields:
            assert getattr(found.user, field.attname) == getattr(expected.user, field.attname), (
                field
            )
        assert type(found.user.phone) is type(expected.user.phone)
        assert not found._state.adding and not found.user._state.adding
        assert selectors.token_by_key_hash(hash_api_key(key + "x")) is None

    def test_the_converters_are_worked_out_once_per_connection(self, people, monkeypatch):
        """Working out each field's converters for every lookup was a third of its time."""
        from staff import selectors
        from staff.services import hash_api_key

        _token, key = issue_api_token(user=people["manager"], name="phone")
        first = selectors.token_by_key_hash(hash_api_key(key))
        asked = []
        real = type(first.user)._meta.get_field("phone").get_db_converters

        def get_db_converters(connection):
            asked.append(connection)
            return real(connection)

        field = type(first.user)._meta.get_field("phone")
        monkeypatch.setattr(field, "get_db_converters", get_db_converters)
        again = selectors.token_by_key_hash(hash_api_key(key))
        assert asked == []
        assert again.user.phone == first.user.phone
        assert type(again.user.phone) is type(first.user.phone)

    def test_the_lookup_says_whether_the_owner_has_set_up_a_second_factor(self, people):
        from django_otp.oath import totp

        from staff import selectors
        from staff.services import confirm_totp_setup, hash_api_key, start_totp_setup

        worker = people["worker"]
        _token, key = issue_api_token(user=worker, name="phone")
        assert selectors.token_by_key_hash(hash_api_key(key)).owner_has_device is False
        device = start_totp_setup(user=worker)  # not confirmed yet: not a second factor
        assert selectors.token_by_key_hash(hash_api_key(key)).owner_has_device is False
        confirm_totp_setup(user=worker, token=f"{totp(device.bin_key):06d}")
        assert selectors.token_by_key_hash(hash_api_key(key)).owner_has_device is True
