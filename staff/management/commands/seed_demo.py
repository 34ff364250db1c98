"""A demo organisation to click through: care workers, two managers on the default rota, HR, the
DPO and the safeguarding lead. Safe to run twice: people are matched by email and updated."""

import json
from datetime import time, timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from oncall.models import HandoffUnit, LayerMember, Rota, RotaLayer, Window
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
