"""People: how accounts are made and what the database refuses."""

import pytest
from django.contrib.auth import authenticate
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.test import RequestFactory

from staff.models import Role, User

PASSWORD = "a-long-test-password"


def create(email="Worker@Example.ORG", **fields):
    fields.setdefault("full_name", "Cara Jones")
    return User.objects.create_user(email=email, password=PASSWORD, **fields)


@pytest.mark.django_db
class TestCreateUser:
    def test_email_is_lowercased(self):
        user = create(email="Cara.Jones@Example.ORG")
        assert user.email == "cara.jones@example.org"
        assert User.objects.get(pk=user.pk).email == "cara.jones@example.org"
        request = RequestFactory().post("/accounts/login/")
        assert authenticate(request, username="cara.jones@example.org", password=PASSWORD) == user

    def test_defaults(self):
        user = create()
        assert user.role == Role.CARE_WORKER
        assert not user.is_staff and not user.is_superuser and user.is_active
        assert user.check_password(PASSWORD)

    @pytest.mark.parametrize("email", ["", None])
    def test_email_is_required(self, email):
        with pytest.raises(ValueError, match="email address is required"):
            create(email=email)
        assert User.objects.count() == 0

    def test_the_same_email_in_other_case_is_the_same_person(self):
        create(email="cara@example.org")
        with pytest.raises(ValidationError) as caught:
            create(email="CARA@example.org")
        assert "email" in caught.value.message_dict
        assert User.objects.count() == 1

    @pytest.mark.parametrize("phone", ["+4477", "+44770090012345678", "07700 900123x", "hello"])
    def test_phone_must_be_a_dialable_international_number(self, phone):
        with pytest.raises(ValidationError) as caught:
            create(phone=phone)
        assert "phone" in caught.value.message_dict
        assert User.objects.count() == 0

    @pytest.mark.parametrize(
        ("phone", "country", "national"),
        [
            ("+447700900123", 44, 7700900123),  # Ofcom's drama range: possible, not "valid"
            ("+44 7700 900123", 44, 7700900123),
            ("+353851234567", 353, 851234567),
        ],
    )
    def test_international_numbers_are_accepted(self, phone, country, national):
        user = create(phone=phone)
        user.refresh_from_db()
        assert (user.phone.country_code, user.phone.national_number) == (country, national)

    def test_no_phone_is_allowed(self):
        assert str(create(phone="").phone or "") == ""

    def test_nobody_is_their_own_line_manager(self):
        user = create()
        user.line_manager = user
        with pytest.raises(IntegrityError, match="staff_not_own_manager"), transaction.atomic():
            user.save()
        user.refresh_from_db()
        assert user.line_manager_id is None

    def test_someone_else_may_be_line_manager(self):
        manager = create(email="mina@example.org", role=Role.MANAGER)
        user = create()
        user.line_manager = manager
        user.save()
        assert list(manager.reports.all()) == [user]


@pytest.mark.django_db
def test_create_superuser_is_an_admin():
    admin = User.objects.create_superuser(
        email="Admin@Example.org", password=PASSWORD, full_name="Alex Admin"
    )
    assert admin.role == Role.ADMIN
    assert admin.is_superuser and admin.is_staff
    assert admin.email == "admin@example.org"


class TestPhoneStorage:
    def test_numbers_are_stored_in_e164_whatever_the_spacing(self, db):
        from staff.models import User
        from tests.conftest import make_person

        person = make_person("spaced@example.org", phone="+44 7700 900123")
        assert User.objects.filter(phone="+447700900123").get() == person


class TestSignInIgnoresCase:
    def test_web_sign_in_with_capitals_works(self, client, db):
        from tests.conftest import make_person

        make_person("worker.case@example.org")
        response = client.post(
            "/accounts/login/",
            {"username": "Worker.Case@Example.org", "password": "a-long-test-password"},
        )
        assert response.status_code == 302
