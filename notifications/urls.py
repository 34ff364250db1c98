from django.urls import path

from . import views

app_name = "notifications"
urlpatterns = [
    path("sms/inbound/", views.sms_inbound, name="sms-inbound"),
    path("sms/status/", views.sms_status, name="sms-status"),
    path("voice/answer/", views.voice_answer, name="voice-answer"),
    path("voice/gather/", views.voice_gather, name="voice-gather"),
    path("voice/status/", views.voice_status, name="voice-status"),
]
