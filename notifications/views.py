from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import Gather, VoiceResponse

from . import services
from .messages import voice_choices, voice_text
from .models import DEFAULT_RULES, ChannelRule, ContactPreferences, Importance
from .selectors import attempt_language
from .webhooks import twilio_signature_is_valid


def _twiml(response: MessagingResponse | VoiceResponse) -> HttpResponse:
    return HttpResponse(str(response), content_type="application/xml")


@csrf_exempt
@require_POST
def sms_inbound(request: HttpRequest) -> HttpResponse:
    if not twilio_signature_is_valid(request):
        return HttpResponseForbidden("Invalid signature")
    sid = request.POST.get("MessageSid", "")
    sender = request.POST.get("From", "")
    if not sid or not sender:
        return HttpResponse("MessageSid and From are required", status=400)
    reply = services.handle_inbound_sms(
        provider_sid=sid,
        from_number=sender,
        to_number=request.POST.get("To", ""),
        body=request.POST.get("Body", ""),
    )
    response = MessagingResponse()
    if reply:
        response.message(reply)
    return _twiml(response)


@csrf_exempt
@require_POST
def sms_status(request: HttpRequest) -> HttpResponse:
    if not twilio_signature_is_valid(request):
        return HttpResponseForbidden("Invalid signature")
    sid = request.POST.get("MessageSid") or request.POST.get("SmsSid") or ""
    status = request.POST.get("MessageStatus") or request.POST.get("SmsStatus") or ""
    if not sid or not status:
        return HttpResponse("MessageSid and MessageStatus are required", status=400)
    services.record_sms_status(
        provider_sid=sid, status=status, error_code=request.POST.get("ErrorCode", "")
    )
    # 204 either way: an unknown SID is not Twilio's to retry.
    return HttpResponse(status=204)


# Voice --------------------------------------------------------------------------------------

MAX_REPEATS = 3


def _say(response, text: str, language: str) -> None:
    code = "cy" if language.startswith("cy") else "en"
    response.say(
        text,
        voice=settings.PAGING_VOICE[code],
        language=settings.PAGING_VOICE_LANGUAGE[code],
    )


def _attempt_id(request: HttpRequest) -> int | None:
    value = request.GET.get("attempt", "")
    return int(value) if value.isdigit() else None


@csrf_exempt
@require_POST
def voice_answer(request: HttpRequest) -> HttpResponse:
    """A page call was answered: say what it is about, then offer the keys. A machine gets a
    short message and the call ends: voicemail never acknowledges."""
    if not twilio_signature_is_valid(request):
        return HttpResponseForbidden("Invalid signature")
    attempt_id = _attempt_id(request)
    response = VoiceResponse()
    if attempt_id is None:
        response.hangup()
        return _twiml(response)
    attempt, message, machine = services.call_answered(
        attempt_id=attempt_id,
        call_sid=request.POST.get("CallSid", ""),
        answered_by=request.POST.get("AnsweredBy", ""),
    )
    if attempt is None or message is None:
        response.hangup()
        return _twiml(response)
    language = attempt.recipient.language
    _say(response, voice_text(message, language=language), language)
    if machine:
        with translation.override(language):
            _say(response, gettext("Please open Concernline."), language)
        response.hangup()
        return _twiml(response)
    repeat = request.GET.get("repeat", "")
    repeats = int(repeat) if repeat.isdigit() else 0
    if repeats >= MAX_REPEATS:
        with translation.override(language):
            _say(response, gettext("No key was pressed. Goodbye."), language)
        response.hangup()
        return _twiml(response)
    gather_url = reverse("notifications:voice-gather") + f"?attempt={attempt.id}"
    gather = Gather(num_digits=1, action=gather_url, method="POST", timeout=8)
    _say(gather, voice_choices(language=language), language)
    response.append(gather)
    response.redirect(
        reverse("notifications:voice-answer") + f"?attempt={attempt.id}&repeat={repeats + 1}",
        method="POST",
    )
    return _twiml(response)


@csrf_exempt
@require_POST
def voice_gather(request: HttpRequest) -> HttpResponse:
    """The key pressed: 1 acknowledges, 2 passes the page on, anything else repeats. The
    choice is said back."""
    if not twilio_signature_is_valid(request):
        return HttpResponseForbidden("Invalid signature")
    attempt_id = _attempt_id(request)
    response = VoiceResponse()
    if attempt_id is None:
        response.hangup()
        return _twiml(response)
    said = services.call_key_pressed(
        attempt_id=attempt_id,
        call_sid=request.POST.get("CallSid", ""),
        digits=request.POST.get("Digits", "")[:8],
    )
    language = attempt_language(attempt_id=attempt_id)
    if said is None:
        with translation.override(language):
            _say(response, gettext("That key does nothing here."), language)
        response.redirect(reverse("notifications:voice-answer") + f"?attempt={attempt_id}")
        return _twiml(response)
    if said:
        _say(response, said, language)
        with translation.override(language):
            _say(response, gettext("Goodbye."), language)
    response.hangup()
    return _twiml(response)


@csrf_exempt
@require_POST
def voice_status(request: HttpRequest) -> HttpResponse:
    if not twilio_signature_is_valid(request):
        return HttpResponseForbidden("Invalid signature")
    sid = request.POST.get("CallSid", "")
    status = request.POST.get("CallStatus", "")
    if not sid or not status:
        return HttpResponse("CallSid and CallStatus are required", status=400)
    services.record_call_status(
        call_sid=sid,
        call_status=status,
        answered_by=request.POST.get("AnsweredBy", ""),
        error_code=request.POST.get("ErrorCode", ""),
    )
    return HttpResponse(status=204)


# The signed-in person's own paging preferences -------------------------------------------


class PagingPreferencesForm(forms.Form):
    important_rule = forms.ChoiceField(
        label=_("Important pages (urgent alerts)"), choices=ChannelRule.choices
    )
    normal_rule = forms.ChoiceField(label=_("Normal pages (notices)"), choices=ChannelRule.choices)


@login_required
def paging_preferences(request: HttpRequest) -> HttpResponse:
    prefs = ContactPreferences.objects.filter(user=request.user).first()
    initial = {
        "important_rule": prefs.important_rule if prefs else DEFAULT_RULES[Importance.IMPORTANT],
        "normal_rule": prefs.normal_rule if prefs else DEFAULT_RULES[Importance.NORMAL],
    }
    form = PagingPreferencesForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        services.save_contact_preferences(actor=request.user, **form.cleaned_data)
        messages.success(request, _("Your paging preferences are saved."))
        return redirect("paging-preferences")
    return render(
        request,
        "notifications/preferences.html",
        {"form": form, "sms_opted_out": bool(prefs and prefs.sms_opted_out)},
    )
