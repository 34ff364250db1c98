from django.urls import path

from . import views

app_name = "incidents"
urlpatterns = [
    path("", views.home, name="home"),
    path("report/", views.report, name="report"),
    path("my-reports/", views.my_reports, name="my-reports"),
    path("my-reports/<str:reference>/", views.my_report, name="my-report"),
    path("cases/", views.case_list, name="case-list"),
    path("cases/<str:reference>/", views.case_detail, name="case-detail"),
    path("cases/<str:reference>/acknowledge/", views.case_acknowledge, name="case-acknowledge"),
    path("cases/<str:reference>/escalate/", views.case_escalate, name="case-escalate"),
    path("cases/<str:reference>/reassign/", views.case_reassign, name="case-reassign"),
]
