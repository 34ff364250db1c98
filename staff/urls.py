from django.urls import path

from . import views

app_name = "staff"
urlpatterns = [
    path("guidance/", views.guidance, name="guidance"),
    path("team/", views.team, name="team"),
    path("team/export.csv", views.team_export, name="team-export"),
    path("team/people/<int:user_id>/training/", views.person_training, name="person-training"),
    path(
        "team/questions/<int:question_id>/discussed/",
        views.question_discussed,
        name="question-discussed",
    ),
]
