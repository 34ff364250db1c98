from django.urls import path

from . import retention_views, subject_access_views, views

app_name = "incidents"
urlpatterns = [
    path("", views.home, name="home"),
    path("report/", views.report, name="report"),
    path("sw.js", views.service_worker, name="service-worker"),
    path("my-reports/", views.my_reports, name="my-reports"),
    path("my-reports/<str:reference>/", views.my_report, name="my-report"),
    path("cases/", views.case_list, name="case-list"),
    path("cases/<str:reference>/", views.case_detail, name="case-detail"),
    path("cases/<str:reference>/acknowledge/", views.case_acknowledge, name="case-acknowledge"),
    path("my-reports/<str:reference>/add/", views.my_report_add, name="my-report-add"),
    path("cases/<str:reference>/review/", views.case_start_review, name="case-start-review"),
    path("cases/<str:reference>/reviewer/", views.case_assign, name="case-assign"),
    path("cases/<str:reference>/outcome/", views.case_outcome, name="case-outcome"),
    path("cases/<str:reference>/close/", views.case_close, name="case-close"),
    path("cases/<str:reference>/hr/", views.case_hr_stage, name="case-hr-stage"),
    path("cases/<str:reference>/notes/", views.case_note, name="case-note"),
    path("cases/<str:reference>/attachments/", views.case_attach, name="case-attach"),
    path(
        "cases/<str:reference>/attachments/<int:attachment_id>/",
        views.attachment_download,
        name="attachment-download",
    ),
    path("cases/<str:reference>/breach/", views.case_breach_decision, name="case-breach"),
    path(
        "cases/<str:reference>/safeguarding/",
        views.case_safeguarding_referral,
        name="case-safeguarding",
    ),
    path("cases/<str:reference>/access-log/", views.case_access_log, name="case-access-log"),
    path("cases/<str:reference>/break-glass/", views.case_break_glass, name="case-break-glass"),
    path("breach-log/", views.breach_log, name="breach-log"),
    path("outcomes/", views.outcomes, name="outcomes"),
    path("subject-access/", subject_access_views.subject_access, name="subject-access"),
    path("outcomes/export.csv", views.outcomes_export, name="outcomes-export"),
    path("cases/<str:reference>/escalate/", views.case_escalate, name="case-escalate"),
    path("cases/<str:reference>/reassign/", views.case_reassign, name="case-reassign"),
    path("retention/", retention_views.retention_page, name="retention"),
    path(
        "retention/holds/<int:hold_id>/lift/",
        retention_views.legal_hold_lift,
        name="legal-hold-lift",
    ),
]
