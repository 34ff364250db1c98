"""A demo organisation to click through: care workers, two managers on the default rota, HR, the
DPO and the safeguarding lead. Safe to run twice: people are matched by email and updated."""

import json
from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from oncall.models import Rota, RotaParticipant
from staff.models import Engagement, Role, Team, User

PEOPLE = [
    # email, name, role, phone, team
    ("mina.manager@example.org", "Mina Patel", Role.MANAGER, "+447700900101", "Community North"),
    ("owen.manager@example.org", "Owen Rees", Role.MANAGER, "+447700900102", "Community North"),
    ("cara.worker@example.org", "Cara Jones", Role.CARE_WORKER, "+447700900201", "Community North"),
    (
        "dafydd.worker@example.org",
        "Dafydd Evans",
        Role.CARE_WORKER,
        "+447700900202",
        "Community North",
    ),
    ("harriet.hr@example.org", "Harriet Lewis", Role.HR, "+447700900301", None),
    ("dev.dpo@example.org", "Dev Sharma", Role.DPO, "+447700900302", None),
    ("sian.safeguarding@example.org", "Siân Morgan", Role.SAFEGUARDING_LEAD, "+447700900303", None),
    ("admin@example.org", "Alex Admin", Role.ADMIN, "", None),
]

DEMO_ROTA = "Default on-call rota"


class Command(BaseCommand):
    help = "Create or refresh the demo organisation (password from DEMO_PASSWORD)."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print what was made as JSON.")

    @transaction.atomic
    def handle(self, *args, **options):
        password = settings.DEMO_PASSWORD
        if not password:
            raise CommandError("Set DEMO_PASSWORD to the password the demo accounts should have.")
        other_default = Rota.objects.filter(is_default=True).exclude(name=DEMO_ROTA).first()
        if other_default is not None:
            # Never take over the rota that real urgent reports page.
            raise CommandError(
                f"'{other_default}' is already the default rota; the demo would replace it. "
                "Run seed_demo on an empty database."
            )
        people = {}
        for email, name, role, phone, team_name in PEOPLE:
            team = Team.objects.get_or_create(name=team_name)[0] if team_name else None
            person, _created = User.objects.update_or_create(
                email=email,
                defaults={
                    "full_name": name,
                    "role": role,
                    "phone": phone,
                    "team": team,
                    "engagement": Engagement.EMPLOYEE,
                    "is_staff": role == Role.ADMIN,
                    "is_superuser": role == Role.ADMIN,
                },
            )
            person.set_password(password)
            person.save()
            people[email] = person
        manager = people["mina.manager@example.org"]
        for email in ("cara.worker@example.org", "dafydd.worker@example.org"):
            people[email].line_manager = manager
            people[email].save(update_fields=["line_manager"])

        today = timezone.localdate()
        first_monday = today - timedelta(days=today.weekday() + 28)
        rota, _created = Rota.objects.update_or_create(
            name=DEMO_ROTA,
            defaults={"is_default": True, "start_date": first_monday, "handoff_weekday": 0},
        )
        rota.participants.all().delete()
        for position, email in enumerate(("mina.manager@example.org", "owen.manager@example.org")):
            RotaParticipant.objects.create(rota=rota, person=people[email], position=position)

        seed_demo_policies(people)

        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "people": [
                            {
                                "email": p.email,
                                "name": p.full_name,
                                "role": p.role,
                                "phone": str(p.phone or ""),
                            }
                            for p in people.values()
                        ],
                        "rota": {
                            "name": rota.name,
                            "handover": f"{rota.get_handoff_weekday_display()} "
                            f"{rota.handoff_time:%H:%M}",
                            "participants": [p.person.email for p in rota.participants.all()],
                        },
                    },
                    indent=2,
                )
            )
        else:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Demo organisation ready: {len(people)} people, rota '{rota.name}'."
                )
            )


def seed_demo_policies(people: dict) -> None:
    """The demo's escalation policies (replaced on every run): urgent disclosures page the
    on-call manager, then the other manager, then call on-call until acknowledged, and fall
    back to the safeguarding lead; anything else urgent pages on call, then the reporter's line
    manager, then the safeguarding lead."""
    from oncall.models import EscalationPolicy, EscalationStep, StepKind

    lead = people["sian.safeguarding@example.org"]
    policies = {
        "Urgent disclosure": (
            "urgent_disclosure",
            [
                {"kind": StepKind.NOTIFY_ON_CALL},
                {"kind": StepKind.WAIT, "minutes": 5},
                {"kind": StepKind.NOTIFY_PERSON, "person": people["owen.manager@example.org"]},
                {"kind": StepKind.WAIT, "minutes": 5},
                {"kind": StepKind.UNTIL_ACKNOWLEDGED, "minutes": 5, "times": 3},
                {"kind": StepKind.FALLBACK, "person": lead, "role": Role.MANAGER},
            ],
        ),
        "Other urgent reports": (
            "",
            [
                {"kind": StepKind.NOTIFY_ON_CALL},
                {"kind": StepKind.WAIT, "minutes": 10},
                {"kind": StepKind.NOTIFY_LINE_MANAGER, "importance": "normal"},
                {"kind": StepKind.WAIT, "minutes": 10},
                {"kind": StepKind.REPEAT, "repeat_from": 1, "times": 1},
                {"kind": StepKind.FALLBACK, "person": lead},
            ],
        ),
    }
    for name, (category, steps) in policies.items():
        policy, _created = EscalationPolicy.objects.update_or_create(
            name=name, defaults={"category": category, "urgency": "urgent", "is_active": True}
        )
        policy.steps.all().delete()
        for position, step in enumerate(steps, start=1):
            EscalationStep.objects.create(policy=policy, position=position, **step)
