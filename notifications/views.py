from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from twilio.twiml.messaging_response import MessagingResponse

from . import services
from .webhooks import twilio_signature_is_valid


def _twiml(response: MessagingResponse) -> HttpResponse:
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
