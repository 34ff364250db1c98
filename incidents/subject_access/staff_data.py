"""What is held about a member of staff outside cases: account, paging, guidance, access."""

from django.db.models import Q

from staff.models import Role, User

from ..models import AccessLogEntry, BreakGlass
from .marks import Marker, mark
from .values import iso, label


def account_json(subject: User, m: Marker) -> dict:
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog
    from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from notifications.models import ContactPreferences

    prefs = ContactPreferences.objects.filter(user=subject).first()

    def sign_ins(model, *extra):
        rows = model.objects.filter(username__iexact=subject.email).order_by("attempt_time")
        return [
            {
                "at": iso(row.attempt_time),
                "ip_address": row.ip_address,
                "browser": row.user_agent,
                "path": row.path_info,
                **{name: iso(getattr(row, name)) for name in extra},
            }
            for row in rows
        ]

    return {
        "account": {
            "email": subject.email,
            "full_name": subject.full_name,
            "role": subject.role,
            "role_label": label(Role.choices, subject.role),
            "mobile_phone": str(subject.phone) if subject.phone else "",
            "team": subject.team.name if subject.team else None,
            "line_manager": m.person(subject.line_manager, "line manager"),
            "language": subject.language,
            "employee_or_volunteer": subject.engagement,
            "active": subject.is_active,
            "admin_site_access": subject.is_staff,
            "date_joined": iso(subject.date_joined),
            "last_sign_in": iso(subject.last_login),
        },
        "two_step_sign_in": {
            "authenticator_apps": [
                {
                    "name": device.name,
                    "confirmed": device.confirmed,
                    "created_at": iso(device.created_at),
                    "last_used_at": iso(device.last_used_at),
                }
                for device in TOTPDevice.objects.filter(user=subject).order_by("id")
            ],
            "recovery_codes_left": StaticToken.objects.filter(
                device__in=StaticDevice.objects.filter(user=subject)
            ).count(),
        },
        "api_tokens": [
            {
                "name": token.name,
                "starts_with": token.prefix,
                "created_at": iso(token.created_at),
                "expires_at": iso(token.expires_at),
                "last_used_at": iso(token.last_used_at),
                "revoked_at": iso(token.revoked_at),
                "revoked_by": m.person(token.revoked_by, "revoked the token"),
            }
            for token in subject.api_tokens.select_related("revoked_by").order_by("created_at")
        ],
        "paging_preferences": {
            "important": prefs.important_rule if prefs else None,
            "normal": prefs.normal_rule if prefs else None,
            "sms_stopped": prefs.sms_opted_out if prefs else False,
            "updated_at": iso(prefs.updated_at) if prefs else None,
            "note": "" if prefs else "none saved: the defaults apply",
        },
        "sign_ins": sign_ins(AccessLog, "logout_time"),
        "failed_sign_ins": sign_ins(AccessFailureLog),
        "sign_in_lockout_counters": sign_ins(AccessAttempt),
    }


def paging_json(subject: User, m: Marker) -> dict:
    from notifications.models import InboundMessage, NotificationAttempt, PageRequest
    from oncall.models import (
        Alert,
        EscalationStep,
        HandoffReminder,
        LayerMember,
        Page,
        PersonalFeed,
        RotaOverride,
    )

    phone = str(subject.phone) if subject.phone else ""
    to = [v for v in (phone, subject.email) if v]
    attempts = (
        NotificationAttempt.objects.filter(Q(recipient=subject) | Q(to__in=to))
        .select_related("recipient")
        .prefetch_related("status_changes")
        .order_by("created_at", "id")
    )
    inbound = (
        InboundMessage.objects.filter(
            Q(sender=subject) | (Q(from_number=phone) if phone else Q(pk__in=[]))
        )
        .select_related("sender")
        .order_by("received_at", "id")
    )
    return {
        "rota_turns": [
            {"rota": member.layer.rota.name, "layer": member.layer.name, "order": member.position}
            for member in LayerMember.objects.filter(person=subject).select_related("layer__rota")
        ],
        "rotas_owned": list(subject.owned_rotas.values_list("name", flat=True)),
        "cover_overrides": [
            {
                "rota": o.rota.name,
                "from": iso(o.starts_at),
                "until": iso(o.ends_at),
                "reason": m.text(o.reason),
                "made_by": m.person(o.created_by, "made the override"),
                "made_at": iso(o.created_at),
            }
            for o in RotaOverride.objects.filter(person=subject)
            .select_related("rota", "created_by")
            .order_by("starts_at")
        ],
        "personal_calendar_feed": PersonalFeed.objects.filter(person=subject).exists(),
        "handover_reminders": [
            {"rota": r.rota.name, "shift_starts_at": iso(r.starts_at), "sent_at": iso(r.created_at)}
            for r in HandoffReminder.objects.filter(person=subject)
            .select_related("rota")
            .order_by("created_at")
        ],
        "named_in_escalation_policies": [
            {"policy": s.policy.name, "step": s.position, "kind": s.kind}
            for s in EscalationStep.objects.filter(person=subject).select_related("policy")
        ],
        "alert_pages": [
            {
                "case_reference": page.alert.reference,
                "title": page.alert.title,
                "step": page.step,
                "reason": page.reason,
                "importance": page.importance,
                "due_at": iso(page.due_at),
                "at": iso(page.created_at),
                "every_channel_failed_at": iso(page.exhausted_at),
            }
            for page in Page.objects.filter(recipient=subject)
            .select_related("alert")
            .order_by("created_at", "id")
        ],
        "alerts_acknowledged": [
            {
                "case_reference": alert.reference,
                "at": iso(alert.acknowledged_at),
                "how": alert.acknowledged_via,
            }
            for alert in Alert.objects.filter(acknowledged_by=subject).order_by("acknowledged_at")
        ],
        "page_requests": [
            {
                "reply_code": request.code,
                "case_reference": request.reference,
                "title": request.title,
                "importance": request.importance,
                "at": iso(request.created_at),
                "first_sent_at": iso(request.first_sent_at),
                "first_delivered_at": iso(request.first_delivered_at),
                "acknowledged_at": iso(request.acknowledged_at),
                "acknowledged_how": request.acknowledged_via,
                "closed_at": iso(request.closed_at),
            }
            for request in PageRequest.objects.filter(recipient=subject).order_by("created_at")
        ],
        "messages_sent": [
            {
                "to_person": m.person(attempt.recipient, "the number or address was theirs"),
                "channel": attempt.channel,
                "to": attempt.to,
                "text": attempt.body,
                "about": attempt.topic,
                "status": attempt.status,
                "error_code": attempt.error_code,
                "error": attempt.error_message,
                "answered_by": attempt.answered_by,
                "key_pressed": attempt.digits,
                "at": iso(attempt.created_at),
                "statuses": [
                    {"status": c.status, "at": iso(c.at), "error_code": c.error_code}
                    for c in attempt.status_changes.all()
                ],
            }
            for attempt in attempts
        ],
        "messages_received": [_received(message, subject, m) for message in inbound],
    }


