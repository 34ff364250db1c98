"""A demo organisation to click through: care workers, two managers on the default rota, HR, the
DPO and the safeguarding lead. Safe to run twice: people are matched by email and updated."""

import json
import re
from datetime import time, timedelta
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

import staff
from oncall.models import HandoffUnit, LayerMember, Rota, RotaLayer, Window
from staff import services as staff_services
from staff.models import (
    Engagement,
    GuidanceDocument,
    Role,
    Team,
    TrainingAssignment,
    TrainingLevel,
    User,
)

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

        # Office hours: the two managers a week each, handing over on Monday 09:00. Out of
        # hours (evenings, nights, weekends): the other way round, a day each from 17:00.
        today = timezone.localdate()
        first_monday = today - timedelta(days=today.weekday() + 28)
        rota, _created = Rota.objects.update_or_create(
            name=DEMO_ROTA, defaults={"is_default": True}
        )
        rota.layers.all().delete()
        mina, owen = people["mina.manager@example.org"], people["owen.manager@example.org"]
        rota.owners.set([mina, owen])
        layers = [
            ("Office hours", 1, Window.OFFICE_HOURS, 7, time(9, 0), [mina, owen]),
            ("Out of hours", 0, Window.OUT_OF_HOURS, 1, time(17, 0), [owen, mina]),
        ]
        for name, priority, window, every, at, turns in layers:
            layer = RotaLayer.objects.create(
                rota=rota,
                name=name,
                priority=priority,
                window=window,
                start_date=first_monday,
                handoff_time=at,
                handoff_every=every,
                handoff_unit=HandoffUnit.DAYS,
            )
            for position, person in enumerate(turns):
                LayerMember.objects.create(layer=layer, person=person, position=position)

        seed_guidance_and_training(people)

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
                            "participants": [mina.email, owen.email],
                            "layers": [
                                {
                                    "name": layer.name,
                                    "window": layer.window,
                                    "handover": f"every {layer.handoff_every} "
                                    f"{layer.handoff_unit} at {layer.handoff_time:%H:%M}",
                                    "participants": [m.person.email for m in layer.members.all()],
                                }
                                for layer in rota.layers.all()
                            ],
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


# The guidance texts ship with the staff app, which owns guidance documents.
GUIDANCE_DIR = Path(staff.__file__).resolve().parent / "guidance"
EMPLOYEE_GUIDANCE_TITLE = "Confidentiality guidance for employees"
VOLUNTEER_GUIDANCE_TITLE = "Confidentiality guidance for volunteers"
VOLUNTEER_PLACEHOLDER = (
    "PLACEHOLDER: the volunteers' confidentiality guidance (D05d) goes here. Publish the real "
    "text in the admin under Guidance documents; that becomes version 2 and everyone who "
    "volunteers is asked to confirm it."
)
# Guidance 5.1 leaves the level to the manager's assessment by role; these are the demo's
# starting levels, edited in the admin under Training levels.
TRAINING_LEVELS = [
    (
        "Confidentiality awareness",
        "Induction: need to know, keeping conversations private, whom to ask (guidance 2-4).",
        [Role.ADMIN],
    ),
    (
        "Care and support practice",
        "For staff providing regulated care and support: the general training requirements of "
        "the learning and development guidance (E13c), consent and disclosure (3.1-3.4).",
        [Role.CARE_WORKER],
    ),
    (
        "Managing confidentiality and disclosures",
        "For managers and specialist roles: giving advice on call, breaches, disciplinary "
        "referral and reporting duties.",
        [Role.MANAGER, Role.HR, Role.DPO, Role.SAFEGUARDING_LEAD],
    ),
]


def employee_guidance_text() -> str:
    """The employees' guidance as shipped in staff/guidance/, without the word processor's
    bookmark and footnote markers."""
    raw = (GUIDANCE_DIR / "confidentiality-guidance-employees.txt").read_text(encoding="utf-8")
    text = re.sub(r"\[bookmark: [^\]]*\]|\[footnoteRef:\d+\]", "", raw)
    text = re.sub(r"\[(\d+):\s+(.*?)\s*\]", r"\n(Note \1: \2)", text, flags=re.S)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def seed_guidance_and_training(people: dict[str, User]) -> None:
    """Version 1 of each guidance (only if none is published yet, so a second run asks nobody
    again), the training levels, and one care worker's training due in ten days."""
    admin = people["admin@example.org"]
    for audience, title, body in (
        (Engagement.EMPLOYEE, EMPLOYEE_GUIDANCE_TITLE, employee_guidance_text()),
        (Engagement.VOLUNTEER, VOLUNTEER_GUIDANCE_TITLE, VOLUNTEER_PLACEHOLDER),
    ):
        if not GuidanceDocument.objects.filter(audience=audience).exists():
            staff_services.publish_guidance(actor=admin, audience=audience, title=title, body=body)
    for position, (name, description, roles) in enumerate(TRAINING_LEVELS):
        TrainingLevel.objects.update_or_create(
            name=name,
            defaults={"description": description, "roles": list(roles), "position": position},
        )
    cara = people["cara.worker@example.org"]
    if not TrainingAssignment.objects.filter(user=cara).exists():
        staff_services.set_training(
            actor=people["mina.manager@example.org"],
            user_id=cara.pk,
            level_id=TrainingLevel.objects.get(name=TRAINING_LEVELS[1][0]).pk,
            due_on=timezone.localdate() + timedelta(days=10),
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
