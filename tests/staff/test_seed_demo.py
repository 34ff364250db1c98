"""The demo organisation: safe to run twice, and only with a password given."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from oncall.models import LayerMember, Rota
from oncall.selectors import default_rota, gaps_between, on_call_at
from staff.models import (
    Engagement,
    GuidanceDocument,
    Role,
    TrainingAssignment,
    TrainingLevel,
    User,
)

PASSWORD = "demo-password-for-tests"


def seed(*args) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_refuses_without_a_password(settings):
    settings.DEMO_PASSWORD = ""
    with pytest.raises(CommandError, match="DEMO_PASSWORD"):
        seed()
    assert User.objects.count() == 0 and Rota.objects.count() == 0


@pytest.mark.django_db
class TestSeedDemo:
    @pytest.fixture(autouse=True)
    def _password(self, settings):
        settings.DEMO_PASSWORD = PASSWORD

    def test_runs_twice_and_leaves_one_organisation(self):
        assert "8 people" in seed()
        first = set(User.objects.values_list("pk", "email", "role"))
        seed()
        assert set(User.objects.values_list("pk", "email", "role")) == first
        assert User.objects.count() == 8
        assert Rota.objects.count() == 1

        rota = default_rota()
        assert rota is not None and rota.is_default
        assert rota.layers.count() == 2
        participants = {m.person for m in LayerMember.objects.filter(layer__rota=rota)}
        assert len(participants) == 2
        assert all(p.role == Role.MANAGER for p in participants)
        # Someone is on call now, and there is no gap in the coming fortnight.
        now = timezone.now()
        assert on_call_at(rota, now)
        assert gaps_between(rota, now, now + timedelta(days=14)) == []

    def test_every_role_is_there_and_workers_have_a_line_manager(self):
        seed()
        assert set(User.objects.values_list("role", flat=True)) == set(Role.values)
        for worker in User.objects.filter(role=Role.CARE_WORKER):
            assert worker.line_manager is not None and worker.line_manager.is_manager
        admin = User.objects.get(role=Role.ADMIN)
        assert admin.is_superuser and admin.is_staff
        assert not User.objects.exclude(role=Role.ADMIN).filter(is_staff=True).exists()

    def test_json_lists_people_roles_phones_and_the_rota(self):
        data = json.loads(seed("--json"))
        people = {p["email"]: p for p in data["people"]}
        assert len(people) == 8
        assert {p["role"] for p in people.values()} == set(Role.values)
        mina = people["mina.manager@example.org"]
        assert mina["role"] == "manager" and mina["phone"] == "+447700900101"
        assert people["admin@example.org"]["phone"] == ""
        assert all(p["phone"].startswith("+44") for p in people.values() if p["role"] != "admin")
        assert data["rota"]["name"] == default_rota().name
        assert data["rota"]["participants"] == [
            "mina.manager@example.org",
            "owen.manager@example.org",
        ]
        layers = {layer["name"]: layer for layer in data["rota"]["layers"]}
        assert layers["Office hours"]["window"] == "office_hours"
        assert layers["Office hours"]["handover"] == "every 7 days at 09:00"
        assert layers["Out of hours"]["window"] == "out_of_hours"
        assert layers["Out of hours"]["participants"] == [
            "owen.manager@example.org",
            "mina.manager@example.org",
        ]

    def test_guidance_v1_for_each_audience_and_training_levels_once(self):
        seed()
        seed()
        documents = GuidanceDocument.objects.all()
        assert sorted(documents.values_list("audience", "version")) == [
            (Engagement.EMPLOYEE, 1),
            (Engagement.VOLUNTEER, 1),
        ]
        employees = documents.get(audience=Engagement.EMPLOYEE)
        assert "6.1" in employees.body and "received, read and understood" in employees.body
        assert "[bookmark" not in employees.body and "footnoteRef" not in employees.body
        assert documents.get(audience=Engagement.VOLUNTEER).body.startswith("PLACEHOLDER")
        assert TrainingLevel.objects.count() == 3
        levels_by_role = {role for level in TrainingLevel.objects.all() for role in level.roles}
        assert levels_by_role == set(Role.values)
        assert TrainingAssignment.objects.count() == 1

    def test_demo_people_sign_in_with_the_password(self, client):
        seed()
        seed()  # a second run keeps the password working
        for email in ("cara.worker@example.org", "mina.manager@example.org", "admin@example.org"):
            assert signs_in(client, email, PASSWORD), email
            client.logout()
        assert not signs_in(client, "cara.worker@example.org", "wrong")

    def test_new_password_replaces_the_old(self, settings, client):
        seed()
        settings.DEMO_PASSWORD = "another-demo-password"
        seed()
        assert not signs_in(client, "cara.worker@example.org", PASSWORD)
        assert signs_in(client, "cara.worker@example.org", "another-demo-password")

    def test_never_takes_over_an_existing_default_rota(self, people, rota):
        before = set(User.objects.values_list("pk", "email", "full_name", "phone"))
        with pytest.raises(CommandError, match="already the default rota"):
            seed()
        rota.refresh_from_db()
        assert rota.is_default and Rota.objects.count() == 1
        assert list(LayerMember.objects.values_list("person__email", flat=True)) == [
            "manager@example.org",
            "manager2@example.org",
        ]
        assert set(User.objects.values_list("pk", "email", "full_name", "phone")) == before


def signs_in(client, email: str, password: str) -> bool:
    """Through the sign-in page, as a person would (and as login throttling sees it)."""
    response = client.post("/accounts/login/", {"username": email, "password": password})
    return response.status_code == 302