def _received(message, subject: User, m: Marker) -> dict:
    """An SMS from the subject's number. A phone shared with others (an on-call handset) also
    carries what they sent: those, and any whose sender could not be told, are marked."""
    row = {
        "from": message.from_number,
        "text": message.body,
        "our_answer": message.reply,
        "at": iso(message.received_at),
    }
    if message.sender_id == subject.pk:
        return row
    if message.sender is not None:
        row["sent_by"] = m.person(message.sender, "sent the SMS from a shared phone")
        reason = "another member of staff's SMS, sent from a phone they share with the subject"
    else:
        row["sent_by"] = None
        reason = "an SMS from a shared phone: it may have been sent by someone else"
    row["text"] = mark(message.body, reason) if message.body else message.body
    row["our_answer"] = mark(message.reply, reason) if message.reply else message.reply
    return row


def guidance_json(subject: User, m: Marker) -> dict:
    from staff.models import GuidanceAcknowledgement, GuidanceQuestion, TeamExport

    return {
        "guidance_signed": [
            {
                "document": s.document.title,
                "version": s.document.version,
                "for": s.document.audience,
                "confirmed_at": iso(s.confirmed_at),
            }
            for s in GuidanceAcknowledgement.objects.filter(user=subject)
            .select_related("document")
            .order_by("confirmed_at")
        ],
        "guidance_questions": [
            {
                "document": q.document.title,
                "version": q.document.version,
                "question": m.text(q.question),
                "asked_at": iso(q.asked_at),
                "to": m.person(q.manager, "line manager asked"),
                "discussed_at": iso(q.discussed_at),
                "discussed_by": m.person(q.discussed_by, "discussed the question"),
            }
            for q in GuidanceQuestion.objects.filter(asked_by=subject)
            .select_related("document", "manager", "discussed_by")
            .order_by("asked_at")
        ],
        "training": [
            {
                "level": t.level.name,
                "due_on": iso(t.due_on),
                "assigned_by": m.person(t.assigned_by, "assessed the training"),
                "assigned_at": iso(t.assigned_at),
                "completed_on": iso(t.completed_on),
                "completion_recorded_by": m.person(
                    t.completed_recorded_by, "recorded the completion"
                ),
                "completion_recorded_at": iso(t.completed_recorded_at),
                "reminders": [
                    {"due_on": iso(r.due_on), "period": r.period, "sent_at": iso(r.sent_at)}
                    for r in t.reminders.all()
                ],
            }
            for t in subject.training.select_related(
                "level", "assigned_by", "completed_recorded_by"
            ).prefetch_related("reminders")
        ],
        "team_lists_downloaded": [
            {"team": e.team.name if e.team else None, "rows": e.rows, "at": iso(e.at)}
            for e in TeamExport.objects.filter(actor=subject).select_related("team")
        ],
    }


def access_json(subject: User, m: Marker) -> dict:
    return {
        "cases_looked_at": [
            {
                "case_reference": entry.case.reference,
                "at": iso(entry.at),
                "action": entry.action,
                "action_label": entry.get_action_display(),
                "basis": entry.basis,
                "path": entry.path,
                "ip_address": entry.ip_address,
            }
            for entry in AccessLogEntry.objects.filter(user=subject)
            .select_related("case")
            .order_by("at", "id")
        ],
        "break_glass": [
            {
                "case_reference": glass.case.reference,
                "reason": m.text(glass.reason),
                "at": iso(glass.at),
                "expires_at": iso(glass.expires_at),
            }
            for glass in BreakGlass.objects.filter(user=subject)
            .select_related("case")
            .order_by("at")
        ],
    }
