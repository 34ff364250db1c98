"""Escalation policies as data: choosing one for an alert, checking one is sound, and the
snapshot an alert carries (its steps and who was on call when it was raised)."""

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from staff.models import User

from .models import EscalationPolicy, Rota, StepKind
from .selectors import on_call_kept

# Pages the built-in policy sends before the fallback, when no policy is configured.
MAX_STEPS = 12
STEP_FIELDS = (
    "kind",
    "importance",
    "rota_id",
    "person_id",
    "role",
    "minutes",
    "repeat_from",
    "times",
)


def policy_problems(steps: list[dict]) -> list[str]:
    """What is wrong with a policy given as step dicts (in order), in plain words; [] if sound.
    Every policy ends in a fallback that reaches someone, and every loop has a wait in it."""
    problems = []
    if not steps or steps[-1].get("kind") != StepKind.FALLBACK:
        problems.append(_("The last step must be the final fallback."))
    elif not fallback_people(steps[-1]):
        problems.append(
            _("The final fallback reaches nobody: name an active person or role with a mobile.")
        )
    for number, step in enumerate(steps, start=1):
        if step.get("kind") == StepKind.FALLBACK and number != len(steps):
            problems.append(
                _("Step %(n)s: only the last step may be the fallback.") % {"n": number}
            )
        if step.get("kind") == StepKind.REPEAT:
            start = step.get("repeat_from") or 0
            if not 1 <= start < number:
                problems.append(
                    _("Step %(n)s: repeat from an earlier step (1 to %(last)s).")
                    % {"n": number, "last": number - 1}
                )
            elif not any(
                s.get("kind") in (StepKind.WAIT, StepKind.UNTIL_ACKNOWLEDGED)
                for s in steps[start - 1 : number - 1]
            ):
                problems.append(
                    _("Step %(n)s: the repeated steps must include a wait.") % {"n": number}
                )
    if sum(1 for s in steps if s.get("kind") == StepKind.REPEAT) > 1:
        problems.append(_("A policy may repeat only once."))
    return problems


def fallback_people(step: dict) -> list[User]:
    """Everyone a fallback (or notify-role/person) step reaches now: active, with a mobile."""
    people = User.objects.filter(is_active=True).exclude(phone="")
    if step.get("person_id") and step.get("role"):
        people = people.filter(Q(pk=step["person_id"]) | Q(role=step["role"]))
    elif step.get("person_id"):
        people = people.filter(pk=step["person_id"])
    elif step.get("role"):
        people = people.filter(role=step["role"])
    else:
        return []
    return list(people.order_by("pk"))


def choose_policy(*, category: str, urgency: str) -> EscalationPolicy | None:
    """The most specific active policy: kind and urgency, then kind, then urgency, then any."""
    candidates = {
        (p.category, p.urgency): p
        for p in EscalationPolicy.objects.filter(
            is_active=True, category__in=[category, ""], urgency__in=[urgency, ""]
        ).prefetch_related("steps")
    }
    for key in ((category, urgency), (category, ""), ("", urgency), ("", "")):
        if key in candidates:
            return candidates[key]
    return None


def builtin_steps() -> list[dict]:
    """When no policy is configured: page the on-call manager every ALERT_REPAGE_SECONDS, at
    most MAX_STEPS times, then every manager. Never nothing."""
    minutes = settings.ALERT_REPAGE_SECONDS / minute_seconds()
    base = dict.fromkeys(STEP_FIELDS)
    return [
        {
            **base,
            "kind": StepKind.UNTIL_ACKNOWLEDGED,
            "importance": "important",
            "minutes": minutes,
            "times": MAX_STEPS,
        },
        {**base, "kind": StepKind.FALLBACK, "importance": "important", "role": "manager"},
    ]


def minute_seconds() -> float:
    """How many real seconds a policy minute lasts: 60 in production, tiny in tests."""
    return float(settings.ESCALATION_MINUTE_SECONDS)


def snapshot_for(*, category: str, urgency: str, rota: Rota | None, now=None) -> dict:
    """The policy and who is on call in each rota it names, as the alert will keep them."""
    now = now or timezone.now()
    policy = choose_policy(category=category, urgency=urgency)
    if policy is None:
        steps, policy_info = builtin_steps(), {"id": None, "name": "built-in"}
    else:
        steps = [{f: getattr(s, f) for f in STEP_FIELDS} for s in policy.steps.all()]
        policy_info = {"id": policy.id, "name": policy.name}
    rota_ids = {s["rota_id"] for s in steps if s["kind"] in ROTA_KINDS}
    rotas = {r.id: r for r in Rota.objects.filter(pk__in={i for i in rota_ids if i})}
    on_call = {}
    for rota_id in rota_ids:
        chosen = rotas.get(rota_id) if rota_id else rota
        # Resolved once and reused while the rota is unchanged: every urgent report asks.
        people = on_call_kept(rota_id=chosen.id, when=now) if chosen else []
        on_call[str(rota_id or "")] = {
            "rota": chosen.name if chosen else None,
            "people": [{"id": p.id, "name": p.full_name} for p in people],
        }
    return {"policy": {**policy_info, "steps": steps}, "on_call": on_call, "at": now.isoformat()}


ROTA_KINDS = {StepKind.NOTIFY_ON_CALL, StepKind.UNTIL_ACKNOWLEDGED}
