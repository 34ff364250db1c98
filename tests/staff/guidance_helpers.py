"""Shared set-up for the guidance and training tests: built through the services."""

from datetime import timedelta

from django.utils import timezone

from staff import services
from staff.models import Engagement, Role, Team, TrainingLevel


def publish(admin, audience=Engagement.EMPLOYEE, title="Confidentiality guidance", body=None):
    return services.publish_guidance(
        actor=admin,
        audience=audience,
        title=title,
        body=body or f"Guidance for {audience}s.\n\n6.1 Sign to say you have read it.",
    )


def levels():
    return [
        TrainingLevel.objects.create(name="Awareness", roles=[Role.ADMIN], position=0),
        TrainingLevel.objects.create(name="Care practice", roles=[Role.CARE_WORKER], position=1),
        TrainingLevel.objects.create(name="Managing", roles=[Role.MANAGER, Role.HR], position=2),
    ]


def in_days(days: int):
    return timezone.localdate() + timedelta(days=days)


def organise(people):
    """Two teams: `manager` manages `worker` (line manager, team North); `manager2` leads team
    South with `other_worker` in it. Returns (north, south)."""
    north = Team.objects.create(name="North")
    south = Team.objects.create(name="South")
    people["manager"].team = north
    people["manager"].save()
    people["worker"].team = north
    people["worker"].line_manager = people["manager"]
    people["worker"].save()
    people["manager2"].team = south
    people["manager2"].save()
    people["other_worker"].team = south
    people["other_worker"].line_manager = people["manager2"]
    people["other_worker"].save()
    return north, south
