from django.urls import path

from . import views

app_name = "oncall"
urlpatterns = [
    path("", views.who_is_on_call, name="now"),
    path("rotas/<int:rota_id>/", views.rota_detail, name="rota"),
    path("rotas/<int:rota_id>/override/", views.rota_override, name="rota-override"),
    path("rotas/<int:rota_id>/feed/rotate/", views.rota_rotate_feed, name="rota-rotate-feed"),
    path("my-calendar/", views.my_calendar, name="my-calendar"),
    path("my-calendar/rotate/", views.my_calendar_rotate, name="my-calendar-rotate"),
    path("feeds/rota/<str:secret>.ics", views.feed_rota, name="feed-rota"),
    path("feeds/person/<str:secret>.ics", views.feed_person, name="feed-person"),
]
